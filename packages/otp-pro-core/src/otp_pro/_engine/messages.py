"""Messages: a new challenge's code or link made and rendered through the templating hooks; provider tests.

Rendering is a plugin's job (``otp_pro_message_variables`` then the first
``otp_pro_render_message`` answer); the core's plain-text renderer answers last.
A challenge's message is made before its row is inserted, so a broken template
plugin leaves nothing pending, and sealed (encrypted) when a queue worker will
send it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from .. import audit, i18n
from ..errors import ChannelUnavailable, ConfigurationError, DeliveryError, PluginError, RecipientUnavailable
from ..hookcall import OnError
from ..member import Member
from ..transports import Message, Payload, PayloadContext, PayloadValue, ProviderTestResult, Transport, recipient_hint
from . import auditing
from .runtime import Runtime


class Outgoing(NamedTuple):
    """A challenge's message, made before its row is inserted (:func:`outgoing`)."""

    channel: str
    transport: Transport
    payload: Payload
    recipient: str
    recipient_hash: str
    now: datetime
    expires: datetime
    value: PayloadValue
    message: Message
    sealed: str | None
    #: The factor a sign-in challenge goes to (None: a setup's confirmation, or not known yet).
    factor_id: int | None = None


def outgoing(rt: Runtime, member: Member, channel: str, purpose: str, binding: str | None, *,
             recipient: str | None = None, factor_id: int | None = None) -> Outgoing:
    """The message of a new challenge on ``channel``: its code or link made, rendered, sealed for a queue.

    It goes to ``recipient`` (a factor's confirmed address) when given, else to the
    address the member record shows now.
    """
    definition = rt.channels[channel]
    transport, payload = definition.transport, definition.payload
    assert transport is not None and payload is not None
    if recipient is None:
        try:
            recipient = transport.recipient(member)
        except RecipientUnavailable as exc:
            raise ChannelUnavailable(f"channel {channel!r} is not available: {exc.reason}", channel=channel,
                                     reason=exc.reason) from None
    now = rt.clock()
    expires = now + timedelta(seconds=payload.ttl_seconds or rt.settings.code_ttl_seconds)
    value = payload.create(PayloadContext(member, channel, transport.name, purpose, now, expires, binding))
    # Rendered before the challenge row exists: a broken template plugin leaves nothing pending.
    message = render(
        rt, transport, member, channel, "challenge",
        {"payload": value.display, "payload_kind": payload.name, "payload_is_link": not payload.entered_as_code,
         "purpose": purpose, "recipient": recipient,
         "issued_at": now, "expires_at": expires, **value.variables},
    )
    message.sensitive = (value.secret, value.display)
    # Encrypted before the insert (Fernet is not free); only a queue worker ever reads it.
    sealed = rt.keys.encrypt(json.dumps(_message_data(message))) if rt.dispatcher.queued else None
    return Outgoing(channel, transport, payload, recipient, recipient_hash(rt, recipient),
                    now, expires, value, message, sealed, factor_id)


def recipient_hash(rt: Runtime, recipient: str) -> str:
    """The keyed hash a recipient is counted (per-recipient cap) and a factor's address compared by."""
    return rt.keys.hash("recipient", recipient.strip().lower())


def variables(rt: Runtime, member: Member, channel: str, kind: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    """:meth:`OtpPro.message_variables`: the core's variables, then every plugin's additions."""
    s = rt.settings
    issued = extra.get("issued_at") or rt.clock()
    expires = extra.get("expires_at")
    found: dict[str, Any] = {
        "site_name": s.site_name,
        "member_name": member.display_name,
        "support_email": s.support_email or i18n.gettext("the %(site)s team", site=s.site_name),
        "channel": channel,
        "issued_at": issued,
        "expires_at": expires,
        "expiry_minutes": max(1, round((expires - issued).total_seconds() / 60)) if expires else None,
        "payload": None,
        "payload_kind": None,
        "payload_is_link": False,
        "purpose": None,
        # The language the message is written in (BCP 47, as an HTML template's <html lang> wants it).
        "locale": i18n.current().tag,
    }
    found.update(extra)
    answers = rt.host.call("otp_pro_message_variables", OnError.SKIP, otp=rt.otp, member=member, channel=channel,
                           kind=kind, variables=dict(found))
    # The implementation pluggy calls first (the last registered) wins: merged last.
    for answer in reversed(answers):
        if isinstance(answer.value, Mapping):
            found.update(answer.value)
    return found


def render(rt: Runtime, transport: Transport, member: Member, channel: str, kind: str,
           extra: Mapping[str, Any]) -> Message:
    """:meth:`OtpPro.render_message`: the variables, then the first renderer that answers, in the member's
    language (:func:`~otp_pro.i18n.for_member`; the ``locale`` variable names it)."""
    s = rt.settings
    with i18n.using(i18n.for_member(member.locale, s.default_locale, s.locale_dirs)):
        return _render(rt, transport, member, channel, kind, extra)


def _render(rt: Runtime, transport: Transport, member: Member, channel: str, kind: str,
            extra: Mapping[str, Any]) -> Message:
    found = variables(rt, member, channel, kind, extra)
    answers = rt.host.call("otp_pro_render_message", OnError.RAISE, what=f"to render a {kind} message for {channel}",
                           otp=rt.otp, transport=transport, member=member, channel=channel, kind=kind,
                           variables=found)
    message = answers[0].value if answers else None
    if not isinstance(message, Message):
        raise PluginError(f"no plugin rendered a {kind} message for {channel}")
    if not message.recipient:
        message.recipient = str(found.get("recipient", ""))
    message.member_id = member.id
    message.channel = channel
    return message


def provider_test(rt: Runtime, transport_name: str, to: str, *, dry_run: bool, actor: str | None) -> ProviderTestResult:
    """:meth:`OtpPro.provider_test`."""
    transport = rt.transports.get(transport_name)
    if transport is None:
        installed = ", ".join(rt.transports)
        raise ConfigurationError(
            f"no transport called {transport_name!r} (installed: {installed})", key="transport"
        )
    recipient = transport.normalize_recipient(to)
    probe = Member(id="provider-test", email=recipient if "@" in recipient else None, name="Provider test")
    now = rt.clock()
    message = render(
        rt, transport, probe, f"{transport_name}:code", "test",
        {"payload": f"{secrets.randbelow(10**6):06d}", "payload_kind": "code", "recipient": recipient,
         "issued_at": now, "expires_at": now + timedelta(seconds=rt.settings.code_ttl_seconds)},
    )
    params = transport.dry_run_parameters(message)
    result_id: str | None = None
    error: str | None = None
    if not dry_run:
        try:
            result_id = transport.send(message).provider_message_id
        except DeliveryError as exc:
            error = f"{type(exc).__name__}: {exc}"
    with auditing.transaction(rt) as (conn, events):
        auditing.record(rt, conn, events, audit.PROVIDER_TEST, None, outcome=audit.FAILED if error else audit.OK,
                        channel=f"{transport_name}:code", actor=actor, transport=transport_name, dry_run=dry_run,
                        recipient=recipient_hint(transport, recipient), provider_message_id=result_id, error=error)
    return ProviderTestResult(transport=transport_name, recipient=recipient, dry_run=dry_run, ok=error is None,
                              subject=message.subject, text=message.text, parameters=params,
                              provider_message_id=result_id, error=error)


_MESSAGE_FIELDS = ("recipient", "subject", "text", "html", "headers", "member_id", "channel", "kind", "sensitive")


def _message_data(message: Message) -> dict[str, Any]:
    """A rendered message as JSON-able data, to be encrypted on a queued challenge row."""
    return {name: list(message.sensitive) if name == "sensitive" else getattr(message, name)
            for name in _MESSAGE_FIELDS}


def unseal(rt: Runtime, sealed: str) -> Message:
    """The message back from a queued challenge's ciphertext (:func:`outgoing`'s ``sealed``)."""
    data = json.loads(rt.keys.decrypt(sealed))
    return Message(**{**{name: data[name] for name in _MESSAGE_FIELDS}, "sensitive": tuple(data["sensitive"])})
