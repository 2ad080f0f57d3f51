"""Passkeys in Chromium on a FastAPI site (otp-pro-starlette) served by uvicorn: the DevTools virtual
authenticator registers one at forced setup, answers the verify page, and signs the member in from the
site's own login page without a password ("Sign in with a passkey", :meth:`OtpProStarlette.first_factor_html`),
the site's ``on_first_factor`` hand-off called with the member."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from passkeys import (
    credentials,
    refused_without_the_credential,
    register_passkey,
    relying_party,
    sign_in_with_passkey,
    with_authenticator,
)
from starlette.middleware.sessions import SessionMiddleware
from test_browser import visible

from otp_pro import Member, OtpPro
from otp_pro.testing import free_port
from otp_pro_starlette import OtpProStarlette

pytest_plugins = ("test_browser",)

PIA = Member("1", roles=["staff"], email="pia@example.test", name="Pia Passkey")
PASSWORD = "pia-password"


class Site:
    def __init__(self, base: str, otp: OtpPro, handed: list[str]) -> None:
        self.base, self.otp, self.handed = base, otp, handed


def build_app(otp: OtpPro, handed: list[str]) -> FastAPI:
    """The site's own login (email + password), a protected page, and otp-pro with the passkey hand-off."""
    app = FastAPI()
    web = OtpProStarlette(otp, load_member={PIA.id: PIA}.get, check_password=lambda _m, p: p == PASSWORD,
                          home_url="/protected", secure_cookies=False,
                          on_first_factor=lambda member: handed.append(member.id))
    web.install(app)
    app.add_middleware(SessionMiddleware, secret_key="starlette-passkeys-" + "s" * 32)

    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request) -> str:
        wanted = request.query_params.get("next")
        return ("<!doctype html><html lang='en'><title>Sign in</title><main><h1>Sign in</h1>"
                f"<form method='post' action='/login'><input type='hidden' name='csrf_token' "
                f"value='{web.csrf_token(request)}'><label>Email <input name='email'></label>"
                "<label>Password <input name='password' type='password'></label>"
                "<button type='submit'>Sign in</button></form>"
                f"{await web.first_factor_html(request, next=wanted)}</main></html>")

    @app.post("/login")
    async def login(request: Request) -> Any:
        form = dict(parse_qsl((await request.body()).decode()))
        if form.get("email") != PIA.email or form.get("password") != PASSWORD:
            return HTMLResponse("<p>Wrong email or password</p>", status_code=401)
        return RedirectResponse(await web.login(request, PIA), 303)

    @app.post("/logout")
    async def logout(request: Request) -> Any:
        await web.logout(request)
        return RedirectResponse("/login", 303)

    @app.get("/protected", response_class=HTMLResponse)
    async def protected(request: Request) -> str:
        member = await web.current_member(request)
        return (f"<!doctype html><html lang='en'><title>Protected</title><main><h1 id='protected-title'>"
                f"Protected page of {html.escape(member.name or '' if member else 'nobody')}</h1>"
                f"<form method='post' action='/logout'><input type='hidden' name='csrf_token' "
                f"value='{web.csrf_token(request)}'><button type='submit'>Sign out</button></form></main></html>")

    return app


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The site on a free port, opened at ``http://localhost:<port>`` (see :mod:`passkeys`)."""
    import threading
    import time

    port = free_port()
    base = f"http://localhost:{port}"
    folder: Path = tmp_path_factory.mktemp("starlette-passkeys")
    otp = OtpPro({
        "secret_key": "starlette-passkeys-secret-" + "k" * 32, "database_url": f"sqlite:///{folder}/otp.sqlite3",
        "site_name": "Passkey site", "mode": "required", "channels": ["webauthn"],
        "roles": {"staff": {"requirement": "required", "channels": ["webauthn"], "grace_days": 0}},
        "providers": {"webauthn": relying_party(base)},
    })
    handed: list[str] = []
    server = uvicorn.Server(uvicorn.Config(build_app(otp, handed), host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, name="uvicorn-passkeys", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield Site(base, otp, handed)
    finally:
        server.should_exit = True
        thread.join(10)
        otp.close()


def password_step(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(PIA.email or "")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def sign_out(page: Any, base: str) -> None:
    page.goto(f"{base}/protected")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/login")


def test_a_passkey_registered_at_setup_verifies_then_signs_in_without_a_password(
        site: Site, context: Any, shots: Any) -> None:
    base = site.base
    page, cdp, authenticator = with_authenticator(context)
    password_step(page, base)
    page.wait_for_url(re.compile(re.escape(f"{base}/otp/setup")))
    register_passkey(page, "This laptop")
    page.get_by_role("link", name="I saved them, continue").click()
    page.wait_for_url(f"{base}/protected")
    [factor] = site.otp.factors(PIA)
    assert (factor.kind, factor.label) == ("webauthn", "This laptop")

    # The second step with the passkey.
    sign_out(page, base)
    password_step(page, base)
    page.wait_for_url(re.compile(re.escape(f"{base}/otp/verify")))
    page.get_by_role("button", name="Use your passkey or security key").click()
    page.wait_for_url(f"{base}/protected")
    assert site.handed == []

    # No password: the site's login page carries the button, the flow signs Pia in and hands her over.
    sign_out(page, base)
    shots(page, "starlette-login")
    sign_in_with_passkey(page, f"{base}/login", f"{base}/protected")
    assert page.locator("#protected-title").inner_text() == "Protected page of Pia Passkey"
    assert site.handed == [PIA.id]
    assert any(e.details.get("first_factor") for e in site.otp.events(PIA, kinds=["verify_ok"]))
    assert credentials(cdp, authenticator)[0]["signCount"] >= 2

    # The gate agrees the second step was passed: the flow's own pages open without a detour.
    page.goto(f"{base}/otp/settings")
    visible(page.locator("tr[data-kind=webauthn]"))

    # Without the credential the authenticator has nothing for the site: refused in the browser, still out.
    sign_out(page, base)
    refused_without_the_credential(page, cdp, authenticator, f"{base}/login")
    assert site.handed == [PIA.id]
