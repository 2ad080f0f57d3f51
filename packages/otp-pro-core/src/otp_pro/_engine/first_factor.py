"""A factor that signs a member in on its own: challenges for no member, and the answer that names its factor.

A passkey's discoverable credential needs no password before it: the browser
asks any of the site's credentials to sign a challenge, and the answer carries
the credential id, which is the factor's public handle (unique per kind). The
rules are those of :mod:`.answers`, with what a missing member changes:

* The challenge is stored for no member (``member_id`` NULL), bound to the
  caller's binding, for the type's ``challenge_seconds``; each one issued counts
  toward the caller's address (``first_factor`` per-IP limit, the send cap), so
  nobody fills the table.
* An answer is judged in order: its shape (a malformed one is not counted); the
  caller's address against its failed-verification limit; the challenge consumed
  by one conditional ``UPDATE`` (single use, this binding, not expired); the
  factor found by the handle the answer names; then, under that member's lock,
  the member's lock state and the type's :meth:`~otp_pro.factor_types.FactorType.check_first`,
  and the factor's counter moved once, as for a second factor.
* A failure counts toward the caller's address only, never toward the member the
  answer names (a credential id is no secret: counting it would let anyone lock a
  member out), and is audited on that member when there is one, so a refused
  clone (``counter_regressed``) shows in the member's history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from .. import audit
from ..errors import ChannelUnavailable, ThrottledError
from ..factor_types import AnswerRefused, FactorType
from ..i18n import N_
from ..member import Member
from ..results import IssuedChallenge, Reason, VerifyResult
from ..storage.schema import factors as factor_table
from . import auditing, ip_limits, lockout
from .answers import accept_counter, consume_issued, store_issued
from .runtime import Runtime
from .verification import method_of


def _first_factor_type(rt: Runtime, channel: str) -> FactorType:
    definition = rt.channels.get(channel) if isinstance(channel, str) else None
    factor_type = definition.factor_type if definition is not None else None
    if factor_type is None or not factor_type.issues_challenge or not factor_type.offers_first_factor():
        raise ChannelUnavailable(f"channel {channel!r} does not sign members in on its own", channel=channel,
                                 reason=N_("it does not sign members in on its own"))
    return factor_type


def begin(rt: Runtime, channel: str, *, binding: str | None, ip: str | None,
          user_agent: str | None) -> IssuedChallenge:
    """:meth:`OtpPro.begin_first_factor_challenge`."""
    if not isinstance(binding, str) or not binding:
        raise ValueError("begin_first_factor_challenge needs the caller's binding (a random value kept in its "
                         "session): a challenge is answered only in the session that asked for it")
    factor_type = _first_factor_type(rt, channel)
    now = rt.clock()
    issued = factor_type.issue_first(now)
    with auditing.transaction(rt) as (conn, events):
        wait = ip_limits.reserve(rt, conn, ip_limits.SEND, ip, rt.settings.max_sends_per_hour_per_ip, now)
        if wait is not None:
            ip_limits.record_limited(rt, conn, events, ip_limits.SEND, None, ip=ip, user_agent=user_agent,
                                     retry_after=wait, channel=channel)
            raise ThrottledError("too many sign-in challenges from this address", retry_after=wait, limit="ip_hourly")
        expires = store_issued(rt, conn, None, channel, factor_type, issued.value, binding, now)
    return IssuedChallenge(channel=channel, expires_at=expires, show=dict(issued.show))


def verify(rt: Runtime, channel: str, answer: Any, *, binding: str | None, ip: str | None,
           user_agent: str | None) -> VerifyResult:
    """:meth:`OtpPro.verify_first_factor`."""
    factor_type = _first_factor_type(rt, channel)
    if not factor_type.accepts(answer):
        return VerifyResult(False, reason=Reason.MALFORMED, channel=channel)
    now = rt.clock()
    with auditing.transaction(rt) as (conn, events):
        # Counted before anything is looked up, so concurrent guesses from one address never pass the limit
        # together; released again when the answer is accepted.
        wait = ip_limits.reserve(rt, conn, ip_limits.FAILED_VERIFY, ip,
                                 rt.settings.max_failed_verifications_per_hour_per_ip, now)
        if wait is not None:
            ip_limits.record_limited(rt, conn, events, ip_limits.FAILED_VERIFY, None, ip=ip, user_agent=user_agent,
                                     retry_after=wait, channel=channel)
            return VerifyResult(False, reason=Reason.RATE_LIMITED, retry_after=wait, channel=channel)
        why = consume_issued(rt, conn, None, channel, factor_type.challenge_of(answer), binding, now)
        handle = factor_type.handle_of(answer)
        found = conn.execute(select(factor_table.c.id, factor_table.c.member_id).where(
            factor_table.c.kind == channel, factor_table.c.handle == handle)).first() if handle else None
        if why is None and found is None:
            why = "unknown_credential"
        if why is not None:
            member_id = found.member_id if found is not None else None
            auditing.record(rt, conn, events, audit.VERIFY_FAILED, member_id, outcome=audit.FAILED, channel=channel,
                            ip=ip, user_agent=user_agent, reason=why, first_factor=True, counted=False)
            return VerifyResult(False, reason=why, channel=channel, member_id=member_id)
    assert found is not None
    return _judge(rt, factor_type, channel, found.member_id, found.id, answer, now, ip=ip, user_agent=user_agent)


def _judge(rt: Runtime, factor_type: FactorType, channel: str, member_id: str, factor_id: int, answer: Any,
           now: datetime, *, ip: str | None, user_agent: str | None) -> VerifyResult:
    """The answer checked against the factor it named, under its member's lock."""
    member = Member(member_id)
    with auditing.transaction(rt) as (conn, events):
        state = rt.state(conn, member_id, for_update=True)
        factor = state.factor(factor_id) if state is not None else None
        until = lockout.locked_until(state, now)
        if until is not None:
            return VerifyResult(False, reason=Reason.LOCKED, locked_until=until, member_id=member_id, channel=channel)
        why: str = Reason.INVALID
        counter: int | None = None
        if factor is not None and factor.secret is not None:
            try:
                counter = factor_type.check_first(member, rt.keys.decrypt(factor.secret), factor.last_step, answer,
                                                  now)
            except AnswerRefused as refused:
                why = refused.reason
        if factor is not None and counter is not None:
            not_moved = accept_counter(rt, conn, member_id, factor, factor_type, counter, now)
            if not_moved is None:
                method = method_of(channel)
                auditing.record(rt, conn, events, audit.VERIFY_OK, member_id, outcome=audit.OK, channel=channel,
                                ip=ip, user_agent=user_agent, method=method, factor_id=factor.id, first_factor=True)
                ip_limits.release(rt, conn, ip_limits.FAILED_VERIFY, ip)
                return VerifyResult(True, method=method, channel=channel, member_id=member_id, factor_id=factor.id,
                                    attempts_remaining=rt.settings.max_attempts)
            why = not_moved
        auditing.record(rt, conn, events, audit.VERIFY_FAILED, member_id, outcome=audit.FAILED, channel=channel,
                        ip=ip, user_agent=user_agent, reason=why, first_factor=True, counted=False)
        return VerifyResult(False, reason=why, channel=channel, member_id=member_id)
