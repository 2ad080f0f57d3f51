"""Backup codes: the member's recovery set, issued with the first factor, shown once, each usable once.

Codes are stored salted and hashed with a password-hashing KDF (scrypt) peppered
with a key of the key ring; one salt per set, so checking a typed code costs
one KDF evaluation whatever the number of codes left.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from sqlalchemy import Connection, delete, select, update

from .. import audit, crypto
from ..codes import normalize_code
from ..crypto import BACKUP_CODE_LENGTH, constant_time_in, new_backup_code
from ..errors import NotEnrolled
from ..i18n import L_
from ..member import Member
from ..storage.schema import backup_codes, members
from . import auditing
from .runtime import MemberState, Runtime

log = logging.getLogger("otp_pro")


def issue(rt: Runtime, conn: Connection, member_id: str, now: datetime) -> list[str]:
    """Replace the member's backup codes with a fresh set in ``conn``'s transaction; the codes, to show once."""
    codes = [new_backup_code() for _ in range(rt.settings.backup_code_count)]
    salt = secrets.token_bytes(16)
    key_id = rt.keys.key_ids[0]
    pepper = rt.keys.pepper(key_id)
    assert pepper is not None
    conn.execute(delete(backup_codes).where(backup_codes.c.member_id == member_id))
    conn.execute(
        backup_codes.insert(),
        [
            {
                "member_id": member_id,
                "code_hash": crypto.backup_kdf(normalize_code(c) or "", salt, pepper).hex(),
                "created_at": now,
            }
            for c in codes
        ],
    )
    conn.execute(
        update(members).where(members.c.member_id == member_id).values(backup_salt=salt.hex(), backup_key_id=key_id)
    )
    return codes


def regenerate(rt: Runtime, member: Member, *, actor: str | None, ip: str | None,
               user_agent: str | None) -> list[str]:
    """:meth:`OtpPro.regenerate_backup_codes`."""
    now = rt.clock()
    with auditing.transaction(rt, member) as (conn, events):
        state = rt.state(conn, member.id, for_update=True)
        if state is None or state.channel is None:
            raise NotEnrolled(L_("backup codes need a configured second factor"))
        codes = issue(rt, conn, member.id, now)
        auditing.record(rt, conn, events, audit.BACKUP_CODES_GENERATED, member.id, channel=state.channel, ip=ip,
                        user_agent=user_agent, actor=actor, count=len(codes))
    return codes


def use(conn: Connection, code_id: int, now: datetime) -> bool:
    """Mark backup code ``code_id`` used; False when it already was (one conditional UPDATE decides)."""
    return conn.execute(
        update(backup_codes).where(backup_codes.c.id == code_id, backup_codes.c.used_at.is_(None)).values(used_at=now)
    ).rowcount == 1


def match(rt: Runtime, state: MemberState, code: str, conn: Connection | None = None) -> tuple[int | None, int]:
    """Find which unused backup code ``code`` is, with one KDF evaluation: (row id or None, unused count).

    The codes are read in ``conn`` when given (the caller's transaction), else in a read of their own.
    """
    if len(code) != BACKUP_CODE_LENGTH:
        return None, 0
    pepper = rt.keys.pepper(state.backup_key_id or "")
    if pepper is None:
        log.warning("otp-pro: backup codes of a member were made with a key no longer configured")
        return None, 0
    query = select(backup_codes.c.id, backup_codes.c.code_hash).where(
        backup_codes.c.member_id == state.member_id, backup_codes.c.used_at.is_(None))
    if conn is not None:
        rows = conn.execute(query).all()
    else:
        with rt.db.read() as reading:
            rows = reading.execute(query).all()
    if not rows or state.backup_salt is None:
        return None, 0
    # Looked up on otp_pro.crypto at each call, so a test can count the KDF's evaluations there.
    candidate = crypto.backup_kdf(code, bytes.fromhex(state.backup_salt), pepper)
    index = constant_time_in(candidate, [bytes.fromhex(r.code_hash) for r in rows])
    return (rows[index].id if index >= 0 else None), len(rows)
