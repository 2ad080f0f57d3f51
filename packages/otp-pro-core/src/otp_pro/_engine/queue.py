"""The queue worker's side of a delivery: claim a queued challenge, send its sealed message, record the outcome."""

from __future__ import annotations

from .. import audit
from ..dispatch import QueuedDelivery
from ..errors import ConfigurationError, DeliveryError, PermanentDeliveryError
from ..results import ChallengeStatus
from ..storage import statements
from ..transports import recipient_hint
from . import auditing, delivery_outcome, messages
from .runtime import Runtime


def deliver_queued(rt: Runtime, challenge_id: int) -> QueuedDelivery:
    """:meth:`OtpPro.deliver_queued`."""
    now = rt.clock()
    number = int(challenge_id)
    with rt.db.write_once() as conn:
        row = conn.execute(statements.CLAIM, {"b_id": number}).first()
    if row is None:
        return QueuedDelivery("skipped", number)
    member_id, channel, purpose, attempts = row.member_id, row.channel, row.purpose, int(row.attempts)
    definition = rt.channels.get(channel)
    transport = definition.transport if definition is not None else None
    transport_name = transport.name if transport is not None else channel.partition(":")[0]

    def fail(error: DeliveryError) -> QueuedDelivery:
        delivery_outcome.fail(rt, number, member_id, channel, purpose, transport_name, error, attempts=attempts,
                              only_if=ChallengeStatus.SENDING)
        return QueuedDelivery("failed", number, attempts, error_code=error.provider_code)

    if row.expires_at <= now:
        return fail(PermanentDeliveryError("the code expired before a worker could send it",
                                           transport=transport_name, provider_code="expired"))
    if transport is None:
        return fail(PermanentDeliveryError(f"the worker has no channel {channel!r}", transport=transport_name,
                                           provider_code="channel"))
    try:
        message = messages.unseal(rt, row.message or "")
    except (ConfigurationError, ValueError, TypeError, KeyError):
        return fail(PermanentDeliveryError("the queued message cannot be decrypted with the configured keys",
                                           transport=transport_name, provider_code="undecryptable"))
    try:
        receipt = transport.send(message)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded; non-delivery errors are wrapped
        error = delivery_outcome.as_delivery_error(exc, transport_name)
        if error.permanent or attempts >= rt.settings.delivery_max_attempts:
            return fail(error)
        wait = rt.settings.delivery_retry_backoff_seconds * 2 ** (attempts - 1)
        with auditing.transaction(rt) as (conn, events):
            conn.execute(statements.REQUEUE, {"b_id": number})
            auditing.record(rt, conn, events, audit.DELIVERY_RETRIED, member_id, outcome=audit.FAILED,
                            channel=channel, purpose=purpose, challenge_id=number, attempts=attempts,
                            error=type(error).__name__, provider_code=error.provider_code, retry_after=wait,
                            provider_reply=delivery_outcome.reply_for_audit(error), transport=transport_name)
        return QueuedDelivery("retry", number, attempts, retry_after=wait, error_code=error.provider_code)
    sent_at = rt.clock()

    def mark_sent() -> None:
        with auditing.transaction(rt) as (conn, events):
            conn.execute(statements.MARK_QUEUED_SENT, {
                "b_member": member_id, "b_id": number, "b_sent_at": sent_at, "b_now": sent_at,
                "b_message_id": (receipt.provider_message_id or "")[:128] or None})
            auditing.record(rt, conn, events, audit.CHALLENGE_SENT, member_id, outcome=audit.OK, channel=channel,
                            purpose=purpose, challenge_id=number, transport=transport_name,
                            recipient=recipient_hint(transport, message.recipient),
                            provider_message_id=receipt.provider_message_id, attempts=attempts,
                            dispatcher=rt.dispatcher.name)

    # As inline: the message is out, its record gets a second try on a fresh connection.
    delivery_outcome.once_more(mark_sent,
                               done=lambda: delivery_outcome.challenge_status(rt, number) == ChallengeStatus.SENT)
    return QueuedDelivery("sent", number, attempts)
