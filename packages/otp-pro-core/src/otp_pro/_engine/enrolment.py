"""Setting up a second factor: begin (a TOTP seed, or a confirmation code sent), then confirm with a code.

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

from .. import audit, totp
from ..audit import AuditEvent
from ..codes import normalize_code
from ..crypto import constant_time_in
from ..errors import InvalidCode, SetupBegunElsewhere, SetupError
from ..member import Member
from ..results import Purpose, Reason, SetupInfo, VerifyResult
from ..storage import statements
from ..storage.schema import members
from ..transports import TOTP
from . import auditing, backup_codes, delivery, devices, lockout, status
from .runtime import Runtime
from .verification import consume_challenge


def begin_setup(rt: Runtime, member: Member, channel: str, *, seed: str | None, ip: str | None,
                user_agent: str | None, binding: str | None) -> SetupInfo:
    """:meth:`OtpPro.begin_setup`."""
    status.check_channel(rt, member, status.requirement(rt, member), channel)
    now = rt.clock()
    expires = now + timedelta(seconds=rt.settings.setup_ttl_seconds)
    with rt.db.read() as conn:
        lockout.refuse_if_locked(rt.state(conn, member.id), now)
    if seed is not None and channel != TOTP:
        raise SetupError("a seed can only be imported for the totp channel")
    if channel == TOTP:
        seed = totp.new_seed() if seed is None else totp.check_seed(seed)
        cfg = rt.settings.totp
        issuer = cfg.issuer or rt.settings.site_name
        uri = totp.provisioning_uri(seed, member.email or member.display_name, issuer, cfg)
        _pending(rt, member, TOTP, expires, now, seed=rt.keys.encrypt(seed), binding=binding, ip=ip,
                 user_agent=user_agent)
        return SetupInfo(
            channel=TOTP, expires_at=expires, provisioning_uri=uri, qr_svg=totp.qr_svg(uri), secret=seed
        )
    _pending(rt, member, channel, expires, now, seed=None, binding=binding, ip=ip, user_agent=user_agent)
    challenge = delivery.deliver(rt, member, channel, Purpose.SETUP, ip=ip, user_agent=user_agent, binding=binding)
    return SetupInfo(channel=channel, expires_at=expires, challenge=challenge)


def _pending(rt: Runtime, member: Member, channel: str, expires: datetime, now: datetime, *, seed: str | None,
             binding: str | None, ip: str | None, user_agent: str | None) -> None:
    """Keep ``channel`` (and a TOTP seed, encrypted, and the binding's keyed hash) as the member's setup in
    progress, with its audit row."""
    with auditing.transaction(rt, member) as (conn, events):
        rt.ensure_member(conn, member.id)
        conn.execute(
            update(members).where(members.c.member_id == member.id).values(
                pending_channel=channel, pending_totp_seed=seed, pending_expires_at=expires, updated_at=now,
                pending_binding_hash=rt.keys.hash("binding", binding) if binding else None,
            )
        )
        auditing.record(rt, conn, events, audit.SETUP_STARTED, member.id, channel=channel, ip=ip,
                        user_agent=user_agent)


def begun_with(rt: Runtime, binding_hash: str | None, binding: str | None) -> bool:
    """Whether ``binding`` is the one a pending setup stored as ``binding_hash`` (any caller when none was)."""
    if binding_hash is None:
        return True
    if not binding:
        return False
    candidates = [value.encode() for value in rt.keys.hashes("binding", binding)]
    return constant_time_in(binding_hash.encode(), candidates) >= 0


def complete_setup(rt: Runtime, member: Member, code: str, *, binding: str | None, ip: str | None,
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
            raise SetupError("no setup in progress: call begin_setup first")
        if state.pending_expires_at is None or state.pending_expires_at <= now:
            raise SetupError("the setup expired: start it again")
        channel = state.pending_channel
        if not begun_with(rt, state.pending_binding_hash, binding):
            # Refused before the code is looked at: the caller learns nothing about it, so nothing is
            # counted. The refusal is recorded (and committed), then raised below.
            auditing.record(rt, conn, events, audit.VERIFY_FAILED, member.id, outcome=audit.FAILED, channel=channel,
                            ip=ip, user_agent=user_agent, reason=Reason.WRONG_BROWSER, setup=True, counted=False)
        else:
            lockout.refuse_if_locked(state, now)
            if normalized is None:
                raise InvalidCode("the code is not in a valid format",
                                  result=VerifyResult(False, reason=Reason.MALFORMED))
            if _confirmed(rt, conn, member.id, channel, state.pending_totp_seed, normalized, now):
                codes = enrol(rt, conn, events, member.id, channel, now, ip=ip, user_agent=user_agent)
            else:
                result = lockout.record_failure(rt, conn, events, member.id, now, channel=channel, ip=ip,
                                                user_agent=user_agent, reason=Reason.INVALID, setup=True)
    if result is not None:
        raise InvalidCode("the code is not correct", result=result)
    if codes is None:
        raise SetupBegunElsewhere("this setup was begun by another session: start the setup again")
    return codes


def _confirmed(rt: Runtime, conn: Connection, member_id: str, channel: str, pending_seed: str | None,
               normalized: str, now: datetime) -> bool:
    """Whether ``normalized`` confirms the pending setup of ``channel``; a TOTP seed is moved into place then."""
    if channel != TOTP:
        return consume_challenge(rt, conn, member_id, normalized, Purpose.SETUP, now, channel=channel) is not None
    seed = pending_seed or ""
    step = totp.match(rt.keys.decrypt(seed), normalized, now, rt.settings.totp, after_step=None)
    if step is None:
        return False
    return conn.execute(
        update(members).where(
            members.c.member_id == member_id,
            members.c.pending_channel == TOTP,
            members.c.pending_totp_seed == seed,
        ).values(totp_seed=rt.keys.rotate(seed), totp_last_step=step)
    ).rowcount == 1


def enrol(rt: Runtime, conn: Connection, events: list[AuditEvent], member_id: str, channel: str, now: datetime, *,
          ip: str | None, user_agent: str | None) -> list[str]:
    """Make ``channel`` the member's factor, clear the setup and the failures, issue backup codes, revoke the
    trusted devices; the backup codes.

    A TOTP seed was moved into place by the statement that matched its code;
    any other channel drops the member's earlier seed.
    """
    values: dict[str, Any] = dict(
        channel=channel, enrolled_at=now, disabled_at=None, pending_channel=None, pending_totp_seed=None,
        pending_expires_at=None, pending_binding_hash=None, updated_at=now, **statements.FAILURES_CLEARED,
    )
    if channel != TOTP:
        values.update(totp_seed=None, totp_last_step=None)
    conn.execute(update(members).where(members.c.member_id == member_id).values(**values))
    codes = backup_codes.issue(rt, conn, member_id, now)
    # A device trusted under the old factor does not vouch for the new one.
    revoked = devices.revoke_all(conn, member_id, now)
    auditing.record(rt, conn, events, audit.SETUP_COMPLETED, member_id, channel=channel, ip=ip,
                    user_agent=user_agent, outcome=audit.OK, devices_revoked=revoked)
    # setup=True: part of the setup, which the member hears about once.
    auditing.record(rt, conn, events, audit.BACKUP_CODES_GENERATED, member_id, channel=channel, ip=ip,
                    user_agent=user_agent, count=len(codes), setup=True)
    return codes
