"""Beyond the contract: the JSON posted, the signature, timeouts, refused connections, redirects, settings."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from webhook_support import SECRET, Receiver, webhook_settings

from otp_pro import ConfigurationError, Member, OtpPro, PermanentDeliveryError, TransientDeliveryError
from otp_pro.testing import Clock, free_port
from otp_pro_webhook import sign, verify


def enrolled(otp: OtpPro, receiver: Receiver, member: Member) -> None:
    otp.begin_setup(member, "webhook:code")
    otp.complete_setup(member, receiver.deliveries[-1]["code"])


@pytest.fixture
def ann(make_member: Callable[..., Member]) -> Member:
    return make_member("ann", fields={"webhook": True})


def test_the_posted_json(otp: OtpPro, receiver: Receiver, ann: Member, clock: Clock) -> None:
    enrolled(otp, receiver, ann)
    challenge = otp.send_challenge(ann)
    body, headers = receiver.deliveries[-1], receiver.headers[-1]
    assert body["event"] == "challenge" and body["member_id"] == "ann"
    assert body["recipient"] == "ann"  # fields["webhook"] = True addresses the member by id
    assert body["channel"] == "webhook:code" and body["payload_kind"] == "code" and body["link"] is None
    assert datetime.fromisoformat(body["expires_at"]) == challenge.expires_at
    assert body["expiry_minutes"] == 10 and body["site_name"] == "Example"
    assert body["code"] in body["text"]
    assert otp.verify(ann, body["code"]).ok
    assert headers["x-otp-pro-delivery"] == body["id"]
    assert headers["user-agent"].startswith("otp-pro-webhook/")
    # The endpoint's {"id": ...} answer is kept as the provider message id.
    assert challenge.provider_message_id == f"rcv-{len(receiver.deliveries)}"


def test_a_wrong_secret_is_refused_by_the_receiver(
    otp_settings: dict[str, Any], receiver: Receiver, ann: Member, clock: Clock
) -> None:
    wrong = {**otp_settings, "providers": {"webhook": webhook_settings(receiver, signing_secret="z" * 40)}}
    with OtpPro(wrong, clock=clock) as otp:
        with pytest.raises(PermanentDeliveryError) as info:
            otp.begin_setup(ann, "webhook:code")
    assert info.value.provider_code == "401"
    assert receiver.refused == 1 and receiver.deliveries == []


@pytest.mark.parametrize(("status", "error", "code"), [
    (400, PermanentDeliveryError, "400"),
    (404, PermanentDeliveryError, "404"),
    (408, TransientDeliveryError, "408"),
    (429, TransientDeliveryError, "429"),
    (500, TransientDeliveryError, "500"),
    (502, TransientDeliveryError, "502"),
])
def test_status_mapping(otp: OtpPro, receiver: Receiver, ann: Member, status: int, error: type, code: str) -> None:
    receiver.status = status
    with pytest.raises(error) as info:
        otp.begin_setup(ann, "webhook:code")
    assert info.value.provider_code == code and info.value.transport == "webhook"
    assert f"HTTP {status}" in str(info.value)


def test_redirects_are_not_followed(otp: OtpPro, receiver: Receiver, ann: Member) -> None:
    receiver.status, receiver.location = 307, receiver.url + "/elsewhere"
    with pytest.raises(PermanentDeliveryError) as info:
        otp.begin_setup(ann, "webhook:code")
    assert info.value.provider_code == "307" and "redirect" in str(info.value)
    assert len(receiver.deliveries) == 1  # the signed body went to the configured URL only


def test_timeout_is_transient(otp_settings: dict[str, Any], receiver: Receiver, ann: Member, clock: Clock) -> None:
    receiver.delay = 2.0
    settings = {**otp_settings, "providers": {"webhook": webhook_settings(receiver, timeout_seconds=0.2)}}
    with OtpPro(settings, clock=clock) as otp:
        started = time.monotonic()
        with pytest.raises(TransientDeliveryError) as info:
            otp.begin_setup(ann, "webhook:code")
        waited = time.monotonic() - started
    assert info.value.provider_code == "timeout" and "0.2 s" in str(info.value)
    assert waited < receiver.delay  # the transport gave up; the member was not kept waiting for the server


def test_refused_connection_is_transient(otp_settings: dict[str, Any], ann: Member, clock: Clock) -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/otp"  # nothing listens there
    settings = {**otp_settings, "providers": {"webhook": {"url": url, "signing_secret": SECRET}}}
    with OtpPro(settings, clock=clock) as otp:
        with pytest.raises(TransientDeliveryError) as info:
            otp.begin_setup(ann, "webhook:code")
    assert info.value.provider_code == "connection_refused"
    assert url.rsplit("/", 2)[0].split("//")[1] in str(info.value)


@pytest.mark.parametrize(("url", "problem"), [
    ("http://hooks.example.com/otp", "must use https"),
    ("https://user:pw@hooks.example.com/otp", "must not hold credentials"),
    ("ftp://hooks.example.com/otp", "absolute https:// URL"),
    ("hooks.example.com/otp", "absolute https:// URL"),
])
def test_url_is_checked_at_start_up(otp_settings: dict[str, Any], url: str, problem: str) -> None:
    settings = {**otp_settings, "providers": {"webhook": {"url": url, "signing_secret": SECRET}}}
    with pytest.raises(ConfigurationError) as info:
        OtpPro(settings)
    assert "providers.webhook.url" in str(info.value) and problem in str(info.value)


def test_https_and_loopback_urls_are_accepted(otp_settings: dict[str, Any]) -> None:
    for url in ("https://hooks.example.com/otp?team=7", "http://localhost:8080/otp", "http://[::1]:8080/otp"):
        settings = {**otp_settings, "providers": {"webhook": {"url": url, "signing_secret": SECRET}}}
        with OtpPro(settings) as otp:
            assert otp.transports["webhook"].configured


def test_half_configured_and_weak_secrets_are_refused(otp_settings: dict[str, Any], receiver: Receiver) -> None:
    for section, key in (({"url": receiver.url}, "providers.webhook.signing_secret"),
                         ({"signing_secret": SECRET}, "providers.webhook.url"),
                         ({"url": receiver.url, "signing_secret": "short-secret"}, "providers.webhook.signing_secret")):
        with pytest.raises(ConfigurationError) as info:
            OtpPro({**otp_settings, "providers": {"webhook": section}})
        assert key in str(info.value)
        assert "short-secret" not in str(info.value) and SECRET not in str(info.value)


def test_unconfigured_transport_is_idle(otp_settings: dict[str, Any], ann: Member) -> None:
    settings = {k: v for k, v in otp_settings.items() if k not in ("channels", "default_channel", "providers")}
    with OtpPro({**settings, "default_channel": "totp"}) as otp:
        assert "webhook" in otp.transports and "webhook:code" not in otp.registered_channels
        with pytest.raises(Exception, match="not set up"):
            otp.transports["webhook"].recipient(ann)


def test_member_opt_in(otp: OtpPro, make_member: Callable[..., Member]) -> None:
    transport = otp.transports["webhook"]
    assert transport.recipient(make_member("bo", fields={"webhook": True})) == "bo"
    assert transport.recipient(make_member("cy", fields={"webhook": "chat:cy"})) == "chat:cy"
    for fields in ({}, {"webhook": False}, {"webhook": ""}, {"webhook": 7}):
        reasons = {c.name: c.reason for c in otp.available_channels(make_member(fields=fields))}
        assert reasons["webhook:code"] == "not signed up for codes by webhook"


def test_dry_run_shows_the_url_without_its_query(otp_settings: dict[str, Any], receiver: Receiver) -> None:
    settings = {**otp_settings, "providers": {"webhook": webhook_settings(receiver, url=receiver.url + "?k=v1")}}
    with OtpPro(settings) as otp:
        result = otp.provider_test("webhook", "chat:ops", dry_run=True)
    assert result.parameters["url"] == receiver.url + "?..."
    assert result.parameters["signing_secret"] == "********"
    assert "code" in result.parameters["fields"] and receiver.deliveries == []


def test_sign_and_verify_helpers() -> None:
    body, now = b'{"code":"123456"}', int(time.time())
    signature = sign(SECRET, now, body)
    assert verify(SECRET, str(now), body, signature)
    assert not verify(SECRET, str(now), body + b" ", signature)  # tampered body
    assert not verify("x" * 40, str(now), body, signature)  # another secret
    assert not verify(SECRET, str(now - 301), body, sign(SECRET, now - 301, body))  # replayed later
    assert not verify(SECRET, None, body, signature) and not verify(SECRET, "12ab", body, signature)
