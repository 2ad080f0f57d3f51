"""Adding a factor: begin (its factor type's secret, or a confirmation code sent), then confirm with a code.

A link-confirmed setup (a magic link) is finished by
:func:`~otp_pro._engine.tokens.verify_token`, through the same :func:`enrol`.

A setup begun with a ``binding`` (the web layer passes its session's) is
completed only with the same binding. The check lives here, with the pending
setup, and not in a web adapter's session: a member has one pending setup, in
the database, and a later ``begin_setup`` from another session replaces it, so
only the row can say which caller began the setup that is pending now (a mark
in the session would still be there after the replacement). Every adapter and
API caller gets the rule by passing the binding, and a link that confirms a
setup is bound to the same value through its challenge.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, update

from .. import audit
from ..audit import AuditEvent
from ..codes import normalize_code
from ..crypto import constant_time_in
from ..errors import InvalidCode, SetupBegunElsewhere, SetupError
from ..factor_types import AnswerRefused, Confirmed, FactorType
from ..i18n import L_
from ..member import Member
from ..results import Purpose, Reason, SetupInfo, VerifyResult
from ..storage import statements
from ..storage.schema import members
from . import auditing, backup_codes, delivery, devices, factors, lockout, status
from .runtime import MemberState, Runtime
from .verification import consume_challenge


def begin_setup(rt: Runtime, member: Member, channel: str, *, seed: str | None, label: object,
                reconfirm: object, ip: str | None, user_agent: str | None, binding: str | None) -> SetupInfo:
    """:meth:`OtpPro.begin_setup`: a new factor on ``channel``, or ``reconfirm`` (a factor's id) at a new address."""
    status.check_channel(rt, member, status.requirement(rt, member), channel)
    cleaned = factors.clean_label(label)
    now = rt.clock()
    expires = now + timedelta(seconds=rt.settings.setup_ttl_seconds)
    with rt.db.read() as conn:
        state = rt.state(conn, member.id)
        lockout.refuse_if_locked(state, now)
    factor_type = rt.channels[channel].factor_type
    delivered = factor_type is None or factor_type.delivers
    replaces: int | None = None
    if reconfirm is not None:
        old = factors.owned(state, reconfirm)
        if old.kind != channel or not delivered:
            raise SetupError(f"factor {old.id} is a {old.kind} factor: only a delivered factor is re-confirmed, "
                             "on its own channel")
        replaces = old.id
    if seed is not None and delivered:
        raise SetupError(f"a secret can only be imported for a factor that is not delivered, not {channel}")
    if not delivered:
        assert factor_type is not None
        made = factor_type.begin(member, imported=seed)
        _pending(rt, member, channel, expires, now, seed=rt.keys.encrypt(made.secret), label=cleaned,
                 recipient=None, replaces=None, binding=binding, ip=ip, user_agent=user_agent)
        show = dict(made.show)
        return SetupInfo(channel=channel, expires_at=expires, provisioning_uri=show.get("provisioning_uri"),
                         qr_svg=show.get("qr_svg"), secret=show.get("secret"), show=show)
    recipient = factors.current_recipient(rt, member, channel)
    already = factors.existing_on(rt, state, channel, recipient)
    if already is not None and already.id != replaces:
        raise SetupError(L_("this address is already one of the member's methods (factor %(factor)s)",
                            factor=already.id))
    _pending(rt, member, channel, expires, now, seed=None, label=cleaned,
             recipient=rt.keys.encrypt(recipient) if recipient is not None else None, replaces=replaces,
             binding=binding, ip=ip, user_agent=user_agent)
    challenge = delivery.deliver(rt, member, channel, Purpose.SETUP, ip=ip, user_agent=user_agent, binding=binding,
                                 recipient=recipient)
    return SetupInfo(channel=channel, expires_at=expires, challenge=challenge)


def _pending(rt: Runtime, member: Member, channel: str, expires: datetime, now: datetime, *, seed: str | None,
             label: str | None, recipient: str | None, replaces: int | None, binding: str | None, ip: str | None,
             user_agent: str | None) -> None:
    """Keep ``channel`` (and a TOTP seed or the address confirmed, encrypted, the label, the factor it
    re-confirms, and the binding's keyed hash) as the member's setup in progress, with its audit row."""
    with auditing.transaction(rt, member) as (conn, events):
        rt.ensure_member(conn, member.id)
        conn.execute(
            update(members).where(members.c.member_id == member.id).values(
                pending_channel=channel, pending_secret=seed, pending_expires_at=expires, updated_at=now,
                pending_binding_hash=rt.keys.hash("binding", binding) if binding else None,
                pending_label=label, pending_recipient=recipient, pending_factor_id=replaces,
            )
        )
        auditing.record(rt, conn, events, audit.SETUP_STARTED, member.id, channel=channel, ip=ip,
                        user_agent=user_agent, reconfirm=replaces)


def begun_with(rt: Runtime, binding_hash: str | None, binding: str | None) -> bool:
    """Whether ``binding`` is the one a pending setup stored as ``binding_hash`` (any caller when none was)."""
    if binding_hash is None:
        return True
    if not binding:
        return False
    candidates = [value.encode() for value in rt.keys.hashes("binding", binding)]
    return constant_time_in(binding_hash.encode(), candidates) >= 0


def complete_setup(rt: Runtime, member: Member, code: Any, *, binding: str | None, ip: str | None,
                   user_agent: str | None) -> list[str]:
    """:meth:`OtpPro.complete_setup`."""
    now = rt.clock()
    normalized = normalize_code(code)
    codes: list[str] | None = None
    result: VerifyResult | None = None
    with auditing.transaction(rt, member) as (conn, events):
        # The setup and the lock state read under the member's row lock (SQLite: the write lock),
        # in the transaction that records the attempt: concurrent attempts are judged one at a time.
        state = rt.state(conn, member.id, for_update=True)
        if state is None or state.pending_channel is None:
            raise SetupError(L_("no setup in progress: start it first"))
        if state.pending_expires_at is None or state.pending_expires_at <= now:
            raise SetupError(L_("the setup expired: start it again"))
        channel = state.pending_channel
        if not begun_with(rt, state.pending_binding_hash, binding):
            # Refused before the code is looked at: the caller learns nothing about it, so nothing is
            # counted. The refusal is recorded (and committed), then raised below.
            auditing.record(rt, conn, events, audit.VERIFY_FAILED, member.id, outcome=audit.FAILED, channel=channel,
                            ip=ip, user_agent=user_agent, reason=Reason.WRONG_BROWSER, setup=True, counted=False)
        else:
            lockout.refuse_if_locked(state, now)
            factor_type = _type_of(rt, channel)
            answer: Any = normalized
            if factor_type is not None and not factor_type.answer_is_code:
                # A ceremony's answer (a passkey's attestation) is passed as given, once its type knows the shape.
                answer = code if factor_type.accepts(code) else None
            if answer is None:
                raise InvalidCode("the code is not in a valid format",
                                  result=VerifyResult(False, reason=Reason.MALFORMED))
            reason: str = Reason.INVALID
            try:
                confirmed = _confirmed(rt, conn, member, factor_type, channel, state.pending_secret, answer, now)
            except AnswerRefused as refused:
                confirmed, reason = None, refused.reason
            if confirmed is not None:
                # Only a factor type that is not delivered keeps a pending secret (a TOTP seed); its answer
                # may make what the factor keeps instead (a passkey's public key).
                kept = state.pending_secret
                made = confirmed if isinstance(confirmed, Confirmed) else Confirmed(confirmed)
                secret = rt.keys.encrypt(made.secret) if made.secret is not None else \
                    rt.keys.rotate(kept) if kept else None
                codes = enrol(rt, conn, events, state, now, ip=ip, user_agent=user_agent, secret=secret,
                              last_step=made.counter if kept else None, handle=made.handle)
            else:
                result = lockout.record_failure(rt, conn, events, member.id, now, channel=channel, ip=ip,
                                                user_agent=user_agent, reason=reason, setup=True)
    if result is not None:
        raise InvalidCode("the code is not correct", result=result)
    if codes is None:
        raise SetupBegunElsewhere(L_("this setup was begun by another session: start the setup again"))
    return codes


def _type_of(rt: Runtime, channel: str) -> FactorType | None:
    definition = rt.channels.get(channel)
    return definition.factor_type if definition is not None else None


def _confirmed(rt: Runtime, conn: Connection, member: Member, factor_type: FactorType | None, channel: str,
               pending_secret: str | None, answer: Any, now: datetime) -> int | Confirmed | None:
    """Whether ``answer`` confirms the pending setup of ``channel``: the counter its factor type says it
    proves (0 for a delivered code's challenge, consumed here) or what the type made of it, or None."""
    if factor_type is None or factor_type.delivers:
        consumed = consume_challenge(rt, conn, member.id, answer, Purpose.SETUP, now, channel=channel)
        return 0 if consumed is not None else None
    if pending_secret is None:
        return None
    return factor_type.confirm(member, rt.keys.decrypt(pending_secret), answer, now)


def enrol(rt: Runtime, conn: Connection, events: list[AuditEvent], state: MemberState, now: datetime, *,
          ip: str | None, user_agent: str | None, secret: str | None = None,
          last_step: int | None = None, handle: str | None = None) -> list[str]:
    """Add the pending setup's factor (or re-bind the factor it re-confirms), clear the setup and the
    failures, revoke the trusted devices; the backup codes, issued with the first factor only ([] after).

    ``state`` is the member's, read in this transaction under the member's lock; a TOTP factor's
    ``secret`` (sealed) and ``last_step`` come from the code that confirmed it.
    """
    channel = state.pending_channel
    assert channel is not None
    recipient = rt.keys.decrypt(state.pending_recipient) if state.pending_recipient else None
    factor_id = factors.add(rt, conn, state, now, kind=channel, label=state.pending_label, secret=secret,
                            last_step=last_step, recipient=recipient, replaces=state.pending_factor_id, handle=handle)
    first = state.enrolled_at is None or not state.factors
    values: dict[str, Any] = dict(
        disabled_at=None, pending_channel=None, pending_secret=None, pending_expires_at=None,
        pending_binding_hash=None, pending_label=None, pending_recipient=None, pending_factor_id=None,
        updated_at=now, **statements.FAILURES_CLEARED,
    )
    if first:
        values["enrolled_at"] = now
    conn.execute(update(members).where(members.c.member_id == state.member_id).values(**values))
    # Backup codes are the member's recovery set: issued with the first factor, kept when more are added.
    codes = backup_codes.issue(rt, conn, state.member_id, now) if first or state.backup_salt is None else []
    # A device trusted under the old factors does not vouch for the new set.
    revoked = devices.revoke_all(conn, state.member_id, now)
    reconfirmed = state.pending_factor_id is not None and state.factor(state.pending_factor_id) is not None
    auditing.record(rt, conn, events, audit.SETUP_COMPLETED, state.member_id, channel=channel, ip=ip,
                    user_agent=user_agent, outcome=audit.OK, devices_revoked=revoked, factor_id=factor_id,
                    factors=len(state.factors) + (0 if reconfirmed else 1), reconfirmed=reconfirmed)
    if codes:
        # setup=True: part of the setup, which the member hears about once.
        auditing.record(rt, conn, events, audit.BACKUP_CODES_GENERATED, state.member_id, channel=channel, ip=ip,
                        user_agent=user_agent, count=len(codes), setup=True)
    return codes
