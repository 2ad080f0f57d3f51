"""The operator console in a real Flask app: mounted by ``OtpProFlask(operator=...)``, hidden from everyone
else, its actions CSRF-checked and audited with the operator as actor, its export streamed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, redirect

from otp_pro import Member, OtpPro, hookimpl
from otp_pro.testing import Clock, enrol, outbox_code, page_csrf
from otp_pro_flask import SECURITY_HEADERS, OtpProFlask

OPERATOR = Member("op-1", roles=["staff"], email="op@example.com", name="Olive Operator")
ANN = Member("42", roles=["editor"], email="ann@example.com", name="Ann")
PEOPLE = {m.id: m for m in (OPERATOR, ANN)}
PAGES = ("/otp/operator/members?q=42", "/otp/operator/member?id=42", "/otp/operator/member/reset?id=42",
         "/otp/operator/audit", "/otp/operator/audit/export?format=csv", "/otp/operator/statistics",
         "/otp/operator/providers")


class Lookup:
    @hookimpl
    def otp_pro_member_lookup(self, otp: OtpPro, member_id: str) -> Member | None:
        return PEOPLE.get(member_id)


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Flask]:
    otp = OtpPro({"secret_key": "operator-test-" + "k" * 32, "database_url": f"sqlite:///{tmp_path}/otp.sqlite3",
                  "channels": ["outbox:code", "totp"], "default_channel": "outbox:code",
                  "resend_cooldown_seconds": 0}, clock=clock, entry_points=False, plugins=[Lookup()])
    enrol(otp, OPERATOR)
    enrol(otp, ANN)
    clock.advance(60)
    app = Flask(__name__)
    app.secret_key = "flask-test-secret-" + "s" * 32
    otp_web = OtpProFlask(app, otp, load_member=PEOPLE.get, check_password=lambda _m, _p: True,
                          secure_cookies=False, operator=lambda m: "staff" in m.roles)

    @app.get("/login/<member_id>")
    def login(member_id: str) -> Any:
        return redirect(otp_web.login(PEOPLE[member_id], next="/home"), 303)

    @app.get("/home")
    def home() -> str:
        return "home page"

    try:
        yield app
    finally:
        otp.close()


def signed_in(app: Flask, who: Member) -> tuple[Any, str]:
    """A client signed in as ``who`` with the second step passed; its CSRF token."""
    otp = app.extensions["otp_pro"].core
    client = app.test_client()
    client.get(f"/login/{who.id}")
    token = page_csrf(client.get("/otp/verify").text)
    assert client.post("/otp/verify", data={"code": outbox_code(otp), "csrf_token": token}).status_code == 303
    return client, page_csrf(client.get("/otp/settings").text)


def test_anyone_but_an_operator_gets_404(app: Flask) -> None:
    client, token = signed_in(app, ANN)
    for path in PAGES:
        assert client.get(path).status_code == 404, path
    assert client.post("/otp/operator/member/reset", data={"member_id": "42", "csrf_token": token}).status_code == 404
    assert client.post("/otp/operator/member/reset", data={"member_id": "42"}).status_code == 404
    assert all(app.test_client().get(path).status_code == 404 for path in PAGES)
    assert not app.extensions["otp_pro"].core.events(ANN, kinds=["reset"])


def test_an_operator_resets_a_member_through_the_confirmation_page(app: Flask) -> None:
    otp = app.extensions["otp_pro"].core
    client, token = signed_in(app, OPERATOR)
    page = client.get("/otp/operator/member?id=42")
    assert page.status_code == 200 and "on (outbox:code)" in page.text and "editor" in page.text
    for name, value in SECURITY_HEADERS:
        assert page.headers[name] == value
    confirm = client.get("/otp/operator/member/reset?id=42")
    assert confirm.status_code == 200 and 'action="/otp/operator/member/reset"' in confirm.text
    assert client.post("/otp/operator/member/reset", data={"member_id": "42"}).status_code == 400
    assert otp.status(ANN).enrolled
    done = client.post("/otp/operator/member/reset", data={"member_id": "42", "csrf_token": token})
    assert done.status_code == 303 and done.headers["Location"] == "/otp/operator/member?id=42"
    [event] = otp.events(ANN, kinds=["reset"])
    assert event.actor == "console:op-1" and event.ip == "127.0.0.1"
    assert not otp.status(ANN).enrolled
    assert "console:op-1" in client.get("/otp/operator/audit?kind=reset").text


def test_the_export_is_a_streamed_attachment(app: Flask) -> None:
    client, _ = signed_in(app, OPERATOR)
    response = client.get("/otp/operator/audit/export?format=csv&member=42")
    assert response.status_code == 200 and response.is_streamed
    assert response.mimetype == "text/csv" and response.headers["Content-Disposition"].startswith("attachment;")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert rows and {r["member_id"] for r in rows} == {"42"} and "setup_completed" in {r["kind"] for r in rows}
    assert "Content-Security-Policy" in response.headers


def test_the_console_is_not_mounted_without_an_operator_check(tmp_path: Path, clock: Clock) -> None:
    otp = OtpPro({"secret_key": "operator-test-" + "k" * 32, "database_url": f"sqlite:///{tmp_path}/o.sqlite3",
                  "channels": ["outbox:code"]}, clock=clock, entry_points=False)
    try:
        app = Flask(__name__)
        app.secret_key = "x" * 40
        OtpProFlask(app, otp, load_member=PEOPLE.get, check_password=lambda _m, _p: True)
        assert not [r for r in app.url_map.iter_rules() if "/operator" in r.rule]
    finally:
        otp.close()
