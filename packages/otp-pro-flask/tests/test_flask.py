"""The Flask extension through Flask's test client: views, JSON endpoints, CSRF, sessions, cookies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from flask import Flask, redirect, request
from webkit import built_site, csrf_of, last_code, sign_in

from otp_pro import Member, OtpPro
from otp_pro_flask import SECURITY_HEADERS, OtpProFlask, safe_next
from otp_pro_flask.demo_site import DemoSite

EDITOR = ("editor@demo.test", "editor-demo")
#: No resend cooldown, so each test's sign-ins are not held up by the seeding's codes.
FAST = {"resend_cooldown_seconds": 0}


# The fixtures live here, not in a tests/web/conftest.py, so that tests/integration loads them by this
# module's name (``pytest_plugins = ("test_flask",)``) without a second module named ``conftest``.
@pytest.fixture
def site(tmp_path: Path) -> Iterator[DemoSite]:
    with built_site(tmp_path / "demo.sqlite3", **FAST) as demo:
        yield demo


@pytest.fixture
def client(site: DemoSite) -> Any:
    return site.app.test_client()


def session_cookie(client: Any) -> str | None:
    cookie = client.get_cookie("session")
    return cookie.value if cookie else None


def verify(client: Any, code: str, **extra: str) -> Any:
    return client.post("/otp/verify", data={"code": code, "csrf_token": csrf_of(client, "/otp/verify"), **extra})


def test_two_step_sign_in(site: DemoSite, client: Any) -> None:
    response = sign_in(client, *EDITOR, next_url="/protected")
    assert response.status_code == 303 and response.headers["Location"] == "/otp/verify"
    # Signed in with the password only: the gate keeps the protected page shut.
    gated = client.get("/protected")
    assert gated.status_code == 303 and gated.headers["Location"].startswith("/otp/verify?next=%2Fprotected")
    page = client.get("/otp/verify")
    assert page.status_code == 200
    assert "e***@demo.test" in page.text and "Email" in page.text
    assert 'autocomplete="one-time-code"' in page.text and 'inputmode="numeric"' in page.text
    assert '<label for="otp-code">' in page.text
    code = last_code(site, "editor@demo.test")
    done = verify(client, code)
    assert done.status_code == 303 and done.headers["Location"] == "/protected"
    assert client.get("/protected").status_code == 200


def test_typos_get_messages_not_errors(site: DemoSite, client: Any) -> None:
    sign_in(client, *EDITOR)
    empty = verify(client, "")
    assert empty.status_code == 400 and "Enter the code" in empty.text
    malformed = verify(client, "12ab!!")
    assert malformed.status_code == 400 and "Enter the code as digits" in malformed.text
    wrong = verify(client, "000000" if last_code(site) != "000000" else "111111")
    assert wrong.status_code == 200
    assert "That code is not correct." in wrong.text and "4 attempts left" in wrong.text
    huge = verify(client, "9" * 5000)
    assert huge.status_code in (200, 400)
    missing_field = client.post("/otp/verify", data={"csrf_token": csrf_of(client, "/otp/verify")})
    assert missing_field.status_code == 400
    bad_login = client.post("/login", data={"email": "", "password": "", "csrf_token": csrf_of(client)})
    assert bad_login.status_code == 400 and "Enter your email and password" in bad_login.text
    wrong_password = client.post("/login", data={"email": EDITOR[0], "password": "nope", "csrf_token": csrf_of(client)})
    assert wrong_password.status_code == 401 and "not correct" in wrong_password.text


def test_lockout_message(site: DemoSite, client: Any) -> None:
    sign_in(client, *EDITOR)
    good = last_code(site)
    wrong = "000000" if good != "000000" else "111111"
    for _ in range(4):
        assert verify(client, wrong).status_code == 200
    locked = verify(client, wrong)
    assert locked.status_code == 429
    assert "Too many failed attempts. Try again in 15 minutes." in locked.text
    # Even the right code is refused during the lockout, and the page says so on a plain GET.
    assert verify(client, good).status_code == 429
    assert "Try again in 15 minutes" in client.get("/otp/verify").text


def test_an_address_over_a_per_ip_limit_gets_429_with_retry_after(tmp_path: Path) -> None:
    demo = DemoSite(str(tmp_path / "ip.sqlite3"), overrides={
        **FAST, "max_failed_verifications_per_hour_per_ip": 2, "max_sends_per_hour_per_ip": 2})
    try:
        client = demo.app.test_client()
        sign_in(client, *EDITOR)  # the first send from 127.0.0.1
        good = last_code(demo)
        wrong = "000000" if good != "000000" else "111111"
        assert verify(client, wrong).status_code == 200
        assert verify(client, wrong).status_code == 200
        limited = verify(client, good)  # over the address's cap: not even the right code is looked at
        assert limited.status_code == 429 and 3000 < int(limited.headers["Retry-After"]) <= 3601
        assert "Too many attempts came from your network recently. Try again in 60 minutes." in limited.text
        headers = {"X-CSRF-Token": client.get("/otp/api/status").get_json()["csrf_token"]}
        api = client.post("/otp/api/verify", json={"code": good}, headers=headers)
        assert api.status_code == 429 and api.get_json()["error"] == "rate_limited"
        assert api.headers["Retry-After"] == str(api.get_json()["retry_after"])
        assert client.post("/otp/api/send", json={}, headers=headers).status_code == 200  # the second send
        over = client.post("/otp/api/send", json={}, headers=headers)
        assert over.status_code == 429 and over.headers["Retry-After"]
        assert over.get_json()["message"].startswith("Too many codes were sent from your network recently.")
        neighbour = demo.app.test_client()  # another address is not held back
        neighbour.environ_base["REMOTE_ADDR"] = "203.0.113.5"
        sign_in(neighbour, *EDITOR)
        assert verify(neighbour, last_code(demo)).status_code == 303
    finally:
        demo.close()


def test_resend_cooldown_is_shown(tmp_path: Path) -> None:
    demo = DemoSite(str(tmp_path / "cool.sqlite3"))  # the default 30 s cooldown
    try:
        client = demo.app.test_client()
        sign_in(client, *EDITOR)  # the seeding's code is older than the cooldown: this one is sent
        assert demo.outbox.last("editor@demo.test") is not None
        page = client.get("/otp/verify")
        assert re.search(r"You can ask for a new code in \d+ seconds", page.text)
        again = client.post("/otp/send", data={"csrf_token": csrf_of(client, "/otp/verify")},
                            follow_redirects=True)
        assert re.search(r"Please wait \d+ seconds before asking for another code", again.text)
    finally:
        demo.close()


def test_csrf_required_on_every_post(site: DemoSite, client: Any) -> None:
    client.get("/login")
    refused = client.post("/login", data={"email": EDITOR[0], "password": EDITOR[1]})
    assert refused.status_code == 400 and "This form has expired" in refused.text
    forged = client.post("/login", data={"email": EDITOR[0], "password": EDITOR[1], "csrf_token": "x" * 43})
    assert forged.status_code == 400
    sign_in(client, *EDITOR)
    assert client.post("/otp/verify", data={"code": last_code(site)}).status_code == 400
    as_json = client.post("/otp/api/verify", json={"code": "123456"})
    assert as_json.status_code == 400 and as_json.get_json()["error"] == "csrf"


def test_session_rotates_at_login_and_verification(site: DemoSite, client: Any) -> None:
    client.get("/login")
    planted = session_cookie(client)
    assert planted
    sign_in(client, *EDITOR)
    after_login = session_cookie(client)
    assert after_login and after_login != planted
    verify(client, last_code(site))
    after_verify = session_cookie(client)
    assert after_verify and after_verify not in (planted, after_login)
    # The old session ids are gone from the store: a fixated id is worth nothing.
    other = site.app.test_client()
    other.set_cookie("session", after_login)
    assert other.get("/protected").headers["Location"].startswith("/login")
    # A fresh browser (no cookies) is asked again.
    assert site.app.test_client().get("/protected").status_code == 303


def test_new_login_asks_again(site: DemoSite, client: Any) -> None:
    sign_in(client, *EDITOR)
    verify(client, last_code(site))
    assert client.get("/protected").status_code == 200
    sign_in(client, *EDITOR)
    assert client.get("/protected").status_code == 303


def test_logout(site: DemoSite, client: Any) -> None:
    sign_in(client, *EDITOR)
    verify(client, last_code(site))
    token = csrf_of(client, "/protected")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/protected").headers["Location"].startswith("/login")


def test_backup_code_sign_in(site: DemoSite, client: Any) -> None:
    member = site.store.check_login(*EDITOR)
    assert member is not None
    codes = site.otp.regenerate_backup_codes(member)
    sign_in(client, *EDITOR)
    done = verify(client, codes[0])
    assert done.status_code == 303
    page = client.get("/protected")
    assert page.status_code == 200 and "9 backup codes left" in page.text
    sign_in(client, *EDITOR)
    reused = verify(client, codes[0])
    assert reused.status_code == 200 and "not correct" in reused.text


def test_trusted_device_cookie(site: DemoSite, client: Any) -> None:
    sign_in(client, *EDITOR)
    done = verify(client, last_code(site), trust="1")
    cookie = next(h for h in done.headers.getlist("Set-Cookie") if h.startswith("otp_pro_device="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=2592000" in cookie
    assert "Secure" not in cookie  # secure_cookies=False is honoured on 127.0.0.1 / localhost only
    before = len(site.outbox.messages)
    assert sign_in(client, *EDITOR).headers["Location"] == "/protected"
    assert len(site.outbox.messages) == before  # no code sent to a trusted device
    assert client.get("/protected").status_code == 200


def test_trusted_device_cookie_is_secure_off_loopback(site: DemoSite) -> None:
    client = site.app.test_client()
    base = "https://demo.example"
    page = client.get("/login", base_url=base)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    client.post("/login", base_url=base, data={"email": EDITOR[0], "password": EDITOR[1], "csrf_token": token})
    page = client.get("/otp/verify", base_url=base)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    done = client.post("/otp/verify", base_url=base,
                       data={"code": last_code(site), "trust": "1", "csrf_token": token})
    cookie = next(h for h in done.headers.getlist("Set-Cookie") if "otp_pro_device=" in h)
    assert cookie.startswith("__Host-otp_pro_device=") and "Secure" in cookie and "HttpOnly" in cookie


def test_forced_totp_setup(site: DemoSite, client: Any) -> None:
    first = sign_in(client, "admin@demo.test", "admin-demo")
    assert first.headers["Location"] == "/otp/setup"
    assert client.get("/protected").headers["Location"].startswith("/otp/setup")
    choose = client.get("/otp/setup")
    assert choose.status_code == 200 and "Authenticator app" in choose.text
    bad = client.post("/otp/setup", data={"channel": "email:code", "csrf_token": csrf_of(client, "/otp/setup")})
    assert bad.status_code == 400 and "Choose one of the methods listed" in bad.text
    started = client.post("/otp/setup", data={"channel": "totp", "csrf_token": csrf_of(client, "/otp/setup")})
    assert started.status_code == 200 and "<svg" in started.text
    secret = re.search(r'id="totp-secret"[^>]*>([A-Z2-7]+)<', started.text).group(1)  # type: ignore[union-attr]
    token = csrf_of(client, "/otp/setup")
    wrong = client.post("/otp/setup/confirm", data={"code": "000000", "csrf_token": token})
    assert wrong.status_code == 200 and "not correct" in wrong.text
    done = client.post("/otp/setup/confirm", data={"code": pyotp.TOTP(secret).now(), "csrf_token": token})
    assert done.status_code == 200
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", done.text)
    assert len(codes) == 10
    assert client.get("/protected").status_code == 200
    # The JSON API agrees with the pages: this login finished the setup, so nothing more is needed.
    status = client.get("/otp/api/status").get_json()
    assert status["verified"] is True and status["verification_needed"] is False and status["must_setup"] is False


def _begin_totp_setup(client: Any) -> str:
    """Start a TOTP setup in ``client``'s session; the seed shown on the page."""
    started = client.post("/otp/setup", data={"channel": "totp", "csrf_token": csrf_of(client, "/otp/setup")})
    assert started.status_code == 200
    return re.search(r'id="totp-secret"[^>]*>([A-Z2-7]+)<', started.text).group(1)  # type: ignore[union-attr]


def _confirm_setup(client: Any, code: str) -> Any:
    return client.post("/otp/setup/confirm", data={"code": code, "csrf_token": csrf_of(client, "/otp/setup")})


def test_a_setup_is_finished_only_by_the_session_that_began_it(site: DemoSite, client: Any) -> None:
    sign_in(client, "admin@demo.test", "admin-demo")
    secret = _begin_totp_setup(client)
    # Another login with the password (another browser) posts the right code for the setup begun above.
    other = site.app.test_client()
    sign_in(other, "admin@demo.test", "admin-demo")
    refused = _confirm_setup(other, pyotp.TOTP(secret).now())
    assert refused.status_code == 403
    assert "Start the setup again" in refused.text and "<li><code>" not in refused.text
    admin = site.store.check_login("admin@demo.test", "admin-demo")
    assert admin is not None and not site.otp.status(admin).enrolled
    assert other.get("/protected").headers["Location"].startswith("/otp/setup")
    # The session that began it finishes it, with the same code: the refusal never looked at it.
    done = _confirm_setup(client, pyotp.TOTP(secret).now())
    assert done.status_code == 200 and len(re.findall(r"<li><code>", done.text)) == 10
    assert client.get("/protected").status_code == 200
    assert other.get("/protected").status_code == 303  # still a password-only login


def test_a_setup_begun_later_by_another_session_is_not_finished_by_this_one(site: DemoSite, client: Any) -> None:
    """Both sessions began a setup; only the newest is pending, and only its own session may finish it."""
    site.add_member("new@demo.test", "new-pass", roles=("editor",))
    sign_in(client, "new@demo.test", "new-pass")
    _begin_totp_setup(client)
    other = site.app.test_client()
    sign_in(other, "new@demo.test", "new-pass")
    secret = _begin_totp_setup(other)
    refused = _confirm_setup(client, pyotp.TOTP(secret).now())
    assert refused.status_code == 403 and "Start the setup again" in refused.text
    assert _confirm_setup(other, pyotp.TOTP(secret).now()).status_code == 200


def test_grace_notice(site: DemoSite, client: Any) -> None:
    assert sign_in(client, "member@demo.test", "member-demo").headers["Location"] == "/protected"
    page = client.get("/protected")
    assert page.status_code == 200 and "set it up now to keep access" in page.text


def test_not_required_member_passes(site: DemoSite, client: Any) -> None:
    assert sign_in(client, "viewer@demo.test", "viewer-demo").headers["Location"] == "/protected"
    assert client.get("/protected").status_code == 200
    assert client.get("/otp/setup").status_code == 303


def _reauth(site: DemoSite, client: Any, password: str = EDITOR[1]) -> Any:
    token = csrf_of(client, "/otp/settings")
    client.post("/otp/send", data={"next": "/otp/settings", "csrf_token": token})
    return client.post("/otp/settings/reauth", data={"password": password, "code": last_code(site),
                                                     "csrf_token": token}, follow_redirects=True)


def test_settings_need_password_and_fresh_code(site: DemoSite, client: Any) -> None:
    sign_in(client, *EDITOR)
    verify(client, last_code(site), trust="1")
    page = client.get("/otp/settings")
    assert page.status_code == 200 and "Current password" in page.text
    token = csrf_of(client, "/otp/settings")
    refused = client.post("/otp/settings/backup-codes", data={"csrf_token": token}, follow_redirects=True)
    assert "Confirm your password and a fresh code first" in refused.text
    no_code = client.post("/otp/settings/reauth", data={"password": EDITOR[1], "csrf_token": token},
                          follow_redirects=True)
    assert "Enter a fresh one-time code" in no_code.text
    wrong_password = _reauth(site, client, "wrong")
    assert "That password is not correct" in wrong_password.text
    confirmed = _reauth(site, client)
    assert "Confirmed" in confirmed.text
    fresh = client.post("/otp/settings/backup-codes", data={"csrf_token": csrf_of(client, "/otp/settings")})
    assert fresh.status_code == 200 and len(re.findall(r"<li><code>", fresh.text)) == 10
    devices = client.get("/otp/settings").text
    device_id = re.search(r"/otp/settings/devices/(\d+)/revoke", devices).group(1)  # type: ignore[union-attr]
    token = csrf_of(client, "/otp/settings")
    revoked = client.post(f"/otp/settings/devices/{device_id}/revoke", data={"csrf_token": token},
                          follow_redirects=True)
    assert "The device was removed" in revoked.text and "No trusted devices" in revoked.text
    again = client.post(f"/otp/settings/devices/{device_id}/revoke", data={"csrf_token": token},
                        follow_redirects=True)
    assert "not in your list" in again.text
    junk = client.post("/otp/settings/devices/abc/revoke", data={"csrf_token": token}, follow_redirects=True)
    assert junk.status_code == 404 and "not in your list" in junk.text  # no device id at all
    off = client.post("/otp/settings/disable", data={"csrf_token": token}, follow_redirects=True)
    assert "Two-step verification is off" in off.text
    member = site.store.check_login(*EDITOR)
    assert member is not None and not site.otp.status(member).enrolled


def test_wrong_reauth_passwords_count_toward_the_lockout(site: DemoSite, client: Any) -> None:
    sign_in(client, *EDITOR)
    verify(client, last_code(site))
    token = csrf_of(client, "/otp/settings")
    client.post("/otp/send", data={"next": "/otp/settings", "csrf_token": token})
    fresh = last_code(site)  # unused: only the password stands between the member and the confirmation

    def reauth(password: str) -> Any:
        return client.post("/otp/settings/reauth", data={"password": password, "code": fresh, "csrf_token": token},
                           follow_redirects=True)

    first = reauth("wrong")
    assert "That password is not correct." in first.text and "4 attempts left" in first.text
    for _ in range(3):
        reauth("wrong")
    locked = reauth("wrong")
    assert "Too many failed attempts. Try again in 15 minutes." in locked.text
    # The right password (and a fresh code) is refused while the lock lasts, with the same message.
    refused = reauth(EDITOR[1])
    assert "Too many failed attempts. Try again in 15 minutes." in refused.text and "Confirmed" not in refused.text
    changed = client.post("/otp/settings/backup-codes", data={"csrf_token": token}, follow_redirects=True)
    assert "Confirm your password and a fresh code first" in changed.text
    member = site.store.check_login(*EDITOR)
    assert member is not None
    failed = site.otp.events(member, kinds=["verify_failed"])
    assert [e.details["reason"] for e in failed] == ["password"] * 5 and all(e.ip for e in failed)
    assert site.otp.status(member).locked_until is not None
    # The code was never looked at: it still confirms once the lock is lifted.
    site.otp.unlock(member)
    assert "Confirmed" in reauth(EDITOR[1]).text


def test_required_member_cannot_disable(site: DemoSite, client: Any) -> None:
    member = site.add_member("boss@demo.test", "boss-pass", roles=("member",), enroll_on="email:code")
    sign_in(client, "boss@demo.test", "boss-pass")
    verify(client, last_code(site))
    _reauth(site, client, "boss-pass")
    page = client.get("/otp/settings")
    assert "Turn off two-step verification" not in page.text
    refused = client.post("/otp/settings/disable", data={"csrf_token": csrf_of(client, "/otp/settings")},
                          follow_redirects=True)
    assert "cannot be switched off" in refused.text
    assert site.otp.status(member).enrolled


def test_json_endpoints(site: DemoSite, client: Any) -> None:
    status = client.get("/otp/api/status").get_json()
    assert status["signed_in"] is False and status["csrf_token"]
    sign_in(client, *EDITOR)
    status = client.get("/otp/api/status").get_json()
    assert status["verification_needed"] is True and status["verified"] is False
    assert status["recipient_hint"] == "e***@demo.test"
    headers = {"X-CSRF-Token": status["csrf_token"]}
    bad = client.post("/otp/api/verify", data="not json", headers={**headers, "Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.get_json()["message"] == "The body is not valid JSON: send a JSON object."
    wrong_type = client.post("/otp/api/verify", json={"code": 123456}, headers=headers)
    assert wrong_type.status_code == 400
    sent = client.post("/otp/api/send", json={}, headers=headers)
    assert sent.status_code == 200 and sent.get_json()["recipient_hint"] == "e***@demo.test"
    unknown_channel = client.post("/otp/api/send", json={"channel": "carrier-pigeon"}, headers=headers)
    assert unknown_channel.status_code == 400 and unknown_channel.get_json()["error"] == "channel"
    code = last_code(site)
    wrong = client.post("/otp/api/verify", json={"code": "000000" if code != "000000" else "111111"},
                        headers=headers).get_json()
    assert wrong == {"ok": False, "error": "invalid", "attempts_remaining": 4,
                     "message": "That code is not correct. 4 attempts left before a lockout."}
    ok = client.post("/otp/api/verify", json={"code": code}, headers=headers)
    assert ok.get_json() == {"ok": True, "message": "Verified.", "location": "/protected"}
    status = client.get("/otp/api/status").get_json()
    assert status["verified"] is True and status["verification_needed"] is False


def test_gate_answers_json_with_401(site: DemoSite, client: Any) -> None:
    sign_in(client, *EDITOR)
    response = client.get("/protected", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "verification_required"


def test_security_headers(site: DemoSite, client: Any) -> None:
    sign_in(client, *EDITOR)
    page = client.get("/otp/verify")
    for name, value in SECURITY_HEADERS:
        assert page.headers[name] == value
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize(("value", "expected"), [
    ("/a?b=1", "/a?b=1"), ("//evil.example", "/"), ("https://evil.example/", "/"), ("/\\evil", "/"),
    ("javascript:alert(1)", "/"), ("", "/"), (None, "/"), ("/ok\nLocation: x", "/"),
])
def test_safe_next(value: Any, expected: str) -> None:
    assert safe_next(value) == expected


def test_open_redirect_refused(site: DemoSite, client: Any) -> None:
    sign_in(client, *EDITOR, next_url="https://evil.example/")
    done = verify(client, last_code(site))
    assert done.headers["Location"] == "/protected"


def test_extension_on_a_plain_flask_app(tmp_path: Path) -> None:
    """The extension with Flask's own cookie sessions and an integrator's password check."""
    otp = OtpPro({"secret_key": "k" * 40, "database_url": f"sqlite:///{tmp_path / 'plain.sqlite3'}",
                  "channels": ["outbox:code", "totp"], "default_channel": "outbox:code",
                  "resend_cooldown_seconds": 0}, entry_points=False)
    ann = Member(id="ann", email="ann@example.com", roles=["staff"])
    otp.begin_setup(ann, "outbox:code")
    otp.complete_setup(ann, re.search(r"\b(\d{6})\b", otp.transports["outbox"].last().text).group(1))  # type: ignore
    app = Flask(__name__)
    app.secret_key = "test-secret"
    ext = OtpProFlask(app, otp, load_member=lambda mid: ann if mid == "ann" else None,
                      check_password=lambda member, password: password == "pw", home_url="/private")

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "POST" and request.form.get("password") == "pw":
            return redirect(ext.login(ann, next=request.form.get("next")), 303)
        return f'<meta name="csrf-token" content="{ext.csrf_token()}">'

    @app.get("/private")
    def private() -> str:
        return "private page"

    client = app.test_client()
    token = re.search(r'content="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]
    assert client.post("/login", data={"password": "pw", "csrf_token": token}).headers["Location"] == "/otp/verify"
    assert client.get("/private").status_code == 303
    code = re.search(r"\b(\d{6})\b", otp.transports["outbox"].last().text).group(1)  # type: ignore[union-attr]
    token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/otp/verify").text).group(1)  # type: ignore
    assert client.post("/otp/verify", data={"code": code, "csrf_token": token}).headers["Location"] == "/private"
    assert client.get("/private").text == "private page"
    otp.close()
