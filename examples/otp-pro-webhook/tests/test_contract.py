"""The ``webhook`` transport keeps the transport contract, against a real endpoint on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from webhook_support import Receiver, webhook_settings

from otp_pro import Member
from otp_pro.testing import PERMANENT, SUCCESS, TRANSIENT, DiscoveryContract, Received, TransportContract


class TestDiscovery(DiscoveryContract):
    entry_point = "otp_pro_webhook"
    distribution = "otp-pro-webhook"
    module = "otp_pro_webhook.plugin"


class TestWebhookContract(TransportContract):
    transport = "webhook"
    distribution = "otp-pro-webhook"
    secret_settings = ("signing_secret",)
    recipient_member = Member("m-1", name="Ann", fields={"webhook": " U024BE7LH "})
    recipient = "U024BE7LH"
    recipient_inputs = (("  U024BE7LH\t", "U024BE7LH"), ("ann@example.com", "ann@example.com"))
    invalid_recipients = ("", "   ", "x" * 201, "two\nlines")

    @pytest.fixture
    def provider(self) -> Iterator[Receiver]:
        with Receiver() as receiver:
            yield receiver

    @pytest.fixture
    def transport_settings(self, provider: Receiver) -> dict[str, Any]:
        return webhook_settings(provider)

    def arrange(self, provider: Receiver, outcome: str) -> None:
        provider.status = {SUCCESS: 200, PERMANENT: 410, TRANSIENT: 503}[outcome]

    def received(self, provider: Receiver) -> list[Received]:
        return [Received(d["recipient"], d["text"]) for d in provider.deliveries]
