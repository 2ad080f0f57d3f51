"""The member's factors in the Flask pages: the verify page offers only their own, the settings page manages them."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from webkit import built_site, csrf_of, last_code, sign_in

from otp_pro import Member
from otp_pro_flask.demo_site import DemoSite

#: No resend cooldown, so a test's sends are not held up by the ones before.
FAST = {"resend_cooldown_seconds": 0}
PASSWORD = "pw-factors"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[DemoSite]:
    with built_site(tmp_path / "demo.sqlite3", **FAST) as demo:
        yield demo


@pytest.fixture
def client(site: DemoSite) -> Any:
    return site.app.test_client()


def totp_code(site: DemoSite, secret: str) -> str:
    """A code of the app with ``secret`` at a time step no earlier code used (the demo's clock moves on 30 s)."""
    site.clock.offset -= timedelta(seconds=30)
    return pyotp.TOTP(secret).at(site.clock())


def totp_member(site: DemoSite, email: str, roles: tuple[str, ...] = ("editor",)) -> tuple[Member, str]:
    """A member whose only factor is an authenticator app (their role allows email too); and its seed."""
    member = site.add_member(email, PASSWORD, roles=roles)
    info = site.otp.begin_setup(member, "totp")
    assert info.secret is not None
    site.otp.complete_setup(member, totp_code(site, info.secret))
    return member, info.secret


def post(client: Any, path: str, page: str = "/otp/settings", **data: str) -> Any:
    return client.post(path, data={**data, "csrf_token": csrf_of(client, page)})


def verify(client: Any, code: str) -> Any:
    return post(client, "/otp/verify", "/otp/verify", code=code)


def reauth(client: Any, code: str, password: str = PASSWORD) -> Any:
    done = post(client, "/otp/settings/reauth", password=password, code=code)
    assert done.status_code == 303
    return client.get("/otp/settings")


def factor_ids(site: DemoSite, member: Member) -> dict[str, int]:
    return {f.kind: f.id for f in site.otp.factors(member)}


# ------------------------------------------------------------------ the verify page


def test_a_totp_only_member_is_not_offered_email_and_cannot_ask_for_it(site: DemoSite, client: Any) -> None:
    totp_member(site, "app@demo.test")
    site.outbox.clear()
    assert sign_in(client, "app@demo.test", PASSWORD).headers["Location"] == "/otp/verify"
    page = client.get("/otp/verify")
    assert "authenticator app" in page.text
    assert 'value="email:code"' not in page.text and "Send by" not in page.text and "Send a code" not in page.text
    refused = post(client, "/otp/send", "/otp/verify", channel="email:code")
    assert refused.status_code == 400 and "You have not set up that method" in refused.text
    token = client.get("/otp/api/status").get_json()["csrf_token"]
    api = client.post("/otp/api/send", json={"channel": "email:code"}, headers={"X-CSRF-Token": token})
    assert api.status_code == 400 and api.get_json()["error"] == "factor_not_enrolled"
    assert "You have not set up that method" in api.get_json()["message"]
    nothing = client.post("/otp/api/send", json={}, headers={"X-CSRF-Token": token})  # an app has nothing to send
    assert nothing.status_code == 400
    assert site.outbox.last() is None  # nothing was sent, to anyone


def test_another_method_lists_the_members_own_factors_with_label_and_hint(site: DemoSite, client: Any) -> None:
    member = site.add_member("both@demo.test", PASSWORD, enroll_on="email:code")
    info = site.otp.begin_setup(member, "totp", label="Phone app")
    assert info.secret is not None
    site.otp.complete_setup(member, totp_code(site, info.secret))
    site.otp.set_default_factor(member, factor_ids(site, member)["totp"])
    site.outbox.clear()
    sign_in(client, "both@demo.test", PASSWORD)
    assert site.outbox.last() is None  # the default is the app: nothing is sent at login
    page = client.get("/otp/verify")
    assert "authenticator app" in page.text and "Use another method" in page.text
    assert 'value="email:code"' in page.text and "Send by Email" in page.text and "to b***@demo.test" in page.text
    assert 'value="sms_twilio:code"' not in page.text and 'value="email:magic_link"' not in page.text
    factors = client.get("/otp/api/status").get_json()["factors"]
    assert [(f["kind"], f["label"], f["recipient_hint"], f["is_default"], f["channel"]) for f in factors] == [
        ("email:code", "Email", "b***@demo.test", False, "email:code"), ("totp", "Phone app", None, True, None)]
    sent = post(client, "/otp/send", "/otp/verify", channel="email:code")
    assert sent.status_code == 303
    page = client.get("/otp/verify")
    assert "We sent a 6-digit code by Email to <strong>b***@demo.test</strong>" in page.text
    assert "Phone app" in page.text  # the app still answers on the same form
    done = verify(client, last_code(site, "both@demo.test"))
    assert done.status_code == 303


def test_a_factor_whose_address_changed_is_not_sent_to(site: DemoSite, client: Any) -> None:
    member = site.add_member("moved@demo.test", PASSWORD, enroll_on="email:code")
    codes = site.otp.regenerate_backup_codes(member)
    with sqlite3.connect(site.database) as db:
        db.execute("UPDATE demo_members SET email = ? WHERE id = ?", ("new-home@demo.test", member.id))
    site.outbox.clear()
    sign_in(client, "new-home@demo.test", PASSWORD)
    page = client.get("/otp/verify")
    assert "needs re-confirming" in page.text and "Send a code" not in page.text
    refused = post(client, "/otp/send", "/otp/verify", channel="email:code")
    assert refused.status_code == 400 and "has changed since you set it up" in refused.text
    token = client.get("/otp/api/status").get_json()["csrf_token"]
    api = client.post("/otp/api/send", json={}, headers={"X-CSRF-Token": token})
    assert api.status_code == 400 and api.get_json()["error"] == "needs_reconfirming"
    assert site.outbox.last() is None
    # A backup code signs in; the settings say what to do, and re-confirming sends to the new address.
    assert verify(client, codes[0]).status_code == 303
    settings = reauth(client, codes[1])
    assert "Needs re-confirming" in settings.text and "Confirmed" in settings.text
    factor = factor_ids(site, member)["email:code"]
    started = post(client, f"/otp/settings/factors/{factor}/reconfirm")
    assert started.status_code == 200 and "n***@demo.test" in started.text
    done = post(client, "/otp/setup/confirm", code=last_code(site, "new-home@demo.test"))
    assert done.status_code == 303 and done.headers["Location"] == "/otp/settings"
    settings = client.get("/otp/settings")
    assert "is confirmed at its new address" in settings.text and "backup codes are unchanged" in settings.text
    assert "Needs re-confirming" not in settings.text and "n***@demo.test" in settings.text
    moved = site.store.member(member.id)
    assert moved is not None and [f.needs_reconfirming for f in site.otp.factors(moved)] == [False]


# ------------------------------------------------------------------ the settings page


def test_settings_list_the_factors_and_add_a_second_one(site: DemoSite, client: Any) -> None:
    member = site.add_member("adder@demo.test", PASSWORD, enroll_on="email:code")
    sign_in(client, "adder@demo.test", PASSWORD)
    verify(client, last_code(site))
    page = client.get("/otp/settings")
    assert page.status_code == 200 and 'id="factors"' in page.text
    assert "a***@demo.test" in page.text and "Default" in page.text and "Never" not in page.text
    # Adding needs the password + code confirmation first.
    early = client.get("/otp/setup")
    assert early.status_code == 303 and early.headers["Location"] == "/otp/settings"
    post(client, "/otp/send", next="/otp/settings")
    reauth(client, last_code(site))
    choose = client.get("/otp/setup")
    assert "Add a sign-in method" in choose.text and "you have: Email (a***@demo.test)" in choose.text
    bad_label = post(client, "/otp/setup", "/otp/setup", channel="totp", label="x" * 101)
    assert bad_label.status_code == 400 and "That name cannot be used" in bad_label.text
    same_address = post(client, "/otp/setup", "/otp/setup", channel="email:code")
    assert same_address.status_code == 400 and "cannot be set up" in same_address.text
    started = post(client, "/otp/setup", "/otp/setup", channel="totp", label="Phone app")
    assert started.status_code == 200 and "Confirm Phone app" in started.text
    secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7]+)<', started.text).group(1)  # type: ignore[union-attr]
    wrong = post(client, "/otp/setup/confirm", "/otp/settings", code="000000")
    assert wrong.status_code == 200 and "not correct" in wrong.text
    done = post(client, "/otp/setup/confirm", code=totp_code(site, secret))
    assert done.status_code == 303 and done.headers["Location"] == "/otp/settings"
    page = client.get("/otp/settings")
    assert "Phone app was added" in page.text and "Your backup codes are unchanged" in page.text
    assert "Phone app" in page.text and "Authenticator app" in page.text and "2 sign-in methods" in page.text
    assert [f.label for f in site.otp.factors(member)] == ["Email", "Phone app"]
    assert site.otp.status(member).backup_codes_remaining == 10  # the first setup's set, not a new one


def test_rename_make_default_and_remove(site: DemoSite, client: Any) -> None:
    member, secret = totp_member(site, "three@demo.test")
    info = site.otp.begin_setup(member, "email:code")
    assert info.challenge is not None
    site.otp.complete_setup(member, last_code(site, "three@demo.test"))
    ids = factor_ids(site, member)
    sign_in(client, "three@demo.test", PASSWORD)
    verify(client, totp_code(site, secret))
    # Rename needs no fresh confirmation; a bad name is a message, not an error page.
    renamed = post(client, f"/otp/settings/factors/{ids['totp']}/rename", label="  Phone   app ")
    assert renamed.status_code == 303
    assert "The method is now called Phone app." in client.get("/otp/settings").text
    control = post(client, f"/otp/settings/factors/{ids['totp']}/rename", label="bad\x01name")
    assert control.status_code == 303 and "That name cannot be used" in client.get("/otp/settings").text
    back = post(client, f"/otp/settings/factors/{ids['totp']}/rename", label="")
    assert back.status_code == 303 and [f.own_label for f in site.otp.factors(member)] == [None, None]
    # The other actions need the confirmation.
    for action in ("default", "remove", "reconfirm"):
        early = post(client, f"/otp/settings/factors/{ids['email:code']}/{action}")
        assert early.status_code == 303
        assert "Confirm your password and a fresh code first" in client.get("/otp/settings").text
    assert len(site.otp.factors(member)) == 2
    reauth(client, totp_code(site, secret))
    made = post(client, f"/otp/settings/factors/{ids['email:code']}/default")
    assert made.status_code == 303
    assert "Email is now your default sign-in method." in client.get("/otp/settings").text
    assert [f.is_default for f in site.otp.factors(member)] == [False, True]
    not_a_factor = post(client, f"/otp/settings/factors/{ids['totp']}/reconfirm")
    assert "has no address to confirm" in client.get("/otp/settings").text and not_a_factor.status_code == 303
    removed = post(client, f"/otp/settings/factors/{ids['totp']}/remove")
    assert removed.status_code == 303
    page = client.get("/otp/settings")
    assert "Authenticator app was removed from your sign-in methods" in page.text
    assert [f.kind for f in site.otp.factors(member)] == ["email:code"]
    again = post(client, f"/otp/settings/factors/{ids['totp']}/remove")
    assert again.status_code == 303 and "not in your list" in client.get("/otp/settings").text


def test_a_required_members_last_factor_is_not_removed(site: DemoSite, client: Any) -> None:
    member = site.add_member("must@demo.test", PASSWORD, roles=("member",), enroll_on="email:code")
    sign_in(client, "must@demo.test", PASSWORD)
    verify(client, last_code(site))
    post(client, "/otp/send", next="/otp/settings")
    reauth(client, last_code(site))
    factor = factor_ids(site, member)["email:code"]
    refused = post(client, f"/otp/settings/factors/{factor}/remove")
    assert refused.status_code == 303
    assert "This is your last sign-in method and your account requires one" in client.get("/otp/settings").text
    assert len(site.otp.factors(member)) == 1


def test_another_members_factor_and_junk_ids_are_refused(site: DemoSite, client: Any) -> None:
    other, _ = totp_member(site, "other@demo.test")
    theirs = factor_ids(site, other)["totp"]
    member = site.add_member("mine@demo.test", PASSWORD, enroll_on="email:code")
    sign_in(client, "mine@demo.test", PASSWORD)
    verify(client, last_code(site))
    post(client, "/otp/send", next="/otp/settings")
    reauth(client, last_code(site))
    for action in ("rename", "default", "remove", "reconfirm"):
        refused = post(client, f"/otp/settings/factors/{theirs}/{action}", label="mine now")
        assert refused.status_code == 303, action
        assert "That sign-in method is not in your list" in client.get("/otp/settings").text
        for junk in ("abc", "0", "99999999999999999999", "١٢"):
            answer = post(client, f"/otp/settings/factors/{junk}/{action}")
            assert answer.status_code == 404 and "not in your list" in answer.text
    assert len(site.otp.factors(other)) == 1 and site.otp.factors(other)[0].own_label is None
    assert len(site.otp.factors(member)) == 1
    no_csrf = client.post(f"/otp/settings/factors/{factor_ids(site, member)['email:code']}/remove")
    assert no_csrf.status_code == 400 and len(site.otp.factors(member)) == 1
