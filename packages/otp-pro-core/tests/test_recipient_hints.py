"""A transport says how its recipients are hinted at: ``Transport.mask_recipient`` (issue 28).

A third party's chat transport whose recipients are numeric chat ids: the default hint knows
email addresses and phone numbers only and would show ``***`` for a short id or most of a long
one; the transport's own ``mask_recipient`` is used for the challenge's hint, the audit records
of the send and of the notice, and the provider test.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from otp_pro import Member, Message, OtpPro, Receipt, RecipientUnavailable, Transport, hookimpl
from otp_pro.transports import mask_recipient


class ChatTransport(Transport):
    """A small chat transport: messages go to a chat id kept in ``fields["chat_id"]``."""

    name = "acme_chat"
    label = "Acme Chat"
    message_format = "text"

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.sent: list[Message] = []

    def recipient(self, member: Member) -> str:
        chat_id = member.fields.get("chat_id")
        if not chat_id:
            raise RecipientUnavailable("no chat id on file")
        return str(chat_id)

    def mask_recipient(self, recipient: str) -> str:
        # The last two digits are what a member sees in the chat app's settings; the rest stays out.
        return f"chat ...{recipient[-2:]}"

    def send(self, message: Message) -> Receipt:
        self.sent.append(message)
        return Receipt(provider_message_id=f"chat-{len(self.sent)}")


class BrokenHintTransport(ChatTransport):
    name = "acme_chat_broken"

    def mask_recipient(self, recipient: str) -> str:
        raise KeyError(recipient)


class ChatPlugin:
    __name__ = "acme_chat_plugin"

    @hookimpl
    def otp_pro_register_transports(self, register: Callable[[type[Transport]], None]) -> None:
        register(ChatTransport)
        register(BrokenHintTransport)


DORA = Member("21", email="dora@example.com", name="Dora", fields={"chat_id": "4815"})


def _code(otp: OtpPro, transport: str) -> str:
    message = otp.transports[transport].sent[-1]  # type: ignore[attr-defined]
    return "".join(ch for ch in message.text if ch.isdigit())[:6]


def test_a_transport_masks_its_own_recipients(make_otp: Callable[..., OtpPro]) -> None:
    assert mask_recipient("4815") == "***"  # what the hint was before a transport could say
    otp = make_otp(plugins=[ChatPlugin()], channels=["acme_chat:code", "email:code"],
                   default_channel="acme_chat:code")
    setup = otp.begin_setup(DORA, "acme_chat:code")
    assert setup.challenge is not None and setup.challenge.recipient_hint == "chat ...15"
    otp.complete_setup(DORA, _code(otp, "acme_chat"))
    challenge = otp.send_challenge(DORA)
    assert challenge.recipient_hint == "chat ...15"
    sent = otp.events(DORA, kinds=["challenge_sent"])
    assert sent and {e.details["recipient"] for e in sent} == {"chat ...15"}
    # Provider test: the audit record's hint is the transport's too.
    otp.provider_test("acme_chat", "4815", dry_run=True, actor="ops")
    [tested] = otp.events(kinds=["provider_test"])
    assert tested.details["recipient"] == "chat ...15"


def test_a_failing_mask_falls_back_to_the_default_hint(make_otp: Callable[..., OtpPro],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    otp = make_otp(plugins=[ChatPlugin()], channels=["acme_chat_broken:code"],
                   default_channel="acme_chat_broken:code")
    caplog.set_level(logging.WARNING, logger="otp_pro")
    setup = otp.begin_setup(DORA, "acme_chat_broken:code")
    # The code went out: a broken hint must not turn it into an error.
    assert setup.challenge is not None and setup.challenge.recipient_hint == "***"
    assert any("mask_recipient failed (KeyError)" in r.getMessage() for r in caplog.records)
    assert "4815" not in caplog.text
