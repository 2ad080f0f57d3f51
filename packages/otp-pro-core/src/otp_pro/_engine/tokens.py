"""Clicked tokens (magic links): the token names its member, is consumed once, and may finish a setup.

A link that otp-pro really issued is not a guess, however stale (used, replaced,
expired, opened in another browser): it sits in mail archives, scanners and
access logs, so refusing it never counts toward the member's lockout, and the
caller learns nothing about the member's attempts. A token otp-pro never issued
is a guess of nobody in particular: it counts toward its IP address's limit
(``max_unknown_links_per_hour_per_ip``), and over the limit no token from that
address is looked at until the hour's window ends.
"""

from __future__ import annotations

from sqlalchemy import select, update

from .. import audit
from ..results import Purpose, Reason, VerifyResult
from ..storage import statements
from ..storage.schema import challenges, members
from . import auditing, enrolment, ip_limits, lockout
from .runtime import Runtime

#: Longer tokens are refused unread.
MAX_TOKEN = 512


def verify_token(rt: Runtime, payload: str, token: object, *, binding: str | None, ip: str | None,
                 user_agent: str | None) -> VerifyResult:
    """:meth:`OtpPro.verify_token`."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN or not token.isascii():
        return VerifyResult(False, reason=Reason.MALFORMED)
    now = rt.clock()
    hashes = rt.keys.hashes("challenge", token)
    with auditing.transaction(rt) as (conn, events):
        # Counted before the look-up, so concurrent guesses from one address never pass the limit together.
        wait = ip_limits.reserve(rt, conn, ip_limits.UNKNOWN_LINK, ip, rt.settings.max_unknown_links_per_hour_per_ip,
                                 now)
        if wait is not None:
            ip_limits.record_limited(rt, conn, events, ip_limits.UNKNOWN_LINK, None, ip=ip, user_agent=user_agent,
                                     retry_after=wait, payload=payload)
            return VerifyResult(False, reason=Reason.RATE_LIMITED, retry_after=wait)
        row = conn.execute(select(challenges).where(
            challenges.c.secret_hash.in_(hashes), challenges.c.payload == payload,
        ).order_by(challenges.c.id.desc()).limit(1)).first()
        if row is None:
            auditing.record(rt, conn, events, audit.VERIFY_FAILED, None, outcome=audit.FAILED, ip=ip,
                            user_agent=user_agent, reason=Reason.UNKNOWN, payload=payload)
            return VerifyResult(False, reason=Reason.UNKNOWN)
        ip_limits.release(rt, conn, ip_limits.UNKNOWN_LINK, ip)
    member_id = row.member_id
    bound_ok = row.binding_hash is None or (
        binding is not None and row.binding_hash in rt.keys.hashes("binding", binding))
    with auditing.transaction(rt) as (conn, events):
        # The lock state read under the member's row lock (SQLite: the write lock), in the
        # transaction that records the attempt: concurrent clicks are judged one at a time.
        state = rt.state(conn, member_id, for_update=True)
        locked = lockout.locked_until(state, now)
        if locked is not None:
            return VerifyResult(False, reason=Reason.LOCKED, locked_until=locked, member_id=member_id)
        # A setup's link completes the setup still pending on its channel; a sign-in link counts while
        # the factor it was sent to is the member's (removing a factor voids its links as well).
        current = state is not None and (
            state.pending_channel == row.channel if row.purpose == Purpose.SETUP
            else row.factor_id is None or state.factor(row.factor_id) is not None)
        won = bound_ok and current and conn.execute(update(challenges).where(
            challenges.c.id == row.id, statements.VERIFIABLE, challenges.c.consumed_at.is_(None),
            challenges.c.invalidated_at.is_(None), challenges.c.expires_at > now,
        ).values(consumed_at=now)).rowcount == 1
        if not won:
            if not bound_ok:
                reason = Reason.WRONG_BROWSER
            elif row.consumed_at is not None:
                reason = Reason.USED
            elif row.invalidated_at is not None or not current:
                reason = Reason.REPLACED
            elif row.expires_at <= now:
                reason = Reason.EXPIRED
            else:
                reason = Reason.USED  # consumed by a concurrent click a moment ago
            # An issued link is not a guess: audited, never counted toward the member's lockout.
            auditing.record(rt, conn, events, audit.VERIFY_FAILED, member_id, outcome=audit.FAILED,
                            channel=row.channel, ip=ip, user_agent=user_agent, reason=reason,
                            setup=row.purpose == Purpose.SETUP, counted=False)
            result = VerifyResult(False, reason=reason, channel=row.channel, member_id=member_id,
                                  purpose=row.purpose)
        elif row.purpose == Purpose.SETUP:
            assert state is not None
            codes = enrolment.enrol(rt, conn, events, state, now, ip=ip, user_agent=user_agent)
            result = VerifyResult(True, method=payload, channel=row.channel, member_id=member_id,
                                  purpose=Purpose.SETUP, backup_codes=tuple(codes),
                                  attempts_remaining=rt.settings.max_attempts)
        else:
            conn.execute(update(members).where(members.c.member_id == member_id).values(
                **statements.FAILURES_CLEARED))
            auditing.record(rt, conn, events, audit.VERIFY_OK, member_id, outcome=audit.OK, channel=row.channel,
                            ip=ip, user_agent=user_agent, method=payload, factor_id=row.factor_id)
            result = VerifyResult(True, method=payload, channel=row.channel, member_id=member_id,
                                  purpose=Purpose.VERIFY, attempts_remaining=rt.settings.max_attempts,
                                  factor_id=row.factor_id)
    return result
