"""The adapter over HTTP: a FastAPI site served by uvicorn on loopback, driven by httpx.

Gate, 401 JSON, CSRF, email-code and TOTP sign-in (mail through a real SMTP server on loopback), the
settings page, the JSON API, the guards, and malformed requests (always a 4xx, never a 5xx).
"""

from __future__ import annotations

import httpx
import pytest
from conftest import ANN, NEW, TOM, Site, page_token, sign_in, verify

from otp_pro.testing import mailed_code
from otp_pro_starlette import SECURITY_HEADERS


def test_signed_out_visitors_pass_and_the_pages_are_mounted(site: Site) -> None:
    with site.client() as client:
        assert client.get("/").text == "<h1>Home</h1>"
        assert client.get("/protected").status_code == 200  # the site's own login decides for these
        css = client.get("/otp/static/otp_pro.css")
        assert css.status_code == 200 and "text/css" in css.headers["content-type"]
        assert client.get("/otp/api/status").json()["signed_in"] is False


def test_email_code_sign_in(site: Site) -> None:
    with site.client() as client:
        response = sign_in(client, ANN, next_url="/protected")
        assert response.status_code == 303 and response.headers["location"] == "/otp/verify"
        gated = client.get("/protected")
        assert gated.status_code == 303 and gated.headers["location"].startswith("/otp/verify?next=%2Fprotected")
        page = client.get("/otp/verify")
        assert page.status_code == 200 and "a***@example.com" in page.text
        for name, value in SECURITY_HEADERS:
            assert page.headers[name] == value
        done = verify(client, mailed_code(site.mailbox, ANN.email or ""))
        assert done.status_code == 303 and done.headers["location"] == "/protected"
        assert client.get("/protected").text == "<p>protected page of Ann</p>"


def test_a_wrong_code_gets_a_message_not_an_error(site: Site) -> None:
    with site.client() as client:
        sign_in(client, ANN)
        good = mailed_code(site.mailbox, ANN.email or "")
        wrong = verify(client, "000000" if good != "000000" else "111111")
        assert wrong.status_code == 200 and "That code is not correct." in wrong.text
        assert verify(client, "12ab!!").status_code == 400
        assert verify(client, good).status_code == 303


def test_totp_sign_in(site: Site) -> None:
    with site.client() as client:
        response = sign_in(client, TOM)
        assert response.status_code == 303 and response.headers["location"] == "/otp/verify"
        assert not site.mailbox.to(TOM.email or "")  # nothing is sent for an authenticator app
        done = verify(client, site.totp_now())
        assert done.status_code == 303 and done.headers["location"] == "/"
        assert client.get("/protected").status_code == 200


def test_a_member_without_a_second_step_is_sent_to_setup(site: Site) -> None:
    with site.client() as client:
        assert sign_in(client, NEW).headers["location"] == "/otp/setup"
        gated = client.get("/protected")
        assert gated.status_code == 303 and gated.headers["location"].startswith("/otp/setup")
        assert client.get("/otp/setup").status_code == 200


def test_json_requests_get_401_with_the_gate_body(site: Site) -> None:
    with site.client() as client:
        sign_in(client, ANN)
        answer = client.get("/protected", headers={"Accept": "application/json"})
        assert answer.status_code == 401
        assert answer.json() == {"error": "verification_required", "location": "/otp/verify?next=%2Fprotected"}
        ajax = client.get("/protected", headers={"X-Requested-With": "XMLHttpRequest"})
        assert ajax.status_code == 401 and ajax.json()["error"] == "verification_required"
    with site.client() as client:
        sign_in(client, NEW)
        setup = client.get("/billing", headers={"Accept": "application/json"})
        assert setup.status_code == 401 and setup.json()["error"] == "setup_required"


def test_csrf_is_refused_on_the_flow_and_on_the_site(site: Site) -> None:
    with site.client() as client:
        sign_in(client, ANN)
        forged = client.post("/otp/verify", data={"code": "123456"})
        assert forged.status_code == 400 and "This form has expired" in forged.text
        wrong = client.post("/otp/verify", data={"code": "123456", "csrf_token": "x" * 43})
        assert wrong.status_code == 400
        api = client.post("/otp/api/verify", json={"code": "123456"})
        assert api.status_code == 400 and api.json()["error"] == "csrf"
        # The site's own POSTs carry the token too (csrf_app_wide): a form field or the header.
        assert client.post("/api/notes", json={"text": "hi"}).status_code == 400
        assert client.post("/logout").status_code == 400
        token = page_token(client.get("/otp/verify").text)
        assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    with site.client() as client:
        token = page_token(client.get("/login").text)
        assert client.post("/api/notes", json={"text": "hi"}, headers={"X-CSRF-Token": token}).json() == {
            "saved": 13}


def test_the_json_api_signs_in(site: Site) -> None:
    with site.client() as client:
        sign_in(client, ANN)
        status = client.get("/otp/api/status").json()
        assert status["signed_in"] and not status["verified"]
        headers = {"X-CSRF-Token": status["csrf_token"]}
        assert client.post("/otp/api/send", json={}, headers=headers).json()["ok"] is True
        done = client.post("/otp/api/verify", json={"code": mailed_code(site.mailbox, ANN.email or "")},
                           headers=headers)
        assert done.status_code == 200 and done.json()["ok"] is True
        assert client.get("/otp/api/status").json()["verified"] is True


@pytest.mark.parametrize("body", [b"{", b"[1, 2]", b"\xff\xfe", b'{"code": 12}', b'{"a":' * 5000, b"NaN",
                                  b"x" * 20000])
def test_malformed_json_gets_a_4xx_never_a_5xx(site: Site, body: bytes) -> None:
    with site.client() as client:
        sign_in(client, ANN)
        headers = {"X-CSRF-Token": client.get("/otp/api/status").json()["csrf_token"],
                   "Content-Type": "application/json"}
        answer = client.post("/otp/api/verify", content=body, headers=headers)
        assert answer.status_code in (400, 413), answer.text
        assert answer.json()["ok"] is False


def test_malformed_forms_and_paths_get_a_4xx(site: Site) -> None:
    with site.client() as client:
        sign_in(client, ANN)
        big = client.post("/otp/verify", content=b"code=" + b"1" * 70000,
                          headers={"Content-Type": "application/x-www-form-urlencoded", "Accept-Language": "de"})
        assert big.status_code == 413 and "Dieses Formular ist zu groß." in big.text
        mangled = client.post("/otp/verify", content=b"%%%&&&==\xff",
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert mangled.status_code == 400
        multipart = client.post("/otp/verify", files={"code": ("a", b"1")})
        assert multipart.status_code == 400
        token = page_token(client.get("/otp/verify").text)
        odd = client.post("/otp/settings/devices/%C2%B2/revoke", data={"csrf_token": token})
        assert odd.status_code < 500
        assert client.post("/otp/settings/factors/%FF/remove", data={"csrf_token": token}).status_code < 500
        assert client.get("/otp/verify?next=%FF%FE&x=%00").status_code == 200
        assert client.get("/otp/nothing-here").status_code == 303  # gated like any path: no page leaks


def test_settings_page(site: Site) -> None:
    with site.client() as client:
        sign_in(client, ANN)
        assert client.get("/otp/settings").status_code in (200, 303)
        verify(client, mailed_code(site.mailbox, ANN.email or ""))
        page = client.get("/otp/settings")
        assert page.status_code == 200
        assert "Email" in page.text and "backup codes" in page.text.lower()
        # A change needs the password and a fresh code (reauth) first.
        token = page_token(page.text)
        refused = client.post("/otp/settings/backup-codes", data={"csrf_token": token})
        assert refused.status_code in (303, 400, 403)
        client.post("/otp/send", data={"csrf_token": token})
        reauth = client.post("/otp/settings/reauth", data={
            "csrf_token": token, "password": "correct horse", "code": mailed_code(site.mailbox, ANN.email or "")})
        assert reauth.status_code == 303, reauth.text
        codes = client.post("/otp/settings/backup-codes", data={"csrf_token": token})
        assert codes.status_code == 200 and "backup" in codes.text.lower()


def test_require_verified_dependency(site: Site) -> None:
    with site.client() as client:
        signed_out = client.get("/billing")
        assert signed_out.status_code == 303 and signed_out.headers["location"] == "/login?next=%2Fbilling"
        sign_in(client, ANN)
        # /billing is gated by the middleware already; the dependency answers the same way.
        assert client.get("/billing").headers["location"].startswith("/otp/verify?next=%2Fbilling")
        verify(client, mailed_code(site.mailbox, ANN.email or ""))
        assert client.get("/billing").json() == {"member": ANN.id}


def test_step_up_dependency(site: Site) -> None:
    with site.client() as client:
        assert client.get("/account/delete").headers["location"].startswith("/login?next=")
        sign_in(client, ANN)
        verify(client, mailed_code(site.mailbox, ANN.email or ""))
        assert client.get("/account/delete").json() == {"deleted": True}  # verified a moment ago
        site.clock.advance(301)
        ajax = client.get("/account/delete", headers={"Accept": "application/json"})
        assert ajax.status_code == 401 and ajax.json() == {"error": "verification_required",
                                                            "location": "/otp/verify"}
        away = client.get("/account/delete?confirm=1")
        assert away.status_code == 303 and away.headers["location"] == "/otp/verify"
        page = client.get("/otp/verify")
        assert page.status_code == 200 and 'name="code"' in page.text
        site.mailbox.clear()
        client.post("/otp/send", data={"csrf_token": page_token(page.text)})
        back = verify(client, mailed_code(site.mailbox, ANN.email or ""))
        assert back.status_code == 303 and back.headers["location"] == "/account/delete?confirm=1"
        assert client.get("/account/delete").json() == {"deleted": True}


def test_logout_ends_the_login(site: Site) -> None:
    with site.client() as client:
        sign_in(client, TOM)
        verify(client, site.totp_now())
        token = page_token(client.get("/otp/settings").text)
        assert client.post("/logout", data={"csrf_token": token}).status_code == 303
        assert client.get("/otp/api/status").json()["signed_in"] is False


def test_server_side_sessions_retire_old_ids(make_site: object, tmp_path: object) -> None:
    site: Site = make_site(session_store=f"{tmp_path}/sessions.sqlite3")  # type: ignore[operator]
    with site.client() as client:
        token = page_token(client.get("/login").text)
        before = client.cookies["session"]
        client.post("/login", data={"email": ANN.email, "password": "correct horse", "csrf_token": token})
        signed_in = client.cookies["session"]
        assert signed_in != before and len(signed_in) == 43  # the login rotated the id; the cookie is only an id
        verify(client, mailed_code(site.mailbox, ANN.email or ""))
        verified = client.cookies["session"]
        assert verified != signed_in
        assert client.get("/protected").status_code == 200
        with httpx.Client(base_url=site.base, cookies={"session": signed_in}) as thief:
            # The pre-verification id is dead: no session, so nothing to gate (and no member).
            assert thief.get("/otp/api/status").json()["signed_in"] is False
        with httpx.Client(base_url=site.base, cookies={"session": verified}) as copy:
            assert copy.get("/otp/api/status").json()["verified"] is True
            token = page_token(client.get("/otp/settings").text)
            assert client.post("/logout", data={"csrf_token": token}).status_code == 303
            assert copy.get("/otp/api/status").json()["signed_in"] is False  # logout ended it everywhere


def test_a_trusted_device_skips_the_sign_in_step_but_not_a_step_up(site: Site) -> None:
    with site.client() as client:
        sign_in(client, ANN)
        done = verify(client, mailed_code(site.mailbox, ANN.email or ""), trust="1")
        assert done.status_code == 303
        cookie = next(c for c in done.headers.get_list("set-cookie") if c.startswith("otp_pro_device="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=" in cookie  # plain http: no Secure
        token = client.get("/otp/api/status").json()["csrf_token"]
        client.post("/logout", data={"csrf_token": token})
        site.clock.advance(60)
        site.mailbox.clear()
        again = sign_in(client, ANN, next_url="/protected")
        assert again.status_code == 303 and again.headers["location"] == "/protected"  # no code asked for
        assert not site.mailbox.to(ANN.email or "")
        away = client.get("/account/delete")
        assert away.status_code == 303 and away.headers["location"] == "/otp/verify"  # step-up: a fresh code


def test_a_spanish_browser_gets_the_verify_page_and_its_refusal_in_spanish(site: Site) -> None:
    with site.client() as client:
        sign_in(client, ANN, next_url="/protected")
        client.headers["Accept-Language"] = "es-ES,es;q=0.9"
        page = client.get("/otp/verify")
        assert '<html lang="es">' in page.text and "Verifica que eres tú" in page.text
        good = mailed_code(site.mailbox, ANN.email or "")
        refused = verify(client, "000000" if good != "000000" else "111111")
        assert "Ese código no es correcto." in refused.text
