"""Sending a challenge: choose the channel, make the message, record the challenge, send it (or queue it).

The path, in order: the message is made before any transaction (plugins'
hooks hold no lock); the challenge is recorded by a transaction that takes
the member's lock, applies the throttle and inserts the row
(:func:`_record`); then the transport sends it, or the dispatcher queues it,
and the outcome is recorded (:mod:`~otp_pro._engine.delivery_outcome`). On
PostgreSQL an inline send usually skips the transaction: one statement reads
the member's state and records the challenge
(:data:`~otp_pro.storage.statements.SEEN_AND_SEND`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .. import audit
from ..audit import AuditEvent
from ..errors import ChannelUnavailable, ThrottledError, TransientDeliveryError
from ..i18n import N_
from ..member import Member
from ..results import Challenge, ChallengeStatus, Purpose
from ..storage import statements
from ..transports import TOTP, recipient_hint
from . import auditing, delivery_outcome, factors, ip_limits, lockout, status, throttle
from .messages import Outgoing, outgoing
from .runtime import FactorRow, MemberState, Runtime, state_of

log = logging.getLogger("otp_pro")

#: The limit named by the refusal of a send from an address over ``max_sends_per_hour_per_ip``.
IP_HOURLY = "ip_hourly"


def send_challenge(rt: Runtime, member: Member, *, channel: str | None, ip: str | None, user_agent: str | None,
                   binding: str | None) -> Challenge:
    """:meth:`OtpPro.send_challenge`: to the member's default factor, or their factor on ``channel``."""
    req = status.requirement(rt, member)

    def usable(chosen: str) -> str:
        """``chosen``, if the policy lets a code be sent there to ``member`` (their factors aside)."""
        if chosen == TOTP:
            raise ChannelUnavailable("an authenticator app has nothing to send: ask for its code", channel=TOTP,
                                     reason=N_("an authenticator app has nothing to send"))
        status.check_channel(rt, member, req, chosen)
        return chosen

    def choose(state: MemberState | None) -> FactorRow:
        """The factor to send to, for the member's ``state``; or why nothing is sent."""
        factor = factors.pick(rt, member, state, channel, req)
        usable(factor.kind)
        lockout.refuse_if_locked(state, rt.clock())
        return factor

    # Before anything is read, the likely channel: the one asked for, else the policy's default.
    guess = channel or req.default_channel
    return deliver(rt, member, None, Purpose.VERIFY, ip=ip, user_agent=user_agent, binding=binding,
                   choose=choose, likely=(lambda: usable(guess)) if guess else None)


def deliver(rt: Runtime, member: Member, channel: str | None, purpose: str, *, ip: str | None,
            user_agent: str | None, binding: str | None = None,
            choose: Callable[[MemberState | None], FactorRow] | None = None,
            likely: Callable[[], str] | None = None, recipient: str | None = None) -> Challenge:
    """Make, record and send (or queue) a challenge on ``channel`` (to ``recipient``, else the record's address).

    With ``choose`` (:func:`send_challenge`) the challenge goes to the factor
    ``choose(state)`` picks from the member's state, at the address that factor was
    confirmed at; a factor other than the default one is a fallback. On PostgreSQL
    an inline send first makes the message for the ``likely()`` channel and tries to
    read the state and record the challenge with one statement
    (:data:`~otp_pro.storage.statements.SEEN_AND_SEND`), which records only if the
    member's default factor is there, bound to that address, and nothing stands in
    the way. Otherwise (SQLite, a queue,
    another factor, a throttled send) the factor is chosen from the state as read,
    and the transaction of :func:`_record` decides under the member's lock.
    """
    queued = rt.dispatcher.queued
    # PostgreSQL: the send counted against the caller's address first, by a statement of its own,
    # and given back if no challenge is recorded. (SQLite: counted in _record's transaction.)
    ip_counted = bool(ip) and rt.db.is_postgresql
    if ip_counted:
        wait = ip_limits.reserve_alone(rt, ip_limits.SEND, ip, rt.settings.max_sends_per_hour_per_ip, rt.clock())
        if wait is not None:
            with auditing.transaction(rt, member) as (conn, events):
                ip_limits.record_limited(rt, conn, events, ip_limits.SEND, member.id, ip=ip, user_agent=user_agent,
                                         retry_after=wait, purpose=purpose)
            raise ip_refusal(wait)
    try:
        challenge_id, out = _made_and_recorded(rt, member, channel, purpose, ip=ip, user_agent=user_agent,
                                               binding=binding, choose=choose, likely=likely, recipient=recipient,
                                               count_ip=not ip_counted)
    except BaseException:
        if ip_counted:
            ip_limits.release_alone(rt, ip_limits.SEND, ip)
        raise
    number = int(challenge_id)
    transport, recipient = out.transport, out.recipient
    if queued:
        try:
            rt.dispatcher.enqueue(number)
        except Exception as exc:  # noqa: BLE001 - a broker that cannot take the task fails this delivery
            log.warning("otp-pro dispatcher %s could not enqueue: %s", rt.dispatcher.name, type(exc).__name__)
            unqueued = TransientDeliveryError("the delivery queue is not reachable just now",
                                              transport=transport.name, provider_code="enqueue")
            delivery_outcome.once_more(lambda: delivery_outcome.fail(
                rt, number, member.id, out.channel, purpose, transport.name, unqueued, ip=ip, user_agent=user_agent,
                only_if=ChallengeStatus.QUEUED, member=member))
            raise unqueued from None
        return Challenge(id=number, member_id=member.id, channel=out.channel, purpose=purpose, created_at=out.now,
                         expires_at=out.expires, recipient_hint=recipient_hint(transport, recipient),
                         status=ChallengeStatus.QUEUED)
    try:
        receipt = transport.send(out.message)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded; non-delivery errors are wrapped
        error = delivery_outcome.as_delivery_error(exc, transport.name)
        # only_if: a retry after a lost connection must not record the failure twice.
        delivery_outcome.once_more(lambda: delivery_outcome.fail(
            rt, number, member.id, out.channel, purpose, transport.name, error, ip=ip, user_agent=user_agent,
            only_if=ChallengeStatus.PENDING, member=member))
        raise error from None
    # Marked sent; a new challenge voids the member's earlier unused ones (of either purpose).
    marked = {"b_member": member.id, "b_id": number, "b_sent_at": rt.clock(), "b_now": out.now,
              "b_message_id": (receipt.provider_message_id or "")[:128] or None}
    sent = AuditEvent(kind=audit.CHALLENGE_SENT, at=rt.clock(), outcome=audit.OK, member_id=member.id,
                      channel=out.channel, ip=ip, user_agent=user_agent, details=dict(
                          purpose=purpose, challenge_id=number, transport=transport.name,
                          recipient=recipient_hint(transport, recipient),
                          provider_message_id=receipt.provider_message_id))
    # The message is out: its record must not be lost to a dropped connection, or the code the
    # member holds would be refused and its pending row would hold the cooldown.
    delivery_outcome.once_more(lambda: delivery_outcome.mark_sent(rt, number, marked, sent, member),
                               done=lambda: delivery_outcome.challenge_status(rt, number) == ChallengeStatus.SENT)
    return Challenge(id=number, member_id=member.id, channel=out.channel, purpose=purpose, created_at=out.now,
                     expires_at=out.expires, recipient_hint=recipient_hint(transport, recipient),
                     provider_message_id=receipt.provider_message_id)


def _made_and_recorded(rt: Runtime, member: Member, channel: str | None, purpose: str, *, ip: str | None,
                       user_agent: str | None, binding: str | None,
                       choose: Callable[[MemberState | None], FactorRow] | None, likely: Callable[[], str] | None,
                       recipient: str | None, count_ip: bool) -> tuple[Any, Outgoing]:
    """:func:`deliver`'s first half: the message made and its challenge recorded; the challenge's id and message."""
    queued = rt.dispatcher.queued
    challenge_id: Any = None
    other_factor = False
    if choose is None:
        assert channel is not None
        out = outgoing(rt, member, channel, purpose, binding, recipient=recipient)
    else:
        # The message is made before any transaction (plugins' hooks hold no lock); it is made
        # again only if the factor chosen from the member's state is not the one guessed.
        guess = _likely_outgoing(rt, member, likely, purpose, binding) \
            if likely is not None and rt.db.is_postgresql and not queued else None
        if guess is not None:
            with rt.db.write_once() as conn:
                rows = rt.db.run(conn, statements.SEEN_AND_SEND,
                                 {**throttle.send_params(rt, member, guess, purpose, binding),
                                  "b_state_channel": guess.channel, "b_now": guess.now}).rows
            challenge_id = rows[0].sent_id if rows else None
            seen = state_of(rows)
        else:
            with rt.db.read_once() as conn:
                seen = rt.state(conn, member.id)
        if challenge_id is not None and guess is not None:
            out = guess
        else:
            factor = choose(seen)
            out = for_factor(rt, member, factor, purpose, binding, guess)
            other_factor = seen is not None and seen.default_factor is not None and factor.id != seen.default_factor.id
    if challenge_id is None:
        challenge_id, out = _record(rt, member, out, purpose, ip=ip, user_agent=user_agent, binding=binding,
                                    other_factor=other_factor, choose=choose, count_ip=count_ip)
    return challenge_id, out


def for_factor(rt: Runtime, member: Member, factor: FactorRow, purpose: str, binding: str | None,
               made: Outgoing | None) -> Outgoing:
    """The message to ``factor``, at its confirmed address: ``made`` when it is already that one."""
    recipient = factors.bound_recipient(rt, member, factor)
    if made is not None and made.channel == factor.kind and made.recipient == recipient:
        return made._replace(factor_id=factor.id)
    return outgoing(rt, member, factor.kind, purpose, binding, recipient=recipient, factor_id=factor.id)


def ip_refusal(wait: int) -> ThrottledError:
    """The refusal of a send from an address over ``max_sends_per_hour_per_ip``."""
    return ThrottledError(f"too many codes sent from this network in the last hour; try again in {wait // 60 + 1} min",
                          retry_after=wait, limit=IP_HOURLY)


def _likely_outgoing(rt: Runtime, member: Member, likely: Callable[[], str], purpose: str,
                     binding: str | None) -> Outgoing | None:
    """The message on the ``likely()`` channel, or None when it cannot be made there (the member
    may not have that channel; :func:`deliver` then chooses from the member's state as usual,
    and whatever stood in the way is raised there if it still matters)."""
    try:
        return outgoing(rt, member, likely(), purpose, binding)
    except Exception:  # noqa: BLE001 - a guess: the usual path makes the message again, or raises
        return None


def _record(rt: Runtime, member: Member, out: Outgoing, purpose: str, *, ip: str | None,
            user_agent: str | None, binding: str | None, other_factor: bool,
            choose: Callable[[MemberState | None], FactorRow] | None, count_ip: bool) -> tuple[Any, Outgoing]:
    """The new challenge's transaction: the member's lock, the throttle (with ``count_ip``, the
    address's hourly limit too), the insert (and the fallback or queued event); the challenge's id
    and message, or the :class:`ThrottledError` raised once its ``send_throttled`` or
    ``ip_limited`` row is committed."""
    queued = rt.dispatcher.queued
    postgresql = rt.db.is_postgresql
    with auditing.transaction(rt) as (conn, events):
        if postgresql:
            # One send at a time per member: the row lock. The row is made first only if missing.
            state = state_of(rt.db.run(conn, statements.LOCK_FOR_SEND_WITH_FACTORS, {"b_member": member.id}).rows)
            if choose is not None:
                chosen = choose(state)
                if out.factor_id != chosen.id:  # the member's factors changed since deliver() read them
                    out = for_factor(rt, member, chosen, purpose, binding, out)
                default = state.default_factor if state is not None else None
                other_factor = default is not None and chosen.id != default.id
            elif state is None:
                rt.ensure_member(conn, member.id)
                rt.db.run(conn, statements.LOCK_FOR_SEND, {"b_member": member.id})
        elif choose is None:  # BEGIN IMMEDIATE already serialises writers
            # With choose, deliver() read the member's row, and rows of otp_members are never deleted.
            rt.ensure_member(conn, member.id)
        params = throttle.send_params(rt, member, out, purpose, binding)
        channel, now = out.channel, out.now
        challenge_id: Any = None
        ip_limited: ThrottledError | None = None
        # Only when the member asked for a factor other than their default one.
        failed = delivery_outcome.failed_before(conn, member.id, channel) if other_factor else None
        if postgresql and not queued:
            # The throttle's counts and the insert in one statement; the refusal is explained from the counts.
            counts = rt.db.run(conn, statements.SENDS_AND_INSERT, params).one()
            challenge_id = counts.id
            refusal = None if challenge_id is not None else throttle.refusal(rt.settings, counts, now)
            if refusal is None and challenge_id is None:  # the same rule in SQL and in Python: cannot happen
                raise RuntimeError("the send throttle's SQL refused a send that its counts allow")
        else:
            refusal = throttle.refusal(rt.settings, rt.db.run(conn, statements.SENDS, params).one(), now)
        if refusal is None and count_ip and ip:
            # After the throttle: only a send that would otherwise happen counts against the address.
            # (count_ip is never set with SENDS_AND_INSERT, which has inserted the challenge by now.)
            wait = ip_limits.reserve(rt, conn, ip_limits.SEND, ip, rt.settings.max_sends_per_hour_per_ip, now)
            if wait is not None:
                ip_limits.record_limited(rt, conn, events, ip_limits.SEND, member.id, ip=ip, user_agent=user_agent,
                                         retry_after=wait, purpose=purpose)
                ip_limited = ip_refusal(wait)
        if ip_limited is not None:
            refusal = ip_limited
        elif refusal is not None:
            auditing.record(rt, conn, events, audit.SEND_THROTTLED, member.id, outcome=audit.FAILED, channel=channel,
                            ip=ip, user_agent=user_agent, limit=refusal.limit, retry_after=refusal.retry_after)
        else:
            if failed is not None:
                auditing.record(rt, conn, events, audit.DELIVERY_FALLBACK, member.id, channel=channel, ip=ip,
                                user_agent=user_agent, from_channel=failed.channel, to_channel=channel,
                                failed_challenge_id=failed.id, error_code=failed.error_code)
            if queued:
                conn.execute(statements.REPLACE_QUEUED, {"b_member": member.id, "b_now": now})
            if challenge_id is None:
                challenge_id = rt.db.run(conn, statements.INSERT_CHALLENGE, params).one()[0]
            if queued:
                auditing.record(rt, conn, events, audit.CHALLENGE_QUEUED, member.id, channel=channel, ip=ip,
                                user_agent=user_agent, purpose=purpose, challenge_id=challenge_id,
                                transport=out.transport.name, recipient=recipient_hint(out.transport, out.recipient),
                                dispatcher=rt.dispatcher.name)
    if refusal is not None:
        raise refusal
    return challenge_id, out

