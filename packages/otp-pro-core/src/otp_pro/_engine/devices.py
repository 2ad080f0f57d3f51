"""Trusted devices: a browser that skips the second step for ``trusted_device_days``; only the token's hash is kept."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, or_, select, update

from .. import audit
from ..crypto import new_token
from ..errors import NotFound, PolicyError
from ..i18n import L_
from ..member import Member
from ..results import TrustedDevice
from ..settings import NIST_MAX_ATTEMPTS
from ..storage.schema import MAX_BIG_ID, members, trusted_devices
from . import auditing
from .runtime import Runtime

#: Longer tokens are refused unread; the labels a member sees are cut to this.
MAX_TOKEN = 200
MAX_LABEL = 200


def trust(rt: Runtime, member: Member, *, label: str, ip: str | None, user_agent: str | None) -> str:
    """:meth:`OtpPro.trust_device`."""
    days = rt.settings.trusted_device_days
    if days <= 0:
        raise PolicyError(L_("trusted devices are switched off on this site"))
    if not isinstance(label, str):
        raise TypeError("label must be a string")
    label = "".join(ch for ch in label if ch.isprintable())[:MAX_LABEL] or "Unnamed device"
    token = new_token(32)
    now = rt.clock()
    with auditing.transaction(rt, member) as (conn, events):
        device_id = _inserted_id(conn.execute(trusted_devices.insert().values(
            member_id=member.id, token_hash=rt.keys.hash("device", token), label=label, created_at=now,
            expires_at=now + timedelta(days=days))))
        auditing.record(rt, conn, events, audit.DEVICE_TRUSTED, member.id, ip=ip, user_agent=user_agent,
                        device_id=device_id, label=label)
    return token


def _inserted_id(result: CursorResult[Any]) -> Any:
    """The primary key of the one row an ``INSERT ... VALUES`` added."""
    # Typed Optional because a multi-row or INSERT-FROM-SELECT has none; a one-row INSERT always has it.
    return cast("Sequence[Any]", result.inserted_primary_key)[0]


def is_trusted(rt: Runtime, member: Member, token: object) -> bool:
    """:meth:`OtpPro.is_trusted`."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN:
        return False
    now = rt.clock()
    with rt.db.read() as conn:
        # The hard lock (NIST's 100 consecutive failures) refuses a trusted device too, until an operator
        # unlocks the member; a temporary lock does not (docs/security.md says why).
        row = conn.execute(select(trusted_devices.c.id, trusted_devices.c.last_used_at).select_from(
            trusted_devices.outerjoin(members, members.c.member_id == trusted_devices.c.member_id)).where(
            trusted_devices.c.member_id == member.id,
            trusted_devices.c.token_hash.in_(rt.keys.hashes("device", token)),
            trusted_devices.c.revoked_at.is_(None),
            trusted_devices.c.expires_at > now,
            or_(members.c.consecutive_failures.is_(None), members.c.consecutive_failures < NIST_MAX_ATTEMPTS),
        )).first()
    if row is None:
        return False
    if row.last_used_at is None or row.last_used_at < now - timedelta(hours=1):
        with rt.db.write() as conn:  # at most one write an hour per device
            conn.execute(update(trusted_devices).where(trusted_devices.c.id == row.id).values(last_used_at=now))
    return True


def revoke_all(conn: Connection, member_id: str, now: datetime) -> int:
    """Revoke every live trusted device of the member in ``conn``'s transaction; how many there were."""
    return conn.execute(update(trusted_devices).where(
        trusted_devices.c.member_id == member_id, trusted_devices.c.revoked_at.is_(None)).values(revoked_at=now)
    ).rowcount


def live(rt: Runtime, member: Member) -> list[TrustedDevice]:
    """:meth:`OtpPro.trusted_devices`."""
    now = rt.clock()
    with rt.db.read() as conn:
        rows = conn.execute(select(trusted_devices).where(
            trusted_devices.c.member_id == member.id, trusted_devices.c.revoked_at.is_(None),
            trusted_devices.c.expires_at > now).order_by(trusted_devices.c.id.desc())).all()
    return [TrustedDevice(r.id, r.label, r.created_at, r.expires_at, r.last_used_at) for r in rows]


def revoke(rt: Runtime, member: Member, device_id: object, *, actor: str | None, ip: str | None,
           user_agent: str | None) -> None:
    """:meth:`OtpPro.revoke_device`."""
    try:
        number = int(device_id)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise NotFound(f"no trusted device {device_id!r}") from None
    if not 0 < number <= MAX_BIG_ID:
        # Past the id column's signed 64-bit range the driver raises OverflowError instead of finding nothing.
        raise NotFound(f"no trusted device {number}")
    with auditing.transaction(rt, member) as (conn, events):
        count = conn.execute(update(trusted_devices).where(
            trusted_devices.c.id == number, trusted_devices.c.member_id == member.id,
            trusted_devices.c.revoked_at.is_(None)).values(revoked_at=rt.clock())).rowcount
        if count != 1:
            raise NotFound(f"no trusted device {number} for this member")
        auditing.record(rt, conn, events, audit.DEVICE_REVOKED, member.id, actor=actor, ip=ip,
                        user_agent=user_agent, device_id=number)
