"""The machinery under the transport contract: what a subclass provides, the instance, the shared steps.

:class:`~otp_pro.testing.TransportContract` subclasses :class:`TransportHarness`
and adds the checks; a transport's test module subclasses the contract, never
the harness.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from .. import (
    DeliveryError,
    InvalidCode,
    Member,
    OtpPro,
    PermanentDeliveryError,
    TransientDeliveryError,
    Transport,
)
from ._clock import Clock
from ._instances import TEST_SECRET_KEY
from ._spies import PERMANENT, SUCCESS, PayloadSpy, Received


class TransportHarness:
    """What :class:`~otp_pro.testing.TransportContract` needs from a subclass, and what its checks share."""

    #: The transport's name (``providers.<transport>``, channel prefix).
    transport: ClassVar[str]
    #: The distribution that ships it (``otp-pro-core`` for a built-in).
    distribution: ClassVar[str]
    #: The payload the contract sends over the transport.
    payload: ClassVar[str] = "code"
    #: A member the transport can reach, and the recipient it resolves to.
    recipient_member: ClassVar[Member]
    recipient: ClassVar[str]
    #: A member the transport cannot reach (no address on file).
    unreachable_member: ClassVar[Member] = Member("contract-unreachable", name="Nobody")
    #: Settings that must be declared ``secret=True``; ``transport_settings`` must give each a value.
    secret_settings: ClassVar[tuple[str, ...]] = ()
    #: ``(typed, normalised)`` pairs: recipients an administrator may type, and their normalised form.
    recipient_inputs: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: Recipients ``normalize_recipient`` must refuse with ``RecipientUnavailable``.
    invalid_recipients: ClassVar[tuple[str, ...]] = ()
    #: Where provider tests send (default: ``recipient``).
    provider_test_recipient: ClassVar[str | None] = None
    #: Loggers of the fake provider (not the transport), left out of the leak check.
    ignored_loggers: ClassVar[tuple[str, ...]] = ()

    # ----------------------------------------------------------- what a subclass provides

    @pytest.fixture
    def provider(self) -> Any:
        """The real fake of the provider (a loopback server), started and stopped by this fixture."""
        pytest.fail(f"{type(self).__name__} must define a `provider` fixture: the fake provider on loopback")

    @pytest.fixture
    def transport_settings(self, provider: Any) -> dict[str, Any]:
        """The ``providers.<transport>`` section pointing the transport at ``provider``."""
        pytest.fail(f"{type(self).__name__} must define a `transport_settings` fixture")

    @pytest.fixture
    def site_settings(self) -> dict[str, Any]:
        """Extra site settings (and other ``providers`` sections) for the contract's instance."""
        return {}

    def arrange(self, provider: Any, outcome: str) -> None:
        """Make ``provider`` answer the next send with ``outcome``: SUCCESS, PERMANENT or TRANSIENT."""
        raise NotImplementedError(f"{type(self).__name__} must implement arrange(provider, outcome)")

    def received(self, provider: Any) -> list[Received]:
        """Every message the provider received so far, oldest first."""
        raise NotImplementedError(f"{type(self).__name__} must implement received(provider)")

    def extract_secret(self, text: str, otp: OtpPro) -> str:
        """The secret the member would present, found in a received text (default: the one code in it)."""
        found = set(re.findall(rf"(?<!\d)\d{{{otp.settings.code_length}}}(?!\d)", text))
        assert len(found) == 1, f"expected one {otp.settings.code_length}-digit code in the message, found {found}"
        return found.pop()

    def redeem(self, otp: OtpPro, member: Member, secret: str, *, setup: bool) -> bool:
        """Present ``secret`` as the member would; True when accepted (default: type the code)."""
        if setup:
            try:
                return bool(otp.complete_setup(member, secret))
            except InvalidCode:
                return False
        return otp.verify(member, secret).ok

    # ------------------------------------------------------------------ the instance

    @property
    def channel(self) -> str:
        """The channel the contract enrols and sends on: ``<transport>:<payload>``."""
        return f"{self.transport}:{self.payload}"

    @pytest.fixture
    def payload_spy(self) -> PayloadSpy:
        """The listener that records every payload, for the leak check."""
        return PayloadSpy()

    @pytest.fixture
    def otp_settings(
        self, tmp_path: Path, transport_settings: dict[str, Any], site_settings: dict[str, Any]
    ) -> dict[str, Any]:
        """The contract instance's settings: site settings, then ``providers.<transport>``."""
        providers = dict(site_settings.get("providers", {}))
        providers[self.transport] = transport_settings
        return {
            "secret_key": TEST_SECRET_KEY,
            "database_url": f"sqlite:///{tmp_path}/contract.sqlite3",
            "site_name": "Contract Site",
            "support_email": "help@example.com",
            "mode": "visible",
            "channels": [self.channel, "totp"],
            "default_channel": self.channel,
            "resend_cooldown_seconds": 0,
            # Enrolment hashes every backup code with scrypt; the contract needs only one.
            "backup_code_count": 1,
            **{k: v for k, v in site_settings.items() if k != "providers"},
            "providers": providers,
        }

    @pytest.fixture
    def otp(
        self, otp_settings: dict[str, Any], otp_plugins: list[object], clock: Clock, payload_spy: PayloadSpy,
        caplog: pytest.LogCaptureFixture,
    ) -> Iterator[OtpPro]:
        """The contract's own instance, with the payload spy added and logging captured at DEBUG."""
        caplog.set_level(logging.DEBUG)
        instance = OtpPro(otp_settings, plugins=[*otp_plugins, payload_spy], clock=clock)
        try:
            yield instance
        finally:
            instance.close()

    # ------------------------------------------------------------------ helpers

    def _transport(self, otp: OtpPro) -> Transport:
        assert self.transport in otp.transports, f"no transport {self.transport!r} (have: {', '.join(otp.transports)})"
        return otp.transports[self.transport]

    def _setting_secrets(self, otp: OtpPro, transport_settings: Mapping[str, Any]) -> list[str]:
        """Revealed values of the transport's secret settings given in ``transport_settings``."""
        specs = {s.name: s for s in type(self._transport(otp)).settings}
        out = [str(transport_settings[name]) for name, spec in specs.items()
               if spec.secret and isinstance(transport_settings.get(name), str) and transport_settings[name]]
        return [*out, TEST_SECRET_KEY]

    def _read_new(self, otp: OtpPro, provider: Any, before: int) -> tuple[Received, str]:
        """The newest message received after ``before`` messages, and the secret in it."""
        got = self.received(provider)[before:]
        assert got, f"nothing reached the provider through {self.transport}"
        last = got[-1]
        assert last.recipient == self.recipient, f"sent to {last.recipient!r}, expected {self.recipient!r}"
        return last, self.extract_secret(last.text, otp)

    def enrol(self, otp: OtpPro, provider: Any) -> None:
        """Set up the contract's channel for ``recipient_member`` with the secret the provider received."""
        member = self.recipient_member
        before = len(self.received(provider))
        otp.begin_setup(member, self.channel)
        _, secret = self._read_new(otp, provider, before)
        assert self.redeem(otp, member, secret, setup=True), "the setup secret that was delivered was refused"
        assert otp.status(member).channel == self.channel

    def send_and_redeem(self, otp: OtpPro, provider: Any) -> str:
        """Send a challenge to the enrolled ``recipient_member``, redeem what arrived; returns that secret."""
        member = self.recipient_member
        before = len(self.received(provider))
        challenge = otp.send_challenge(member)
        assert challenge.channel == self.channel
        _, secret = self._read_new(otp, provider, before)
        assert self.redeem(otp, member, secret, setup=False), "the delivered secret was refused"
        return secret

    def _failed_send(self, otp: OtpPro, provider: Any, outcome: str) -> DeliveryError:
        """Send with ``provider`` arranged to fail that way; check the error and its audit, then arrange success."""
        expected: type[DeliveryError] = PermanentDeliveryError if outcome == PERMANENT else TransientDeliveryError
        before = len(self.received(provider))
        self.arrange(provider, outcome)
        with pytest.raises(expected) as info:
            otp.send_challenge(self.recipient_member)
        error = info.value
        assert error.permanent is (outcome == PERMANENT)
        assert error.transport == self.transport, f"the error names transport {error.transport!r}"
        event = otp.events(self.recipient_member, kinds=["delivery_failed"], limit=1)[0]
        assert event.outcome == "failed" and event.channel == self.channel
        assert event.details["transport"] == self.transport
        assert event.details["error"] == expected.__name__
        assert event.details["permanent"] is (outcome == PERMANENT)
        # Whatever the provider saw of the failed send, its secret must not sign anybody in.
        for message in self.received(provider)[before:]:
            try:
                secret = self.extract_secret(message.text, otp)
            except AssertionError:
                continue  # nothing usable reached the provider
            assert not self.redeem(otp, self.recipient_member, secret, setup=False), (
                "a secret from a failed send was accepted")
        self.arrange(provider, SUCCESS)
        return error
