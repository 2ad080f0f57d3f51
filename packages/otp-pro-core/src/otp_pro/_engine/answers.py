"""Answers that are not typed codes: the challenges a factor type issues, and judging what answers them.

A passkey is the first such type: the server picks a random challenge, the
browser has the authenticator sign it, and the answer is a JSON document, not
digits. The rules are the core's, so every such type gets them without writing
them (:class:`~otp_pro.factor_types.FactorType` says what a type implements):

* A challenge is stored as a keyed hash (``otp_challenges``, status ``issued``:
  never counted as a send), bound to the caller's binding (the session that asked
  for it), live for the type's ``challenge_seconds``. A new one for the same
  member, channel and binding replaces the last.
* An answer is judged under the member's lock (SQLite: the write lock), in the
  transaction that counts the attempt, exactly as a code is: the lock state first,
  then the caller's address against its limit, then the challenge the answer names
  is consumed by one conditional ``UPDATE`` (single use, this binding, not expired),
  and only then does the type check the signature. A refused challenge says why
  (``used``, ``expired``, ``replaced``, ``wrong_browser``) and counts as a failure.
* The factor's counter moves by one conditional ``UPDATE`` from the value the type
  was shown: forward only, or, for a type whose counter may stay put
  (``counter_must_grow = False``), to a value never smaller.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from .. import audit
from ..errors import ChannelUnavailable, FactorNotEnrolled
from ..factor_types import AnswerRefused, FactorType, StoredFactor
from ..i18n import N_
from ..member import Member
from ..results import ChallengeStatus, IssuedChallenge, Purpose, Reason, VerifyResult
from ..storage import statements
from ..storage.schema import challenges
from ..storage.schema import factors as factor_table
from . import auditing, factors, ip_limits, lockout, status
from .runtime import FactorRow, Runtime
from .verification import count_ip, method_of, refusal_of

#: The payload column of an issued challenge (nothing is delivered: there is no payload to render).
ISSUED_PAYLOAD = "issued"

#: A counter that may stay put moves from the value the type was shown to one never smaller.
_COUNTER_KEPT = update(factor_table).where(
    factor_table.c.id == bindparam("b_factor"), factor_table.c.member_id == bindparam("b_member"),
    factor_table.c.last_step.is_not_distinct_from(bindparam("b_seen", type_=factor_table.c.last_step.type)),
).values(last_step=bindparam("b_step"), last_used_at=bindparam("b_now", type_=factor_table.c.last_used_at.type))


def _challenge_type(rt: Runtime, channel: str) -> FactorType:
    definition = rt.channels.get(channel)
    factor_type = definition.factor_type if definition is not None else None
    if factor_type is None or not factor_type.issues_challenge:
        raise ChannelUnavailable(f"channel {channel!r} issues no challenge to answer", channel=channel,
                                 reason=N_("it issues no challenge to answer"))
    return factor_type


def begin_challenge(rt: Runtime, member: Member, channel: str, *, binding: str | None, ip: str | None,
                    user_agent: str | None) -> IssuedChallenge:
    """:meth:`OtpPro.begin_challenge`."""
    if not isinstance(binding, str) or not binding:
        raise ValueError("begin_challenge needs the caller's binding (a random value kept in its session): "
                         "a challenge is answered only in the session that asked for it")
    factor_type = _challenge_type(rt, channel)
    req = status.requirement(rt, member)
    now = rt.clock()
    with rt.db.write() as conn:
        state = rt.state(conn, member.id, for_update=True)
        lockout.refuse_if_locked(state, now)
        mine = [f for f in factors.counted(rt, member, state, req) if f.kind == channel]
        if not mine:
            raise FactorNotEnrolled(f"the member has no {channel} factor", channel=channel)
        issued = factor_type.issue(member, [_stored(rt, f) for f in mine], now)
        expires = store_issued(rt, conn, member.id, channel, factor_type, issued.value, binding, now)
    return IssuedChallenge(channel=channel, expires_at=expires, show=dict(issued.show))


def store_issued(rt: Runtime, conn: Connection, member_id: str | None, channel: str, factor_type: FactorType,
                 value: str, binding: str, now: datetime) -> datetime:
    """Keep an issued challenge ``value`` (its keyed hash) for ``member_id`` (None: a first factor's, for no
    member), bound to ``binding``, replacing the one this binding was shown before; when it expires."""
    binding_hash = rt.keys.hash("binding", binding)
    owner = challenges.c.member_id.is_(None) if member_id is None else challenges.c.member_id == member_id
    # Reloading the page asks again: the challenge it showed before stops counting.
    conn.execute(update(challenges).where(
        owner, challenges.c.channel == channel, challenges.c.status == ChallengeStatus.ISSUED,
        challenges.c.binding_hash == binding_hash, challenges.c.consumed_at.is_(None),
        challenges.c.invalidated_at.is_(None),
    ).values(invalidated_at=now))
    expires = now + timedelta(seconds=factor_type.challenge_seconds)
    row = {"member_id": member_id, "channel": channel, "factor_id": None, "payload": ISSUED_PAYLOAD,
           "purpose": Purpose.VERIFY, "secret_hash": rt.keys.hash("challenge", value), "recipient_hash": None,
           "binding_hash": binding_hash, "status": ChallengeStatus.ISSUED, "created_at": now,
           "expires_at": expires, "message": None}
    rt.db.run(conn, statements.INSERT_CHALLENGE, {f"c_{name}": value for name, value in row.items()})
    return expires


def _stored(rt: Runtime, factor: FactorRow) -> StoredFactor:
    assert factor.secret is not None
    return StoredFactor(factor.id, rt.keys.decrypt(factor.secret), factor.last_step)


def verify_answer(rt: Runtime, member: Member, answer: Any, *, binding: str | None, ip: str | None,
                  user_agent: str | None) -> VerifyResult:
    """:meth:`OtpPro.verify` for an answer that is not a typed code (a passkey's assertion)."""
    now = rt.clock()
    req = status.requirement(rt, member)
    with auditing.transaction(rt, member) as (conn, events):
        state = rt.state(conn, member.id, for_update=True)
        refused = refusal_of(rt, member, state, req, now)
        if refused is not None:
            return refused
        assert state is not None  # a member without a row has no factor: refused above
        by_kind: dict[str, tuple[FactorType, list[FactorRow]]] = {}
        for factor in factors.counted(rt, member, state, req):
            factor_type = rt.channels[factor.kind].factor_type
            if factor_type is None or factor_type.delivers or factor_type.answer_is_code \
                    or factor.secret is None or not factor_type.accepts(answer):
                continue
            by_kind.setdefault(factor.kind, (factor_type, []))[1].append(factor)
        if not by_kind:
            # Nothing of the member's takes an answer of this shape: as a malformed code, not counted.
            return VerifyResult(False, reason=Reason.MALFORMED)
        if ip and (limited := count_ip(rt, conn, events, member, ip, user_agent, now)) is not None:
            return limited
        reason: str = Reason.INVALID
        accepted: FactorRow | None = None
        for kind, (factor_type, mine) in by_kind.items():
            if factor_type.issues_challenge:
                reason = consume_issued(rt, conn, member.id, kind, factor_type.challenge_of(answer), binding, now) or ""
                if reason:
                    continue
            accepted, why = _check(rt, conn, member, factor_type, mine, answer, now)
            if accepted is not None:
                break
            reason = why
        if accepted is None:
            return lockout.record_failure(rt, conn, events, member.id, now, channel=next(iter(by_kind)), ip=ip,
                                          user_agent=user_agent, reason=reason or Reason.INVALID)
        if state.failures or state.consecutive_failures or state.locked_until is not None:
            rt.db.run(conn, statements.RESET_FAILURES, {"b_member": member.id})
        method = method_of(accepted.kind)
        auditing.record(rt, conn, events, audit.VERIFY_OK, member.id, outcome=audit.OK, channel=accepted.kind,
                        ip=ip, user_agent=user_agent, method=method, factor_id=accepted.id)
        ip_limits.release(rt, conn, ip_limits.FAILED_VERIFY, ip)
        return VerifyResult(True, method=method, channel=accepted.kind, attempts_remaining=rt.settings.max_attempts,
                            factor_id=accepted.id)


def consume_issued(rt: Runtime, conn: Connection, member_id: str | None, channel: str, value: str | None,
                   binding: str | None, now: Any) -> str | None:
    """Consume the live challenge ``value`` of ``channel`` issued to ``member_id`` (None: a first factor's)
    and ``binding``: None when it was, else why not (``invalid``: no such challenge; ``used``, ``replaced``,
    ``expired``, ``wrong_browser``)."""
    if not isinstance(value, str) or not value:
        return Reason.INVALID
    secret_hashes = rt.keys.hashes("challenge", value)
    binding_hashes = rt.keys.hashes("binding", binding) if binding else []
    owner = challenges.c.member_id.is_(None) if member_id is None else challenges.c.member_id == member_id
    mine = (owner, challenges.c.channel == channel, challenges.c.purpose == Purpose.VERIFY,
            challenges.c.secret_hash.in_(secret_hashes))
    if binding_hashes:
        won = conn.execute(update(challenges).where(
            *mine, challenges.c.binding_hash.in_(binding_hashes), challenges.c.status == ChallengeStatus.ISSUED,
            challenges.c.consumed_at.is_(None), challenges.c.invalidated_at.is_(None),
            challenges.c.expires_at > now,
        ).values(consumed_at=now)).rowcount
        if won == 1:
            return None
    row = conn.execute(select(challenges.c.consumed_at, challenges.c.invalidated_at, challenges.c.binding_hash)
                       .where(*mine).limit(1)).first()
    if row is None:
        return Reason.INVALID
    if row.binding_hash not in binding_hashes:
        return Reason.WRONG_BROWSER
    if row.consumed_at is not None:
        return Reason.USED
    if row.invalidated_at is not None:
        return Reason.REPLACED
    return Reason.EXPIRED


def _check(rt: Runtime, conn: Connection, member: Member, factor_type: FactorType, mine: list[FactorRow],
           answer: Any, now: Any) -> tuple[FactorRow | None, str]:
    """The member's factor among ``mine`` that ``answer`` proves, its counter accepted once; or None and why."""
    for factor in mine:
        assert factor.secret is not None
        try:
            counter = factor_type.check(member, rt.keys.decrypt(factor.secret), factor.last_step, answer, now)
        except AnswerRefused as refusal:
            return None, refusal.reason
        if counter is None:
            continue
        # The factor the answer proves decides (under the member's lock nothing moves its counter meanwhile).
        not_moved = accept_counter(rt, conn, member.id, factor, factor_type, counter, now)
        return (factor, "") if not_moved is None else (None, not_moved)
    return None, Reason.INVALID


def accept_counter(rt: Runtime, conn: Connection, member_id: str, factor: FactorRow, factor_type: FactorType,
                   counter: int, now: Any) -> str | None:
    """Move ``factor``'s counter to ``counter`` by one conditional UPDATE from the value the type was shown:
    None when it moved, ``counter_regressed`` for a smaller counter, ``used`` when it could not move (an
    equal one where the counter must grow, or another request moved it first)."""
    seen = factor.last_step
    if seen is not None and (counter < seen or (counter == seen and factor_type.counter_must_grow)):
        return "counter_regressed" if counter < seen else Reason.USED
    params = {"b_member": member_id, "b_factor": factor.id, "b_step": counter, "b_now": now, "b_seen": seen}
    statement = statements.FACTOR_COUNTER if factor_type.counter_must_grow else _COUNTER_KEPT
    return None if rt.db.run(conn, statement, params).rowcount == 1 else Reason.USED
