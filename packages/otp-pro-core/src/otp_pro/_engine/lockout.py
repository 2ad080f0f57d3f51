"""Failed attempts and the lock they lead to.

Failures count per member across every method, atomically
(``failures = failures + 1`` in the statement that records the attempt). At
``max_attempts`` the member is locked for ``lockout_seconds`` and the counter
starts again; ``consecutive_failures`` only resets on a success, and at NIST's
ceiling of 100 the member stays locked (:data:`HARD_LOCK`) until an operator
unlocks them.

The lock state is read and the attempt counted in one transaction, so N
concurrent wrong attempts evaluate exactly ``max_attempts``. An attempt whose
check is slow (a backup code's KDF, which must not run while SQLite's write
lock is held) is counted first, as a reservation, and judged after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, case, update

from .. import audit
from ..audit import AuditEvent
from ..errors import LockedOut
from ..member import Member
from ..results import Reason, VerifyResult
from ..settings import NIST_MAX_ATTEMPTS
from ..storage.schema import members
from . import auditing
from .runtime import MemberState, Runtime

#: ``locked_until`` reported for the hard lock after NIST's 100 consecutive failures.
HARD_LOCK = datetime(9999, 12, 31, tzinfo=timezone.utc)


def locked_until(state: MemberState | None, now: datetime) -> datetime | None:
    """Until when the member is locked out, or None."""
    if state is None:
        return None
    if state.consecutive_failures >= NIST_MAX_ATTEMPTS:
        return HARD_LOCK
    if state.locked_until is not None and state.locked_until > now:
        return state.locked_until
    return None


def refuse_if_locked(state: MemberState | None, now: datetime) -> None:
    """Raise :class:`LockedOut` when the member is locked out."""
    until = locked_until(state, now)
    if until is not None:
        raise LockedOut("too many failed attempts; try again later", locked_until=until)


def verify_refusal(state: MemberState | None, now: datetime) -> VerifyResult | None:
    """Why a verification is refused without looking at the code: not enrolled, or locked out."""
    if state is None or state.channel is None:
        return VerifyResult(False, reason=Reason.NOT_ENROLLED)
    until = locked_until(state, now)
    if until is not None:
        return VerifyResult(False, reason=Reason.LOCKED, attempts_remaining=0, locked_until=until)
    return None


@dataclass(frozen=True)
class Counted:
    """A failure as :func:`count_failure` counted it: the counters after it, and the lock it set (or None)."""

    failures: int
    consecutive: int
    locked: datetime | None


def count_failure(rt: Runtime, conn: Connection, member_id: str, now: datetime) -> Counted:
    """Count one failed attempt atomically; lock the member when the maximum is reached.

    Run it in the transaction that read the member's lock state (under the row
    lock on PostgreSQL, SQLite's write lock otherwise), so that concurrent attempts
    are counted one after the other and none is looked at once the member is locked.
    """
    s = rt.settings
    reached = members.c.failures + 1 >= s.max_attempts
    row = conn.execute(
        update(members).where(members.c.member_id == member_id).values(
            failures=case((reached, 0), else_=members.c.failures + 1),
            consecutive_failures=members.c.consecutive_failures + 1,
            locked_until=case((reached, now + timedelta(seconds=s.lockout_seconds)), else_=members.c.locked_until),
            updated_at=now,
        ).returning(members.c.failures, members.c.consecutive_failures, members.c.locked_until)
    ).first()
    failures, consecutive, until = (row[0], row[1], row[2]) if row is not None else (1, 1, None)
    locked = None
    if consecutive >= NIST_MAX_ATTEMPTS:
        locked = HARD_LOCK
    elif failures == 0 and until is not None and until > now:
        locked = until
    return Counted(failures, consecutive, locked)


def audit_failure(rt: Runtime, conn: Connection, events: list[AuditEvent], member_id: str, counted: Counted, *,
                  channel: str | None, ip: str | None, user_agent: str | None, reason: str,
                  setup: bool = False) -> VerifyResult:
    """The ``verify_failed`` row of a counted failure (and ``locked_out`` when it locked the member); the result."""
    auditing.record(rt, conn, events, audit.VERIFY_FAILED, member_id, outcome=audit.FAILED, channel=channel, ip=ip,
                    user_agent=user_agent, reason=reason, setup=setup, failures=counted.consecutive)
    if counted.locked is not None:
        auditing.record(rt, conn, events, audit.LOCKED_OUT, member_id, outcome=audit.FAILED, channel=channel, ip=ip,
                        user_agent=user_agent, until=counted.locked.isoformat(),
                        consecutive_failures=counted.consecutive)
        return VerifyResult(False, reason=Reason.LOCKED, attempts_remaining=0, locked_until=counted.locked,
                            channel=channel)
    return VerifyResult(False, reason=reason, attempts_remaining=rt.settings.max_attempts - counted.failures,
                        channel=channel)


def record_failure(rt: Runtime, conn: Connection, events: list[AuditEvent], member_id: str, now: datetime, *,
                   channel: str | None, ip: str | None, user_agent: str | None, reason: str,
                   setup: bool = False) -> VerifyResult:
    """Count a failure atomically with its ``verify_failed`` row; lock the member when the maximum is reached."""
    return audit_failure(rt, conn, events, member_id, count_failure(rt, conn, member_id, now), channel=channel,
                         ip=ip, user_agent=user_agent, reason=reason, setup=setup)


def record_site_failure(rt: Runtime, member: Member, *, reason: str, ip: str | None,
                        user_agent: str | None) -> VerifyResult:
    """:meth:`OtpPro.record_failure`: a failure of the site's own check, counted unless the member is locked."""
    if not isinstance(reason, str) or not reason.isidentifier() or len(reason) > 40:
        raise ValueError(f"reason must be a short snake_case word, not {reason!r}")
    now = rt.clock()
    with auditing.transaction(rt, member) as (conn, events):
        rt.ensure_member(conn, member.id)
        until = locked_until(rt.state(conn, member.id, for_update=True), now)
        if until is not None:
            return VerifyResult(False, reason=Reason.LOCKED, attempts_remaining=0, locked_until=until)
        return record_failure(rt, conn, events, member.id, now, channel=None, ip=ip, user_agent=user_agent,
                              reason=reason)
