"""What happened to a delivery: recording that a provider took or refused a challenge, and reading it back.

What a provider already did must be recorded even if the database connection
drops at that moment, so those writes get one more try on a fresh connection
(:func:`once_more`), and each is conditional or checked so that nothing is
recorded twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select, update

from .. import audit
from ..audit import AuditEvent
from ..errors import DeliveryError, StorageError, TransientDeliveryError
from ..member import Member
from ..results import ChallengeStatus, DeliveryStatus
from ..storage import statements
from ..storage.schema import challenges
from . import auditing, status
from .runtime import Runtime

log = logging.getLogger("otp_pro")

#: Statuses of a delivery still in progress (a queue dispatcher); past the code's lifetime they read as failed.
IN_FLIGHT = (ChallengeStatus.QUEUED, ChallengeStatus.SENDING, ChallengeStatus.PENDING)


def as_delivery_error(exc: Exception, transport: str) -> DeliveryError:
    """A transport's exception as a :class:`DeliveryError`: itself, or a transient one naming only its type."""
    if isinstance(exc, DeliveryError):
        return exc
    log.warning("otp-pro transport %s raised %s", transport, type(exc).__name__)
    return TransientDeliveryError(f"transport {transport} failed: {type(exc).__name__}", transport=transport,
                                  provider_code=type(exc).__name__)


def once_more(action: Callable[[], object], done: Callable[[], bool] | None = None) -> None:
    """Run ``action``, a write that records what a provider already did, once more if the connection was lost.

    The first :class:`StorageError` rolled its transaction back, and a pooled
    connection the server dropped is replaced on the next checkout, so the second
    try runs on a fresh connection. The connection can also be lost after the
    server committed: ``done`` then says so and nothing is written twice
    (``action`` itself may be conditional on the row's status instead). A
    database that is down for good fails both tries.
    """
    try:
        action()
    except StorageError as exc:
        if exc.reason not in ("connection_lost", "unavailable"):
            raise
        log.warning("otp-pro lost its database connection while recording a delivery; trying once more")
        if done is None or not done():
            action()


def challenge_status(rt: Runtime, challenge_id: int) -> str | None:
    with rt.db.read_once() as conn:
        found: str | None = conn.execute(select(challenges.c.status).where(
            challenges.c.id == challenge_id)).scalar_one_or_none()
    return found


def mark_sent(rt: Runtime, challenge_id: int, marked: dict[str, Any], sent: AuditEvent, member: Member) -> None:
    """Mark the inline challenge sent (voiding the member's older ones) with its ``challenge_sent`` row."""
    if rt.db.is_postgresql:
        with rt.db.write_once() as conn:
            event_id = rt.db.run(conn, statements.MARK_SENT_AUDITED, {**marked, **audit.params(sent)}).one()[0]
        auditing.emit(rt, [AuditEvent(**{**sent.__dict__, "id": event_id})], member)
    else:
        with auditing.transaction(rt, member) as (conn, events):
            rt.db.run(conn, statements.MARK_SENT_VOID_OTHERS, marked)
            events.append(audit.write(rt.db, conn, sent))


def fail(rt: Runtime, challenge_id: int, member_id: str, channel: str, purpose: str, transport: str,
         error: DeliveryError, *, ip: str | None = None, user_agent: str | None = None,
         attempts: int | None = None, only_if: str | None = None, member: Member | None = None) -> bool:
    """Mark a challenge ``failed`` (its ciphertext wiped) with a ``delivery_failed`` event; False if
    ``only_if`` (a status) no longer held, in which case nothing is written."""
    error.challenge_id = challenge_id
    condition = [challenges.c.id == challenge_id]
    if only_if is not None:
        condition.append(challenges.c.status == only_if)
    code = (error.provider_code or "")[:64] or None
    # Before the transaction: it may call plugins.
    fallback = list(status.fallback_channels(rt, member, channel) if member is not None
                    else _fallback_names(rt, member_id, channel))
    with auditing.transaction(rt, member) as (conn, events):
        if conn.execute(update(challenges).where(*condition).values(
                status=ChallengeStatus.FAILED, error_code=code, message=None)).rowcount != 1:
            return False
        extra: dict[str, Any] = {} if attempts is None else {"attempts": attempts}
        auditing.record(rt, conn, events, audit.DELIVERY_FAILED, member_id, outcome=audit.FAILED, channel=channel,
                        ip=ip, user_agent=user_agent, purpose=purpose, challenge_id=challenge_id,
                        error=type(error).__name__, provider_code=error.provider_code, permanent=error.permanent,
                        provider_reply=reply_for_audit(error),
                        transport=transport, fallback=fallback, **extra)
    return True


def reply_for_audit(error: DeliveryError) -> str | None:
    """The error's ``provider_reply`` as the audit keeps it: one printable line of at most 200 characters.

    The transport cleaned it of secrets; the core still bounds it, as a third party's transport may not.
    """
    reply = error.provider_reply
    if not reply:
        return None
    line = " ".join("".join(ch if ch.isprintable() else " " for ch in str(reply)).split())
    return line[:200] or None


def _fallback_names(rt: Runtime, member_id: str, failed_channel: str) -> tuple[str, ...]:
    """For the audit record: the channels a member could fall back to, when the member can be looked up."""
    try:
        member = rt.otp.member(member_id)
    except Exception:  # noqa: BLE001 - no member_lookup plugin: the web layer asks with the Member it has
        return ()
    return status.fallback_channels(rt, member, failed_channel)


def failed_before(conn: Connection, member_id: str, channel: str) -> Any:
    """Inside a new challenge's transaction, before its insert: the member's latest challenge when its
    delivery failed on another channel (the new one is then a fallback), or None."""
    latest = conn.execute(statements.LATEST, {"b_member": member_id}).first()
    return latest if latest is not None and latest.status == ChallengeStatus.FAILED and latest.channel != channel \
        else None


def delivery_status(rt: Runtime, member: Member, challenge_id: object) -> DeliveryStatus | None:
    """:meth:`OtpPro.delivery_status`."""
    number: int | None = None
    if challenge_id is not None:
        try:
            number = int(challenge_id)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return None
    with rt.db.read_once() as conn:
        if number is None:
            row = conn.execute(statements.DELIVERY_LATEST, {"b_member": member.id}).first()
        else:
            row = conn.execute(statements.DELIVERY_BY_ID, {"b_member": member.id, "b_id": number}).first()
    if row is None:
        return None
    found, error_code = row.status, row.error_code
    if found in IN_FLIGHT and row.expires_at <= rt.clock():
        found, error_code = ChallengeStatus.FAILED, "expired"
    elif found == ChallengeStatus.PENDING:
        found = ChallengeStatus.SENDING  # an inline send in progress
    fallback = status.fallback_channels(rt, member, row.channel) if found == ChallengeStatus.FAILED else ()
    return DeliveryStatus(challenge_id=int(row.id), channel=row.channel, status=found, purpose=row.purpose,
                          created_at=row.created_at, error_code=error_code, attempts=int(row.attempts or 0),
                          sent_at=row.sent_at, fallback_channels=fallback)
