"""Support and security operations on a member: disable, reset, unlock; and rotating the key that seals seeds."""

from __future__ import annotations

from sqlalchemy import case, delete, or_, select, update

from .. import audit
from ..errors import PolicyError
from ..i18n import L_
from ..member import Member
from ..results import ChallengeStatus
from ..storage import statements
from ..storage.schema import backup_codes, challenges, factors, members
from . import auditing, devices, status
from .messages import recipient_hash
from .runtime import Runtime


def disable(rt: Runtime, member: Member, *, actor: str | None, force: bool, ip: str | None,
            user_agent: str | None) -> None:
    """:meth:`OtpPro.disable`."""
    if status.requirement(rt, member).is_required and not force:
        raise PolicyError(L_("two-factor authentication is required for this member and cannot be disabled"))
    clear(rt, member, audit.DISABLED, actor=actor, ip=ip, user_agent=user_agent, disabled=True)


def clear(rt: Runtime, member: Member, kind: str, *, actor: str | None, ip: str | None, user_agent: str | None,
          disabled: bool) -> None:
    """Remove the member's factors, backup codes, trusted devices, lock and unused challenges; audit it as ``kind``."""
    now = rt.clock()
    with auditing.transaction(rt, member) as (conn, events):
        rt.ensure_member(conn, member.id)
        state = rt.state(conn, member.id, for_update=True)
        conn.execute(update(members).where(members.c.member_id == member.id).values(
            enrolled_at=None, pending_channel=None, pending_secret=None, pending_expires_at=None,
            pending_binding_hash=None, pending_label=None, pending_recipient=None, pending_factor_id=None,
            backup_salt=None, backup_key_id=None, disabled_at=now if disabled else None, updated_at=now,
            **statements.FAILURES_CLEARED,
        ))
        conn.execute(delete(factors).where(factors.c.member_id == member.id))
        conn.execute(delete(backup_codes).where(backup_codes.c.member_id == member.id))
        revoked = devices.revoke_all(conn, member.id, now)
        conn.execute(update(challenges).where(
            challenges.c.member_id == member.id, challenges.c.consumed_at.is_(None),
            challenges.c.invalidated_at.is_(None)).values(
                invalidated_at=now, message=None,  # a queued code is never sent after a reset
                status=case((challenges.c.status == ChallengeStatus.QUEUED, ChallengeStatus.REPLACED),
                            else_=challenges.c.status)))
        auditing.record(rt, conn, events, kind, member.id, channel=state.channel if state else None, actor=actor,
                        ip=ip, user_agent=user_agent, devices_revoked=revoked,
                        factors_removed=len(state.factors) if state else 0)


def unlock(rt: Runtime, member: Member, *, actor: str | None, ip: str | None,
           user_agent: str | None) -> None:
    """:meth:`OtpPro.unlock`."""
    with auditing.transaction(rt, member) as (conn, events):
        conn.execute(update(members).where(members.c.member_id == member.id).values(
            updated_at=rt.clock(), **statements.FAILURES_CLEARED))
        auditing.record(rt, conn, events, audit.UNLOCKED, member.id, actor=actor, ip=ip, user_agent=user_agent)


def rotate_keys(rt: Runtime, *, actor: str | None) -> int:
    """:meth:`OtpPro.rotate_keys`: every sealed secret (TOTP seeds, factors' addresses, pending setups')
    re-sealed with the current key, and each confirmed address's keyed hash made again with it; the
    number of rows re-sealed."""
    count = 0
    with auditing.transaction(rt) as (conn, events):
        rows = conn.execute(select(factors.c.id, factors.c.secret, factors.c.recipient).where(
            or_(factors.c.secret.is_not(None), factors.c.recipient.is_not(None)))).all()
        for row in rows:
            values: dict[str, str | None] = {"secret": rt.keys.rotate(row.secret) if row.secret else None}
            if row.recipient:
                # The address's keyed hash is made again with the current key too: once the old key is
                # dropped, a hash made with it would no longer match the member record's address.
                address = rt.keys.decrypt(row.recipient)
                values.update(recipient=rt.keys.rotate(row.recipient),
                              recipient_hash=recipient_hash(rt, address))
            conn.execute(update(factors).where(factors.c.id == row.id).values(**values))
            count += 1
        pending = conn.execute(select(members.c.member_id, members.c.pending_secret,
                                      members.c.pending_recipient).where(
            or_(members.c.pending_secret.is_not(None), members.c.pending_recipient.is_not(None)))).all()
        for row in pending:
            conn.execute(update(members).where(members.c.member_id == row.member_id).values(
                pending_secret=rt.keys.rotate(row.pending_secret) if row.pending_secret else None,
                pending_recipient=rt.keys.rotate(row.pending_recipient) if row.pending_recipient else None))
            count += 1
        auditing.record(rt, conn, events, audit.KEYS_ROTATED, None, actor=actor, seeds=count)
    return count
