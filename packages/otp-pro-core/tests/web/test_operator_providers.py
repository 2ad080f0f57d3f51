"""The console's providers page: the provider test (a dry run unless the box is ticked), audited with the
operator; the settings with every secret redacted; the configuration check's result."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from core_support import SECRET_KEY
from flow_client import FlowClient
from test_operator import MEMBER, OPERATOR, ROLES, Lookup, console, verified

from otp_pro import OtpPro
from otp_pro.testing import Clock, Mailbox, enrol

SMTP_PASSWORD = "hunter2-smtp-password"


@pytest.fixture
def site(make_otp: Callable[..., OtpPro], clock: Clock, smtp_server: tuple[str, int, Mailbox]
         ) -> tuple[OtpPro, FlowClient, str]:
    host, port, _ = smtp_server
    otp = make_otp(roles=ROLES, plugins=[Lookup()], providers={"email": {
        "smtp_host": host, "smtp_port": port, "from_address": "otp@example.com", "smtp_username": "otp",
        "smtp_password": SMTP_PASSWORD}})
    enrol(otp, OPERATOR)
    clock.advance(60)
    client = console(otp, OPERATOR)
    return otp, client, verified(otp, client)


def test_the_page_shows_the_check_and_the_settings_without_a_secret(site: tuple[OtpPro, FlowClient, str]) -> None:
    _, client, _ = site
    page = client.get("/otp/operator/providers")
    assert page.status_code == 200
    assert 'id="config-summary" class="flash info">settings OK:' in page.text
    assert '&#34;smtp_password&#34;: &#34;********&#34;' in page.text  # HTML-escaped JSON
    assert SMTP_PASSWORD not in page.text and SECRET_KEY not in page.text


def test_a_dry_run_renders_sends_nothing_and_is_audited(site: tuple[OtpPro, FlowClient, str],
                                                        mailbox: Mailbox) -> None:
    otp, client, token = site
    refused = client.post("/otp/operator/providers/test", data={"transport": "email", "to": "t@example.com"})
    assert refused.status_code == 400 and not otp.events(kinds=["provider_test"])
    done = client.post("/otp/operator/providers/test",
                       data={"transport": "email", "to": "t@example.com", "csrf_token": token})
    assert done.status_code == 200 and "<strong>Dry run</strong> via email to t@example.com" in done.text
    assert SMTP_PASSWORD not in done.text
    [event] = otp.events(kinds=["provider_test"])
    assert event.actor == "console:op-1" and event.details["dry_run"] is True
    assert not mailbox.messages


def test_ticking_the_box_really_sends(site: tuple[OtpPro, FlowClient, str]) -> None:
    otp, client, token = site
    before = len(otp.transports["outbox"].messages)  # type: ignore[attr-defined]
    done = client.post("/otp/operator/providers/test",
                       data={"transport": "outbox", "to": "t@example.com", "send": "yes", "csrf_token": token})
    assert done.status_code == 200 and "<strong>Sent</strong>" in done.text
    assert len(otp.transports["outbox"].messages) == before + 1  # type: ignore[attr-defined]


def test_a_bad_recipient_or_transport_is_said(site: tuple[OtpPro, FlowClient, str]) -> None:
    otp, client, token = site
    bad = client.post("/otp/operator/providers/test",
                      data={"transport": "email", "to": "not an address", "csrf_token": token})
    assert bad.status_code == 400 and "is not an email address" in bad.text
    unknown = client.post("/otp/operator/providers/test", data={"transport": "fax", "to": "1", "csrf_token": token})
    assert unknown.status_code == 400 and "Choose a transport" in unknown.text
    assert not otp.events(kinds=["provider_test"])


def test_a_non_operator_cannot_run_a_test(make_otp: Callable[..., OtpPro], clock: Clock) -> None:
    otp = make_otp()
    enrol(otp, MEMBER)
    clock.advance(60)
    client = console(otp, MEMBER)
    token = verified(otp, client)
    assert client.get("/otp/operator/providers").status_code == 404
    sent = client.post("/otp/operator/providers/test",
                       data={"transport": "outbox", "to": "t@example.com", "send": "yes", "csrf_token": token})
    assert sent.status_code == 404 and not otp.events(kinds=["provider_test"])
