"""docs/web-starlette.md: the FastAPI glue it shows is at most 10 lines, and it runs as it stands.

The block after ``<!-- glue -->`` is executed with the names a site supplies (``otp``, ``load_member``,
``check_password``, ``SESSION_SECRET``, ``password_step``), served by uvicorn, and signed in through:
gate, email code, step-up, logout. The one change: the session cookie drops ``Secure`` (``https_only``),
because the test server speaks plain HTTP on loopback.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from conftest import ANN, MEMBERS, page_token
from site_app import PASSWORD, SESSION_SECRET, serve

from otp_pro import Member, OtpPro
from otp_pro.testing import Clock, Mailbox, mailed_code

DOC = Path(__file__).resolve().parents[3] / "docs" / "web-starlette.md"
#: A line of the glue: one that names otp-pro or the session middleware it needs.
GLUE = re.compile(r"otp_web|otp_pro_starlette|SessionMiddleware|recently_verified|require_verified")


def glue_block() -> str:
    text = DOC.read_text(encoding="utf-8")
    found = re.search(r"<!-- glue -->\n```python\n(.*?)```", text, re.S)
    assert found, "docs/web-starlette.md has no glue block"
    return found.group(1)


def test_the_glue_is_at_most_ten_lines() -> None:
    lines = [line for line in glue_block().splitlines() if GLUE.search(line)]
    assert 0 < len(lines) <= 10, lines


def test_the_glue_runs(make_otp: Callable[..., OtpPro], mailbox: Mailbox, clock: Clock) -> None:
    otp = make_otp()
    by_email = {m.email: m for m in MEMBERS.values()}

    async def password_step(request: Any) -> Member | None:
        form = dict(parse_qsl((await request.body()).decode()))
        member = by_email.get(form.get("email"))
        return member if member is not None and form.get("password") == PASSWORD else None

    namespace: dict[str, Any] = {"otp": otp, "load_member": MEMBERS.get, "SESSION_SECRET": SESSION_SECRET,
                                 "check_password": lambda _m, password: password == PASSWORD,
                                 "password_step": password_step}
    source = glue_block().replace("https_only=True", "https_only=False")
    exec(compile(source, str(DOC), "exec"), namespace)
    app = namespace["app"]
    app.get("/")(lambda: {"home": True})
    with serve(app) as served, httpx.Client(base_url=served.base) as client:
        token = client.get("/otp/api/status").json()["csrf_token"]
        signed_in = client.post("/login", data={"email": ANN.email, "password": PASSWORD, "csrf_token": token})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/otp/verify"
        assert client.get("/").headers["location"].startswith("/otp/verify")  # gated
        page = client.get("/otp/verify")
        done = client.post("/otp/verify", data={"code": mailed_code(mailbox, ANN.email or ""),
                                                "csrf_token": page_token(page.text)})
        assert done.status_code == 303 and client.get("/").json() == {"home": True}
        token = client.get("/otp/api/status").json()["csrf_token"]
        deleted = client.post("/account/delete", headers={"X-CSRF-Token": token})
        assert deleted.json() == {"deleted": True}  # verified a moment ago: no step-up yet
        clock.advance(301)
        assert client.post("/account/delete", headers={"X-CSRF-Token": token}).headers["location"] == "/otp/verify"
        assert client.post("/logout", data={"csrf_token": token}).status_code == 303
        assert client.get("/otp/api/status").json()["signed_in"] is False
