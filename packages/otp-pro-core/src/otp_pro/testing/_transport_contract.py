"""The transport contract: what every transport owes the core, checked against a real fake of its provider."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
from pathlib import Path
from typing import Any

import pytest

from .. import REDACTED, ChannelUnavailable, ConfigurationError, OtpPro, RecipientUnavailable, Transport
from ..plugins import ENTRY_POINT_GROUP
from ._clock import Clock
from ._spies import PERMANENT, SUCCESS, TRANSIENT, PayloadSpy, assert_no_leak, captured_log
from ._toml import settings_toml
from ._transport_harness import TransportHarness


class TransportContract(TransportHarness):
    """What every transport owes the core, checked against a real fake of its provider.

    Subclass it in a test module, set the class attributes, provide two fixtures
    and two methods, and every ``test_*`` below runs against your transport::

        class TestWebhookContract(TransportContract):
            transport = "webhook"
            distribution = "otp-pro-webhook"
            secret_settings = ("signing_secret",)
            recipient_member = Member("m-1", fields={"webhook": "U024BE7LH"})
            recipient = "U024BE7LH"

            @pytest.fixture
            def provider(self):                      # the real fake service, on loopback
                with Receiver(SECRET) as receiver:
                    yield receiver

            @pytest.fixture
            def transport_settings(self, provider):  # providers.<transport>
                return {"url": provider.url, "signing_secret": SECRET}

            def arrange(self, provider, outcome):    # SUCCESS, PERMANENT or TRANSIENT
                provider.status = {SUCCESS: 200, PERMANENT: 410, TRANSIENT: 503}[outcome]

            def received(self, provider):            # what reached the provider, oldest first
                return [Received(d["recipient"], d["text"]) for d in provider.deliveries]

    ``arrange`` must make the provider answer the next send that way, on every
    attempt when the transport retries, until arranged otherwise. ``received``
    lists what the provider got, including requests it answered with an error.

    The contract builds its own :class:`~otp_pro.OtpPro` (the ``otp`` fixture,
    redefined here) on a fresh SQLite file with ``channels = [<transport>:<payload>,
    "totp"]``; ``site_settings`` (a fixture, empty by default) adds site settings
    and other ``providers`` sections, ``otp_plugins`` extra plugin objects.
    Logging is captured at DEBUG from before the instance starts; records of
    ``ignored_loggers`` (the fake provider's own, such as aiosmtpd's ``mail.log``)
    are left out of the leak check.

    For a payload other than ``code``, set ``payload`` and override
    :meth:`extract_secret` and :meth:`redeem`.
    """

    def test_registered_and_discovered(self, otp: OtpPro, otp_settings: dict[str, Any], clock: Clock) -> None:
        transport = self._transport(otp)
        assert isinstance(transport, Transport) and type(transport).name == self.transport
        assert transport.label, "a transport needs a label to show members and administrators"
        assert transport.message_format in ("email", "text")
        assert self.channel in otp.channels
        owners = [p for p in otp.plugins() if self.transport in p.transports]
        assert len(owners) == 1, f"expected one plugin registering {self.transport!r}, found {owners}"
        plugin = owners[0]
        assert plugin.distribution == self.distribution and plugin.error is None and plugin.enabled
        if not plugin.builtin:
            eps = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == plugin.name]
            assert len(eps) == 1 and eps[0].dist is not None and eps[0].dist.name == self.distribution
        # Switched off, the transport and its channels are gone.
        settings = {k: v for k, v in otp_settings.items() if k not in ("channels", "default_channel")}
        settings["providers"] = {k: v for k, v in otp_settings["providers"].items() if k != self.transport}
        settings.update(default_channel="totp", disable_plugins=[plugin.name])
        with OtpPro(settings, clock=clock) as off:
            assert self.transport not in off.transports
            assert not any(name.startswith(f"{self.transport}:") for name in off.channels)

    def test_declared_settings_and_secrets_redacted(
        self, otp: OtpPro, otp_settings: dict[str, Any], transport_settings: dict[str, Any],
        tmp_path: Path, capsys: pytest.CaptureFixture[str], clock: Clock,
    ) -> None:
        transport = self._transport(otp)
        specs = {s.name: s for s in type(transport).settings}
        for spec in specs.values():
            assert spec.help, f"setting {spec.name!r} needs a help text"
        unknown = set(transport_settings) - set(specs)
        assert not unknown, f"transport_settings uses undeclared settings {unknown}"
        for name in self.secret_settings:
            assert name in specs and specs[name].secret, f"setting {name!r} must be declared secret=True"
            assert transport_settings.get(name), f"transport_settings must give {name!r} a value to check redaction"
        redacted = otp.redacted_settings()
        for name in self.secret_settings:
            assert redacted["providers"][self.transport][name] == REDACTED
        # Imported here: the CLI is needed by this one check, not by every run that loads the kit.
        from .. import cli

        path = tmp_path / "contract-settings.toml"
        path.write_text(settings_toml(otp_settings), encoding="utf-8")
        capsys.readouterr()
        cli.main(["--config", str(path), "config", "show"])
        shown = capsys.readouterr().out
        assert json.loads(shown)["providers"][self.transport].keys() == specs.keys()
        assert_no_leak(self._setting_secrets(otp, transport_settings), {
            "redacted_settings()": json.dumps(redacted, default=str),
            "`otp-pro config show`": shown,
            "repr(otp)": repr(otp),
            "repr(transport)": repr(transport),
            "repr(transport.config)": repr(transport.config),
        })
        # Settings are declared, so a typo is refused at start-up, by name.
        bad = {**otp_settings, "providers": {**otp_settings["providers"],
                                             self.transport: {**transport_settings, "contract_no_such_key": 1}}}
        with pytest.raises(ConfigurationError) as info:
            OtpPro(bad, clock=clock)
        assert f"providers.{self.transport}.contract_no_such_key" in str(info.value)

    def test_recipient_resolution_and_normalisation(self, otp: OtpPro) -> None:
        transport = self._transport(otp)
        assert transport.recipient(self.recipient_member) == self.recipient
        assert transport.normalize_recipient(self.recipient) == self.recipient
        for typed, normalised in self.recipient_inputs:
            assert transport.normalize_recipient(typed) == normalised
        for bad in self.invalid_recipients:
            with pytest.raises(RecipientUnavailable) as info:
                transport.normalize_recipient(bad)
            assert info.value.reason
        with pytest.raises(RecipientUnavailable) as missing:
            transport.recipient(self.unreachable_member)
        assert missing.value.reason

    def test_availability(self, otp: OtpPro, provider: Any) -> None:
        before = len(self.received(provider))
        channels = {c.name: c for c in otp.available_channels(self.recipient_member)}
        assert channels[self.channel].available, channels[self.channel].reason
        unreachable = {c.name: c for c in otp.available_channels(self.unreachable_member)}[self.channel]
        assert not unreachable.available and unreachable.reason
        status = otp.status(self.unreachable_member)
        assert self.channel not in status.channels and status.unavailable[self.channel] == unreachable.reason
        with pytest.raises(ChannelUnavailable):
            otp.begin_setup(self.unreachable_member, self.channel)
        assert len(self.received(provider)) == before, "something was sent to a member who cannot be reached"

    def test_successful_send_delivers_the_secret(self, otp: OtpPro, provider: Any) -> None:
        self.arrange(provider, SUCCESS)
        self.enrol(otp, provider)
        self.send_and_redeem(otp, provider)
        sent = otp.events(self.recipient_member, kinds=["challenge_sent"], limit=1)[0]
        assert sent.outcome == "ok" and sent.channel == self.channel
        assert sent.details["transport"] == self.transport and sent.details["purpose"] == "verify"

    def test_permanent_failure(self, otp: OtpPro, provider: Any) -> None:
        self.enrol(otp, provider)
        self._failed_send(otp, provider, PERMANENT)
        self.send_and_redeem(otp, provider)  # and the transport recovers

    def test_transient_failure(self, otp: OtpPro, provider: Any) -> None:
        self.enrol(otp, provider)
        self._failed_send(otp, provider, TRANSIENT)
        self.send_and_redeem(otp, provider)

    def test_provider_test_dry_run_sends_nothing(
        self, otp: OtpPro, provider: Any, transport_settings: dict[str, Any]
    ) -> None:
        to = self.provider_test_recipient or self.recipient
        before = len(self.received(provider))
        result = otp.provider_test(self.transport, to, dry_run=True, actor="contract")
        assert result.dry_run and result.ok and result.error is None
        assert result.recipient == self._transport(otp).normalize_recipient(to)
        assert result.text
        assert len(self.received(provider)) == before, "a dry run reached the provider"
        shown = json.dumps(dict(result.parameters), default=str)
        assert_no_leak(self._setting_secrets(otp, transport_settings), {"dry_run_parameters": shown})
        event = otp.events(kinds=["provider_test"], limit=1)[0]
        assert event.details["dry_run"] is True and event.details["transport"] == self.transport
        sent = otp.provider_test(self.transport, to, dry_run=False, actor="contract")
        assert sent.ok and not sent.dry_run, sent.error
        assert len(self.received(provider)) > before, "a provider test with dry_run=False sent nothing"
        assert self.received(provider)[-1].recipient == result.recipient

    def test_no_secret_in_audit_or_logs(
        self, otp: OtpPro, provider: Any, transport_settings: dict[str, Any], payload_spy: PayloadSpy,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        errors = []
        self.enrol(otp, provider)
        self.send_and_redeem(otp, provider)
        errors.append(self._failed_send(otp, provider, PERMANENT))
        errors.append(self._failed_send(otp, provider, TRANSIENT))
        self.send_and_redeem(otp, provider)
        to = self.provider_test_recipient or self.recipient
        results = [otp.provider_test(self.transport, to, dry_run=dry) for dry in (True, False)]
        secrets_ = [*self._setting_secrets(otp, transport_settings), *payload_spy.payloads]
        for shown in payload_spy.payloads:
            try:
                secrets_.append(self.extract_secret(shown, otp))
            except AssertionError:
                pass  # a provider test's code is not a payload the subclass extracts
        assert len(payload_spy.payloads) >= 6, "the contract expected a payload in every message"
        events = otp.events(limit=10_000)
        assert {"challenge_sent", "delivery_failed", "provider_test"} <= {e.kind for e in events}
        assert_no_leak(secrets_, {
            "the audit records": "\n".join(json.dumps(dataclasses.asdict(e), default=str) for e in events),
            "the log": captured_log(caplog, self.ignored_loggers),
            "the delivery errors": "\n".join(f"{e!r} {e} {e.provider_code}" for e in errors),
            "provider test parameters": json.dumps([dict(r.parameters) for r in results], default=str),
            "repr(transport)": repr(self._transport(otp)),
        })
