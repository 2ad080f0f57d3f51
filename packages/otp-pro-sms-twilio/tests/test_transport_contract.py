"""``sms_twilio`` keeps the transport contract (``otp_pro.testing.TransportContract``).

The provider is the fake Messaging API of ``conftest.py``: a real HTTP server on
127.0.0.1 that the official ``twilio`` client talks to, checking the account SID
and auth token on every request. Permanent failures are Twilio's error 21211
(invalid 'To' number); transient ones are HTTP 503, answered to every attempt
including the transport's retries.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from twilio_support import FakeTwilio, Reply, sms_settings, twilio_error

from otp_pro import Member
from otp_pro.testing import PERMANENT, SUCCESS, TRANSIENT, Received, TransportContract


class TestTwilioTransportContract(TransportContract):
    transport = "sms_twilio"
    distribution = "otp-pro-sms-twilio"
    secret_settings = ("auth_token",)
    recipient_member = Member("contract-ann", name="Ann", fields={"phone": "+44 7400 123456"})
    recipient = "+447400123456"
    unreachable_member = Member("contract-nobody", email="nobody@example.com")  # an email is not a phone
    recipient_inputs = (("+44 7400 123456", "+447400123456"), ("+33 6 12 34 56 78", "+33612345678"))
    invalid_recipients = ("12", "not a number", "+44 20")

    @pytest.fixture
    def provider(self) -> Iterator[FakeTwilio]:
        server = FakeTwilio().start()
        try:
            yield server
        finally:
            server.stop()

    @pytest.fixture
    def transport_settings(self, provider: FakeTwilio) -> dict[str, Any]:
        return sms_settings(provider)

    def arrange(self, provider: FakeTwilio, outcome: str) -> None:
        attempts = 1 + sms_settings()["max_retries"]
        with provider._lock:
            provider.replies.clear()
        if outcome == PERMANENT:
            provider.reply(twilio_error(21211))
        elif outcome == TRANSIENT:
            provider.reply(*[Reply(503, {"code": 20500, "message": "Internal Server Error", "status": 503})] * attempts)
        else:
            assert outcome == SUCCESS

    def received(self, provider: FakeTwilio) -> list[Received]:
        with provider._lock:
            return [Received(r.form.get("To", ""), r.form.get("Body", "")) for r in provider.requests]
