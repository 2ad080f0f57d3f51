"""Checking what a member typed: a one-time code, an authenticator (TOTP) code or a backup code.

A code is accepted once: its challenge is consumed by one conditional UPDATE
whose row count decides (:func:`consume_challenge`), a TOTP step only moves
forward (``last_step < matched_step``), a backup code is marked used the same
way. The member's lock state is read, under the member's row lock (SQLite: the
write lock), in the transaction that counts the attempt, so concurrent attempts
are judged one at a time and none once the member is locked; a failure of any
kind counts toward the lock (:func:`~otp_pro._engine.lockout.record_failure`).
A backup code's KDF never runs under SQLite's write lock: its attempt is counted
first (:func:`_verify_backup_code`). On PostgreSQL a right code on a clean record
is accepted by one statement in autocommit with its audit row (:func:`_verify_once`).
An attempt from a known address is counted against it as a failure before its
code is judged (``max_failed_verifications_per_hour_per_ip``,
:mod:`~otp_pro._engine.ip_limits`); a code that passes gives the count back, and
over the limit no code is judged (the one-statement paths read the limit too).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, select

from .. import audit, policy
from ..audit import AuditEvent
from ..codes import normalize_code
from ..factor_types import FactorType
from ..member import Member
from ..results import Method, Purpose, Reason, VerifyResult
from ..storage import statements
from ..storage.schema import challenges
from ..transports import TOTP
from . import auditing, backup_codes, factors, ip_limits, lockout, status
from .runtime import FactorRow, MemberState, Runtime, state_of


def verify(rt: Runtime, member: Member, code: object, *, ip: str | None, user_agent: str | None) -> VerifyResult:
    """:meth:`OtpPro.verify`."""
    normalized = normalize_code(code)
    if normalized is None:
        return VerifyResult(False, reason=Reason.MALFORMED)
    now = rt.clock()
    if not normalized.isdigit():
        return _verify_backup_code(rt, member, normalized, now, ip, user_agent)
    code_payloads = [name for name, p in rt.payloads.items() if p.entered_as_code]
    req = status.requirement(rt, member)
    postgresql = rt.db.is_postgresql
    is_code = len(normalized) == rt.settings.code_length
    state: Any = None
    if postgresql:
        accepted = _verify_once(rt, member, req, normalized, now, is_code, code_payloads, ip, user_agent)
        if accepted is not None:
            return accepted
    with auditing.transaction(rt, member) as (conn, events):
        # The lock state read under the member's row lock (SQLite: the write lock), in the
        # transaction that records the attempt: concurrent attempts are judged one at a time.
        state = rt.state(conn, member.id, for_update=True)
        refusal = refusal_of(rt, member, state, req, now)
        if refusal is not None:
            return refusal
        if ip and (limited := count_ip(rt, conn, events, member, ip, user_agent, now)) is not None:
            return limited
        app = _matching_factor(rt, member, state, req, normalized, now)
        method: str | None = None
        channel: str | None = None
        factor_id: int | None = None
        # On PostgreSQL the verify_ok row of a TOTP or one-time code is written by the statement
        # that accepts the code (see statements.audited); written_ok then says it is done.
        events_before = len(events)
        # A factor's matched counter (a TOTP step) is tried first: the member's pending challenges are
        # then left alone.
        if app is not None:
            factor, step, timed = app
            step_params = {"b_member": member.id, "b_factor": factor.id, "b_step": step, "b_now": now}
            answered = method_of(factor.kind)
            counter, counter_returning, _once = statements.factor_counter(timed)
            if postgresql:
                if accept_audited(rt, conn, counter_returning, step_params, events,
                                  ok_event(rt, member.id, factor.kind, answered, ip, user_agent,
                                           factor.id)) is not None:
                    method, channel, factor_id = answered, factor.kind, factor.id
            elif rt.db.run(conn, counter, step_params).rowcount == 1:
                method, channel, factor_id = answered, factor.kind, factor.id
        if method is None and is_code:
            consumed = consume_challenge(
                rt, conn, member.id, normalized, Purpose.VERIFY, now, payloads=code_payloads,
                accepted=(events, ok_event(rt, member.id, None, Method.CODE, ip, user_agent)) if postgresql else None)
            if consumed is not None:
                method, (channel, factor_id) = Method.CODE, consumed
        written_ok = len(events) > events_before
        if method is None:
            reason = Reason.INVALID
            if is_code and _expired_match(rt, conn, member.id, normalized, now):
                reason = Reason.EXPIRED
            result = lockout.record_failure(rt, conn, events, member.id, now, channel=state.channel, ip=ip,
                                            user_agent=user_agent, reason=reason)
        else:
            # Read in this transaction, the state says whether there is anything to reset.
            if state.failures or state.consecutive_failures or state.locked_until is not None:
                rt.db.run(conn, statements.RESET_FAILURES, {"b_member": member.id})
            if not written_ok:
                auditing.record(rt, conn, events, audit.VERIFY_OK, member.id, outcome=audit.OK,
                                channel=channel or state.channel, ip=ip, user_agent=user_agent, method=method,
                                factor_id=factor_id)
            ip_limits.release(rt, conn, ip_limits.FAILED_VERIFY, ip)
            result = VerifyResult(True, method=method, channel=channel or state.channel,
                                  attempts_remaining=rt.settings.max_attempts, factor_id=factor_id)
    return result


def refusal_of(rt: Runtime, member: Member, state: MemberState | None, req: policy.Requirement,
             now: datetime) -> VerifyResult | None:
    """Why a verification is refused without looking at the answer: no factor (or none the member's role
    allows now), or a lock. (A refusal is a falsy VerifyResult: compared with None, never with ``or``.)"""
    refusal = lockout.verify_refusal(state, now)
    if refusal is None and not factors.counted(rt, member, state, req):
        refusal = VerifyResult(False, reason=Reason.NOT_ENROLLED)
    return refusal


def _matching_factor(rt: Runtime, member: Member, state: MemberState, req: policy.Requirement, normalized: str,
                     now: datetime) -> tuple[FactorRow, int, bool] | None:
    """The member's factor (of a type that is not delivered, and that counts) whose answer ``normalized`` is,
    with the counter it proves (a TOTP time step) and whether the time of use is to be written (not for a
    type whose counter tells it); None when it is none of theirs. Each factor's type judges in turn (a
    member with two apps): :meth:`~otp_pro.factor_types.FactorType.check`."""
    for factor in state.factors:
        if factor.secret is None or factor.kind not in req.channels:
            continue
        definition = rt.channels.get(factor.kind)
        factor_type = definition.factor_type if definition is not None else None
        if factor_type is None or factor_type.delivers or not factor_type.answer_is_code \
                or not factor_type.accepts(normalized):
            continue
        counter = factor_type.check(member, rt.keys.decrypt(factor.secret), factor.last_step, normalized, now)
        if counter is not None and (factor.last_step is None or counter > factor.last_step):
            return factor, counter, type(factor_type).used_at is FactorType.used_at
    return None


def method_of(kind: str) -> str:
    """What :attr:`VerifyResult.method` says for an answer of a factor of ``kind`` that is not delivered."""
    return Method.TOTP if kind == TOTP else kind


def _ip_limited(rt: Runtime, conn: Connection, events: list[AuditEvent], member: Member, ip: str,
                user_agent: str | None, wait: int) -> VerifyResult:
    """The refusal of a verification from an address over ``max_failed_verifications_per_hour_per_ip``."""
    ip_limits.record_limited(rt, conn, events, ip_limits.FAILED_VERIFY, member.id, ip=ip, user_agent=user_agent,
                             retry_after=wait)
    return VerifyResult(False, reason=Reason.RATE_LIMITED, retry_after=wait, member_id=member.id)


def count_ip(rt: Runtime, conn: Connection, events: list[AuditEvent], member: Member, ip: str | None,
              user_agent: str | None, now: datetime) -> VerifyResult | None:
    """Count the attempt against its address as a failure, in the transaction that judges it; the
    refusal when the address is over its limit, else None (a code that passes gives the count back).

    Counted after the member's lock state is read (a refused member is no attempt: nothing is
    judged) and before the code is: concurrent attempts from one address are counted one after the
    other (the counter's row lock, SQLite's write lock) and none is judged past the limit. Row locks
    are always taken member first, then counter, so two transactions never wait on each other.
    """
    wait = ip_limits.reserve(rt, conn, ip_limits.FAILED_VERIFY, ip,
                             rt.settings.max_failed_verifications_per_hour_per_ip, now)
    return None if wait is None else _ip_limited(rt, conn, events, member, ip or "", user_agent, wait)


def ip_gate_params(rt: Runtime, ip: str | None, now: datetime) -> dict[str, Any]:
    """The binds of :data:`~otp_pro.storage.statements.IP_UNDER_LIMIT` for failed verifications from ``ip``."""
    return {"b_ip": rt.keys.hash("ip", ip) if ip else None, "b_ip_kind": ip_limits.FAILED_VERIFY,
            "b_ip_cap": rt.settings.max_failed_verifications_per_hour_per_ip,
            "b_ip_window_ended": now - ip_limits.WINDOW}

def _verify_backup_code(rt: Runtime, member: Member, normalized: str, now: datetime, ip: str | None,
                        user_agent: str | None) -> VerifyResult:
    """A backup code: its KDF runs once the attempt holds its place among the member's attempts.

    PostgreSQL: in one transaction, under the member's row lock (it holds this member
    only): the lock state is read, the KDF runs, the code is used or the failure
    counted. SQLite: the KDF must not run while the write lock (the whole database's)
    is held, so the attempt is counted first, as a failure, in a transaction that
    reads the lock state; the KDF runs outside any; a second transaction uses the code
    and forgives the failures counted up to this attempt, or writes the failure's
    audit rows. Either way N concurrent attempts judge at most ``max_attempts``.
    """
    if rt.db.is_postgresql:
        with auditing.transaction(rt, member) as (conn, events):
            state = rt.state(conn, member.id, for_update=True)
            refusal = lockout.verify_refusal(state, now)
            if refusal is not None:
                return refusal
            if ip and (limited := count_ip(rt, conn, events, member, ip, user_agent, now)) is not None:
                return limited
            assert state is not None
            code_id, unused = backup_codes.match(rt, state, normalized, conn) if state.backup_salt else (None, 0)
            if code_id is None or not backup_codes.use(conn, code_id, now):
                return lockout.record_failure(rt, conn, events, member.id, now, channel=state.channel, ip=ip,
                                              user_agent=user_agent, reason=Reason.INVALID)
            rt.db.run(conn, statements.RESET_FAILURES, {"b_member": member.id})
            ip_limits.release(rt, conn, ip_limits.FAILED_VERIFY, ip)
            return _backup_code_used(rt, conn, events, member, state.channel, unused - 1, ip, user_agent)
    with auditing.transaction(rt, member) as (conn, reserved):
        state = rt.state(conn, member.id)
        refusal = lockout.verify_refusal(state, now)
        if refusal is not None:
            return refusal
        if ip and (limited := count_ip(rt, conn, reserved, member, ip, user_agent, now)) is not None:
            return limited
        assert state is not None
        counted = lockout.count_failure(rt, conn, member.id, now)
    code_id, unused = backup_codes.match(rt, state, normalized) if state.backup_salt else (None, 0)
    with auditing.transaction(rt, member) as (conn, events):
        if code_id is None or not backup_codes.use(conn, code_id, now):
            return lockout.audit_failure(rt, conn, events, member.id, counted, channel=state.channel, ip=ip,
                                         user_agent=user_agent, reason=Reason.INVALID)
        conn.execute(statements.FORGIVE_COUNTED, {"b_member": member.id, "b_counted": counted.consecutive,
                                                  "b_max_attempts": rt.settings.max_attempts})
        ip_limits.release(rt, conn, ip_limits.FAILED_VERIFY, ip)
        return _backup_code_used(rt, conn, events, member, state.channel, unused - 1, ip, user_agent)


def _backup_code_used(rt: Runtime, conn: Connection, events: list[AuditEvent], member: Member,
                      channel: str | None, remaining: int, ip: str | None, user_agent: str | None) -> VerifyResult:
    """The audit rows of an accepted backup code, and the result."""
    auditing.record(rt, conn, events, audit.BACKUP_CODE_USED, member.id, outcome=audit.OK, ip=ip,
                    user_agent=user_agent, remaining=remaining)
    auditing.record(rt, conn, events, audit.VERIFY_OK, member.id, outcome=audit.OK, channel=channel, ip=ip,
                    user_agent=user_agent, method=Method.BACKUP_CODE)
    return VerifyResult(True, method=Method.BACKUP_CODE, channel=channel, attempts_remaining=rt.settings.max_attempts,
                        backup_codes_remaining=remaining)


def _verify_once(rt: Runtime, member: Member, req: policy.Requirement, normalized: str, now: datetime,
                 is_code: bool, code_payloads: Sequence[str], ip: str | None,
                 user_agent: str | None) -> VerifyResult | None:
    """PostgreSQL: accept a right code in one or two round trips, or answer None to let the transaction decide.

    A one-time code is tried by one statement in autocommit, which is its own
    transaction (:func:`~otp_pro.storage.statements.state_and_consume`): for a member
    with a clean record it consumes the code and inserts the ``verify_ok`` row, and it
    returns the member's state either way. Otherwise the state is read in autocommit.
    A matching TOTP step is then accepted by one more statement, on condition that the
    state read still holds (enrolled, not locked, the same seed). Anything else (a
    refusal, a wrong or replayed code, failure counters to reset) is left to
    :func:`verify`'s transaction, which reads again and records what happened; a
    refusal read here is returned as the transaction would return it.
    """
    events: list[AuditEvent] = []
    state: Any
    if is_code:
        accepted = ok_event(rt, member.id, None, Method.CODE, ip, user_agent)
        params, hashes = consume_params(rt, member.id, normalized, Purpose.VERIFY, now, payloads=code_payloads)
        with rt.db.write_once() as conn:
            rows = rt.db.run(conn, statements.state_and_consume(hashes, len(code_payloads)),
                             {**params, **ip_gate_params(rt, ip, now), **audit.params(accepted)}).rows
        ok = rows[0] if rows else None
        if ok is not None and ok.ok_id is not None:
            auditing.emit(rt, [AuditEvent(**{**accepted.__dict__, "id": ok.ok_id, "channel": ok.ok_channel})],
                          member)
            return VerifyResult(True, method=Method.CODE, channel=ok.ok_channel,
                                attempts_remaining=rt.settings.max_attempts, factor_id=ok.ok_factor_id)
        state = state_of(rows)
    else:
        with rt.db.read_once() as conn:
            state = rt.state(conn, member.id)
    refusal = refusal_of(rt, member, state, req, now)
    if refusal is not None or state.failures or state.consecutive_failures or state.locked_until is not None:
        return refusal
    app = _matching_factor(rt, member, state, req, normalized, now)
    if app is not None:
        factor, step, timed = app
        answered = method_of(factor.kind)
        with rt.db.write_once() as conn:
            params = {"b_member": member.id, "b_factor": factor.id, "b_step": step, "b_seed": factor.secret,
                      "b_now": now, **ip_gate_params(rt, ip, now)}
            won = accept_audited(rt, conn, statements.factor_counter(timed)[2], params, events,
                                 ok_event(rt, member.id, factor.kind, answered, ip, user_agent, factor.id))
        if won is None:
            return None
        auditing.emit(rt, events, member)
        return VerifyResult(True, method=answered, channel=factor.kind, attempts_remaining=rt.settings.max_attempts,
                            factor_id=factor.id)
    # A wrong, expired or replayed code, an authenticator member's wrong code or emailed
    # fallback code: the transaction tries the code and records the failure (one write, not two).
    return None


def consume_challenge(rt: Runtime, conn: Connection, member_id: str, secret: str, purpose: str, now: datetime, *,
                      channel: str | None = None, payloads: Sequence[str] | None = None,
                      accepted: tuple[list[AuditEvent], AuditEvent] | None = None) -> tuple[str, int | None] | None:
    """Consume a live challenge matching ``secret``: one conditional UPDATE; its row count decides.

    Returns the consumed challenge's channel and factor, or None. With ``accepted`` (``events``
    and the event to write on success; PostgreSQL only) the audit row is inserted by
    the same statement and appended to ``events``.
    """
    params, hashes = consume_params(rt, member_id, secret, purpose, now, channel=channel, payloads=payloads)
    statement = statements.consume(channel is not None, hashes, None if payloads is None else len(payloads))
    if accepted is not None:
        audited_row = accepted_row(rt, conn, statement, params, *accepted)
        return (audited_row[1], audited_row[2]) if audited_row is not None else None
    row = rt.db.run(conn, statement, params).first()
    return (row[0], row[1]) if row is not None else None


def consume_params(rt: Runtime, member_id: str, secret: str, purpose: str, now: datetime, *,
                   channel: str | None = None, payloads: Sequence[str] | None = None) -> tuple[dict[str, Any], int]:
    """The binds of :func:`~otp_pro.storage.statements.consume` for ``secret``, and how many key hashes they hold."""
    hashes = rt.keys.hashes("challenge", secret)
    params: dict[str, Any] = {"b_member": member_id, "b_purpose": purpose, "b_now": now}
    params.update((f"b_hash{i}", value) for i, value in enumerate(hashes))
    if channel is not None:
        params["b_channel"] = channel
    if payloads is not None:
        params.update((f"b_payload{i}", name) for i, name in enumerate(payloads))
    return params, len(hashes)


def accepted_row(rt: Runtime, conn: Connection, statement: Any, params: dict[str, Any],
                 events: list[AuditEvent], event: AuditEvent) -> Any:
    """PostgreSQL: run ``statement`` with ``event``'s audit row (:func:`~otp_pro.storage.statements.audited`);
    the returned row (the audit row's id and channel, and the factor when the statement names one), or None
    when the statement changed nothing."""
    row = rt.db.run(conn, statements.audited(statement), {**params, **audit.params(event)}).first()
    if row is None:
        return None
    events.append(AuditEvent(**{**event.__dict__, "id": row[0], "channel": row[1]}))
    return row


def accept_audited(rt: Runtime, conn: Connection, statement: Any, params: dict[str, Any],
                   events: list[AuditEvent], event: AuditEvent) -> str | None:
    """:func:`accepted_row`'s audit row's channel, or None when the statement changed nothing."""
    row = accepted_row(rt, conn, statement, params, events, event)
    return cast("str | None", row[1]) if row is not None else None


def ok_event(rt: Runtime, member_id: str, channel: str | None, method: str, ip: str | None,
             user_agent: str | None, factor_id: int | None = None) -> AuditEvent:
    """The ``verify_ok`` event that :func:`accept_audited` writes with the accepting statement (a one-time
    code's factor is known only once its challenge is consumed: the event then names none)."""
    details: dict[str, Any] = {"method": method}
    if factor_id is not None:
        details["factor_id"] = factor_id
    return AuditEvent(kind=audit.VERIFY_OK, at=rt.clock(), outcome=audit.OK, member_id=member_id, channel=channel,
                      ip=ip, user_agent=user_agent, details=details)


def _expired_match(rt: Runtime, conn: Connection, member_id: str, code: str, now: datetime) -> bool:
    """Whether ``code`` is an unused code of the member's that expired (a refusal then says so)."""
    return conn.execute(
        select(challenges.c.id).where(
            challenges.c.member_id == member_id,
            challenges.c.secret_hash.in_(rt.keys.hashes("challenge", code)),
            challenges.c.consumed_at.is_(None),
            challenges.c.expires_at <= now,
        ).limit(1)
    ).first() is not None

