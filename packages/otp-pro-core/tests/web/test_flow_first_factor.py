"""A factor that signs members in on its own, through the flow: the login page's button, its challenge for no
member, and the hand-off of the member it proved (a passkey's "Sign in with a passkey", here a software key
that names itself: the core's generic first-factor calls, no type named in the flow)."""

from __future__ import annotations

import json
import re
import secrets
import types
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from core_support import SoftKey, SoftKeyFactor
from flow_client import FlowClient
from test_flow_ceremonies import register

from otp_pro import Member, OtpPro, hookimpl
from otp_pro.factor_types import Issued
from otp_pro.testing import page_csrf
from otp_pro.web.flow import Flow, Redirect, first_factor_html, login


class FirstSoftKey(SoftKeyFactor):
    """The software key, also a first factor: its answer's ``key_id`` is the factor's handle."""

    def offers_first_factor(self) -> bool:
        return True

    def issue_first(self, now: datetime) -> Issued:
        value = secrets.token_urlsafe(32)
        return Issued(value, {"challenge": value, "keys": []})

    def handle_of(self, answer: Any) -> str | None:
        return json.loads(answer).get("key_id") if self.accepts(answer) else None


first_plugin = types.SimpleNamespace(
    __name__="otp_pro_first_softkey_example",
    otp_pro_register_factor_types=hookimpl(lambda register: register(FirstSoftKey)),
)


@pytest.fixture
def site(make_otp: Callable[..., OtpPro], member: Member) -> tuple[OtpPro, FlowClient, list[str]]:
    otp = make_otp(plugins=[first_plugin], channels=["softkey", "totp"], default_channel="softkey", mode="required")
    handed: list[str] = []
    flow = Flow(otp, load_member={member.id: member}.get, check_password=lambda _m, _p: True, secure_cookies=False,
                on_first_factor=lambda _v, who: handed.append(who.id))

    def sign_in(v: Any) -> Redirect:
        return Redirect(location=login(v, member, next="/home"))

    def login_page(v: Any) -> str:
        return v.flow.render(_login_page(), v)

    return otp, FlowClient(flow, views={"/login": sign_in, "/home": lambda v: "home page",
                                        "/login-page": login_page}), handed


def _login_page() -> Any:
    from otp_pro.web.flow import Page

    return Page(template="otp_pro/login.html", context={"next": "/home"})


def test_the_login_page_offers_the_factor_and_it_signs_the_member_in(site, member):
    otp, client, handed = site
    key = SoftKey()
    register(client, key)
    client.session.clear()  # signed out
    page = client.get("/login-page")
    assert 'data-otp-ceremony="softkey"' in page.text and 'action="/otp/first-factor"' in page.text
    assert 'data-challenge-url="/otp/api/first-factor"' in page.text and "otp_pro_ceremony.js" in page.text
    token = page_csrf(page.text)
    issued = client.post("/otp/api/first-factor", json={"channel": "softkey"}, headers={"X-CSRF-Token": token})
    assert issued.status_code == 200 and issued.json["input"] == "softkey"
    answer = key.sign(issued.json["show"])
    done = client.post("/otp/first-factor", data={"channel": "softkey", "answer": answer, "next": "/home",
                                                  "csrf_token": token})
    assert done.status_code == 303 and done.headers["Location"] == "/home"
    assert handed == [member.id]
    assert client.get("/home").text == "home page"  # signed in and past the second step
    [event] = otp.events(member, kinds=["verify_ok"])
    assert event.details["first_factor"] is True


def test_a_refused_answer_goes_back_to_the_login_page_saying_why(site, member):
    _otp, client, handed = site
    key = SoftKey()
    register(client, key)
    client.session.clear()
    token = page_csrf(client.get("/login-page").text)
    issued = client.post("/otp/api/first-factor", json={"channel": "softkey"}, headers={"X-CSRF-Token": token})
    answer = key.sign(issued.json["show"])
    assert client.post("/otp/first-factor", data={"channel": "softkey", "answer": answer,
                                                   "csrf_token": token}).status_code == 303
    client.session.clear()
    token = page_csrf(client.get("/login-page").text)
    replay = client.post("/otp/first-factor", data={"channel": "softkey", "answer": answer, "csrf_token": token})
    assert replay.status_code == 303 and replay.headers["Location"] == "/login"
    assert "That did not work (wrong browser)" in client.get("/login-page").text
    assert handed == [member.id]


def test_the_challenge_route_refuses_what_is_not_offered(site):
    _otp, client, _handed = site
    token = client.get("/otp/api/status").json["csrf_token"]
    for channel in ("totp", "nope"):
        refused = client.post("/otp/api/first-factor", json={"channel": channel}, headers={"X-CSRF-Token": token})
        assert refused.status_code == 400 and refused.json["error"] == "channel"
    bad = client.post("/otp/api/first-factor", json={"channel": 7}, headers={"X-CSRF-Token": token})
    assert bad.status_code == 400 and bad.json["field"] == "channel"


def test_the_buttons_for_a_login_page_of_the_sites_own(make_otp, member):
    """``first_factor_html``: the same forms and script as login.html, ``next`` escaped, the reason of the last
    refusal above them; nothing at all on a site where no factor signs members in on its own."""
    otp = make_otp(plugins=[first_plugin], channels=["softkey", "totp"], default_channel="softkey", mode="required")
    flow = Flow(otp, load_member={member.id: member}.get, check_password=lambda _m, _p: True, secure_cookies=False)
    client = FlowClient(flow, views={
        "/login": lambda v: Redirect(location=login(v, member, next="/home")),
        "/own-login": lambda v: first_factor_html(v, next='/home?"><b>'),
        "/quiet-login": lambda v: first_factor_html(v, messages=False)})
    key = SoftKey()
    register(client, key)
    client.session.clear()
    own = client.get("/own-login").text
    assert own.count("<form") == 1 and 'action="/otp/first-factor"' in own and "otp_pro_ceremony.js" in own
    assert 'value="/home?&#34;&gt;&lt;b&gt;"' in own and "<b>" not in own
    token = form_csrf(own)
    replay_of = key.sign(client.post("/otp/api/first-factor", json={"channel": "softkey"},
                                     headers={"X-CSRF-Token": token}).json["show"])
    client.post("/otp/first-factor", data={"channel": "softkey", "answer": replay_of, "csrf_token": token})
    client.session.clear()
    token = form_csrf(client.get("/own-login").text)
    client.post("/otp/first-factor", data={"channel": "softkey", "answer": replay_of, "csrf_token": token})
    assert "wrong browser" not in client.get("/quiet-login").text  # kept for a page that shows messages
    shown = client.get("/own-login").text
    assert shown.index("That did not work (wrong browser)") < shown.index("<form")

    plain = make_otp(channels=["totp"], mode="required")
    plain_flow = Flow(plain, load_member={member.id: member}.get, check_password=lambda _m, _p: True)
    assert FlowClient(plain_flow, views={"/own-login": lambda v: first_factor_html(v)}).get("/own-login").text == ""


def form_csrf(html: str) -> str:
    """The CSRF token of a form's ``csrf_token`` field (a fragment has no ``<meta>`` to read it from)."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:300]
    return found.group(1)


def test_the_buttons_are_in_the_browsers_language(site):
    """``first_factor_html`` outside a page render chooses the language as a page would (Accept-Language)."""
    _otp, client, _handed = site
    client.views["/own-login"] = lambda v: first_factor_html(v)
    german = client.get("/own-login", headers={"Accept-Language": "de-DE,de;q=0.9"}).text
    assert "anmelden</button>" in german and "Dafür ist JavaScript nötig" in german
    assert "Sign in with your" not in german
