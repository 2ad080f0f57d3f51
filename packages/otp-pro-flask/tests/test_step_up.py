"""``@otp_web.recently_verified(max_age=...)``: a site's sensitive view asks for a fresh second step and comes back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, redirect

from otp_pro import Member, OtpPro
from otp_pro.testing import Clock, enrol, outbox_code, page_csrf
from otp_pro_flask import OtpProFlask

ANN = Member("42", roles=["editor"], email="ann@example.com", name="Ann")


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Flask]:
    otp = OtpPro({"secret_key": "step-up-test-" + "k" * 32, "database_url": f"sqlite:///{tmp_path}/otp.sqlite3",
                  "channels": ["outbox:code", "totp"], "default_channel": "outbox:code",
                  "resend_cooldown_seconds": 0}, clock=clock, entry_points=False)
    enrol(otp, ANN)
    clock.advance(60)
    app = Flask(__name__)
    app.secret_key = "flask-test-secret-" + "s" * 32
    otp_web = OtpProFlask(app, otp, load_member={ANN.id: ANN}.get, check_password=lambda _m, _p: True,
                          secure_cookies=False)

    @app.get("/login")
    def login() -> Any:
        return redirect(otp_web.login(ANN, next="/home"), 303)

    @app.get("/home")
    def home() -> str:
        return "home page"

    @app.route("/account/delete", methods=["GET", "POST"])
    @otp_web.recently_verified(max_age=300)
    def delete_account() -> str:
        return "deleted"

    try:
        yield app
    finally:
        otp.close()


def _verify(client: Any, otp: OtpPro, **extra: str) -> Any:
    token = page_csrf(client.get("/otp/verify").text)
    return client.post("/otp/verify", data={"code": outbox_code(otp), "csrf_token": token, **extra})


def test_a_decorated_view_asks_for_a_fresh_code_and_comes_back(app: Flask, clock: Clock) -> None:
    otp = app.extensions["otp_pro"].core
    client = app.test_client()
    assert client.get("/account/delete").headers["Location"].startswith("/login?next=")  # signed out
    client.get("/login")
    assert _verify(client, otp).headers["Location"] == "/home"
    assert client.get("/account/delete").text == "deleted"  # verified a moment ago
    clock.advance(301)
    ajax = client.get("/account/delete", headers={"Accept": "application/json"})
    assert ajax.status_code == 401 and ajax.get_json() == {"error": "verification_required",
                                                            "location": "/otp/verify"}
    away = client.get("/account/delete?confirm=1")  # the latest asks where to come back to
    assert away.status_code == 303 and away.headers["Location"] == "/otp/verify"
    page = client.get("/otp/verify")
    assert page.status_code == 200 and 'name="code"' in page.text  # the form, though the login is verified
    client.post("/otp/send", data={"csrf_token": page_csrf(page.text)})
    back = _verify(client, otp)
    assert back.status_code == 303 and back.headers["Location"] == "/account/delete?confirm=1"
    assert client.get("/account/delete").text == "deleted"


def test_a_trusted_device_does_not_skip_a_step_up(app: Flask, clock: Clock) -> None:
    otp = app.extensions["otp_pro"].core
    client = app.test_client()
    client.get("/login")
    assert _verify(client, otp, trust="1").status_code == 303
    clock.advance(60)
    assert client.get("/login").headers["Location"] == "/home"  # the device skips the sign-in's code
    away = client.get("/account/delete")
    assert away.status_code == 303 and away.headers["Location"] == "/otp/verify"
