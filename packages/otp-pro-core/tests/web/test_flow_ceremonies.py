"""Factors answered in the browser, through the flow layer, for any factor type whose input is not a code.

The software key of core_support (``softkey``: input kind "softkey", a challenge of its own, JSON answers)
stands for a passkey: the setup page carries the setup's options for the browser, ``api_challenge`` hands
out a challenge bound to the login, and the verify page takes the answer as the form field ``answer``. No
part of the flow names the type; the browser script would say it cannot run a "softkey" ceremony.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from core_support import SoftKey, softkey_plugin
from flow_client import FlowClient, flow_client

from otp_pro import Member, OtpPro
from otp_pro.testing import page_csrf


@pytest.fixture
def site(make_otp: Callable[..., OtpPro], member: Member) -> tuple[OtpPro, FlowClient]:
    otp = make_otp(plugins=[softkey_plugin], channels=["softkey", "totp"], default_channel="softkey", mode="required")
    return otp, flow_client(otp, member)


def options_of(page: str) -> Any:
    found = re.search(r"data-options='([^']*)'", page)
    assert found, "the page carries no ceremony options"
    return json.loads(html.unescape(found.group(1)))


def register(client: FlowClient, key: SoftKey) -> str:
    assert client.get("/login").headers["Location"] == "/otp/setup"
    chosen = client.post("/otp/setup", data={"channel": "softkey", "label": "Blue key",
                                             "csrf_token": page_csrf(client.get("/otp/setup").text)})
    assert chosen.status_code == 200 and 'data-otp-ceremony="softkey"' in chosen.text
    assert "otp_pro_ceremony.js" in chosen.text and 'name="answer"' in chosen.text
    done = client.post("/otp/setup/confirm", data={"answer": key.register(options_of(chosen.text)),
                                                    "csrf_token": page_csrf(chosen.text)})
    assert done.status_code == 200 and "backup" in done.text.lower()
    return done.text


def challenge(client: FlowClient, token: str, channel: str | None = "softkey") -> Any:
    return client.post("/otp/api/challenge", json={"channel": channel}, headers={"X-CSRF-Token": token})


def test_set_up_and_sign_in_with_a_factor_answered_in_the_browser(site, member):
    otp, client = site
    key = SoftKey()
    register(client, key)
    assert [f.kind for f in otp.factors(member)] == ["softkey"]
    # The default factor delivers nothing: signing in sends no code, the verify page offers the ceremony.
    assert client.get("/login").headers["Location"] == "/otp/verify"
    page = client.get("/otp/verify")
    assert 'data-otp-ceremony="softkey"' in page.text and 'data-challenge-url="/otp/api/challenge"' in page.text
    assert "Send a code" not in page.text
    issued = challenge(client, page_csrf(page.text))
    assert issued.status_code == 200 and issued.json["ok"] and issued.json["input"] == "softkey"
    answer = key.sign(issued.json["show"])
    done = client.post("/otp/verify", data={"answer": answer, "csrf_token": page_csrf(page.text)})
    assert done.status_code == 303 and done.headers["Location"] == "/home"
    assert otp.events(member, kinds=["verify_ok"])[0].channel == "softkey"


def test_a_replayed_or_foreign_answer_is_refused_with_its_reason(site, member):
    otp, client = site
    key = SoftKey()
    register(client, key)
    client.get("/login")
    page = client.get("/otp/verify")
    answer = key.sign(challenge(client, page_csrf(page.text)).json["show"])
    # Another browser (its own login, its own binding) cannot answer this login's challenge.
    other = flow_client(otp, member)
    other.get("/login")
    other_page = other.get("/otp/verify")
    stolen = other.post("/otp/verify", data={"answer": answer, "csrf_token": page_csrf(other_page.text)})
    assert stolen.status_code == 200 and "That did not work (wrong browser)" in stolen.text
    assert client.post("/otp/verify", data={"answer": answer, "csrf_token": page_csrf(page.text)}).status_code == 303
    client.get("/login")
    page = client.get("/otp/verify")
    # A new login has a new binding: the answer, used already, is not this login's either.
    replay = client.post("/otp/verify", data={"answer": answer, "csrf_token": page_csrf(page.text)})
    assert replay.status_code == 200 and "That did not work (wrong browser)" in replay.text
    assert {e.details["reason"] for e in otp.events(member, kinds=["verify_failed"])} == {"wrong_browser"}


def test_the_json_api_takes_an_answer(site, member):
    _otp, client = site
    key = SoftKey()
    register(client, key)
    client.get("/login")
    token = client.get("/otp/api/status").json["csrf_token"]
    answer = key.sign(challenge(client, token).json["show"])
    done = client.post("/otp/api/verify", json={"answer": answer}, headers={"X-CSRF-Token": token})
    assert done.status_code == 200 and done.json["ok"] and done.json["location"] == "/home"
    token = client.get("/otp/api/status").json["csrf_token"]  # a passed step rotates the session
    too_long = client.post("/otp/api/verify", json={"answer": "x" * 9000}, headers={"X-CSRF-Token": token})
    assert too_long.status_code == 413  # the body is over the flow's limit: never read whole


def test_challenge_refusals_are_json_with_a_reason(site, member):
    _otp, client = site
    token = client.get("/otp/api/status").json["csrf_token"]
    signed_out = challenge(client, token)
    assert signed_out.status_code == 401 and signed_out.json["error"] == "signed_out"
    client.get("/login")
    token = client.get("/otp/api/status").json["csrf_token"]
    not_yet = challenge(client, token)
    assert not_yet.status_code == 400 and not_yet.json["error"] == "factor_not_enrolled"
    for channel in ("totp", "nope", None):
        refused = challenge(client, token, channel)
        assert refused.status_code == 400 and refused.json["error"] == "channel"
    no_csrf = client.post("/otp/api/challenge", json={"channel": "softkey"})
    assert no_csrf.status_code == 400 and no_csrf.json["error"] == "csrf"


def test_a_setup_answered_badly_says_why_and_offers_to_start_again(site, member):
    otp, client = site
    client.get("/login")
    chosen = client.post("/otp/setup", data={"channel": "softkey",
                                             "csrf_token": page_csrf(client.get("/otp/setup").text)})
    wrong = SoftKey().register({"challenge": "not-the-one-the-server-chose-0123456789abcdef"})
    refused = client.post("/otp/setup/confirm", data={"answer": wrong, "csrf_token": page_csrf(chosen.text)})
    assert refused.status_code == 200 and "That did not work (wrong challenge)" in refused.text
    assert "Start again" in refused.text and otp.factors(member) == []


def test_a_change_of_settings_is_confirmed_with_the_password_and_the_factor(site, member):
    _otp, client = site
    key = SoftKey()
    register(client, key)
    client.get("/login")
    page = client.get("/otp/verify")
    answer = key.sign(challenge(client, page_csrf(page.text)).json["show"])
    assert client.post("/otp/verify", data={"answer": answer, "csrf_token": page_csrf(page.text)}).status_code == 303
    settings = client.get("/otp/settings")
    assert 'data-otp-ceremony="softkey"' in settings.text and "Confirm with your security key" in settings.text
    token = page_csrf(settings.text)
    answer = key.sign(challenge(client, token).json["show"])
    done = client.post("/otp/settings/reauth", data={"password": "secret", "answer": answer, "csrf_token": token})
    assert done.status_code == 303
    assert 'id="reauth-ok"' in client.get("/otp/settings").text
