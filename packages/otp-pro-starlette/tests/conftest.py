"""Fixtures: an otp-pro site on SQLite whose email goes to a real SMTP server on loopback, built as a FastAPI
app (site_app.py) and served by uvicorn; members enrolled by email code or TOTP; httpx clients."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from site_app import build_app, serve

from otp_pro import Member, OtpPro
from otp_pro.testing import Clock, Mailbox, mailed_code

ANN = Member("1", roles=["staff"], email="ann@example.com", name="Ann")  # email code
TOM = Member("2", roles=["staff"], email="tom@example.com", name="Tom")  # TOTP
NEW = Member("3", roles=["staff"], email="new@example.com", name="New")  # no second step yet
MEMBERS = {m.id: m for m in (ANN, TOM, NEW)}


def site_settings(tmp_path: Path, smtp: tuple[str, int, Mailbox], **overrides: Any) -> dict[str, Any]:
    host, port, _ = smtp
    settings: dict[str, Any] = {
        "secret_key": "starlette-test-secret-" + "k" * 32,
        "database_url": f"sqlite:///{tmp_path}/otp.sqlite3",
        "site_name": "Example",
        "mode": "required",
        "channels": ["email:code", "totp"],
        "default_channel": "email:code",
        "resend_cooldown_seconds": 0,
        "providers": {"email": {"smtp_host": host, "smtp_port": port, "from_address": "otp@example.com"}},
    }
    settings.update(overrides)
    return settings


class Site:
    """The served test site: ``base``, its ``otp``, the ``mailbox`` and Tom's TOTP secret."""

    def __init__(self, base: str, otp: OtpPro, mailbox: Mailbox, totp_secret: str, clock: Clock) -> None:
        self.base = base
        self.otp = otp
        self.mailbox = mailbox
        self.totp = pyotp.TOTP(totp_secret)
        self.clock = clock

    def totp_now(self) -> str:
        """Tom's current TOTP code (the clock moves on a step first: each step is accepted once)."""
        self.clock.advance(30)
        return self.totp.at(self.clock())

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, follow_redirects=False, timeout=20)


def enrol_members(otp: OtpPro, mailbox: Mailbox, clock: Clock) -> str:
    """Ann sets up email codes, Tom an authenticator app; answers Tom's TOTP secret."""
    otp.begin_setup(ANN, "email:code")
    otp.complete_setup(ANN, mailed_code(mailbox, ANN.email or ""))
    info = otp.begin_setup(TOM, "totp")
    assert info.secret is not None
    otp.complete_setup(TOM, pyotp.TOTP(info.secret).at(clock()))
    mailbox.clear()
    return info.secret


@pytest.fixture(scope="session")
def enrolled_database(tmp_path_factory: pytest.TempPathFactory,
                      smtp_server: tuple[str, int, Mailbox]) -> Iterator[tuple[Path, str]]:
    """A database where Ann and Tom are enrolled, made once: ``(folder, Tom's TOTP secret)``.

    Each test starts from a copy (a setup issues ten backup codes, each hashed with scrypt: seconds per
    member). The copy is used at the same instant of the test's ``clock`` as it was made at.
    """
    folder = tmp_path_factory.mktemp("enrolled")
    made_at = Clock()
    otp = OtpPro(site_settings(folder, smtp_server), clock=made_at)
    try:
        secret = enrol_members(otp, smtp_server[2], made_at)
    finally:
        otp.close()
    yield folder, secret


@pytest.fixture
def make_otp(tmp_path: Path, smtp_server: tuple[str, int, Mailbox], enrolled_database: tuple[Path, str],
             otp_factory: Callable[..., OtpPro]) -> Callable[..., OtpPro]:
    """``make_otp(smtp=None, **settings)``: an OtpPro on a copy of the enrolled database, on the test's clock;
    its email goes to ``smtp`` (default: the loopback server of the run)."""

    def factory(*, smtp: tuple[str, int, Mailbox] | None = None, **overrides: Any) -> OtpPro:
        folder, _ = enrolled_database
        for name in ("otp.sqlite3", "otp.sqlite3-wal", "otp.sqlite3-shm"):
            if (folder / name).exists() and not (tmp_path / name).exists():
                shutil.copy(folder / name, tmp_path / name)
        return otp_factory(site_settings(tmp_path, smtp or smtp_server, **overrides))

    return factory


@pytest.fixture
def make_site(make_otp: Callable[..., OtpPro], enrolled_database: tuple[Path, str], mailbox: Mailbox,
              clock: Clock) -> Iterator[Callable[..., Site]]:
    """``make_site(session_store=None, smtp=None, operator=None, **settings)``: the test site served by uvicorn."""
    with ExitStack() as servers:

        def factory(*, session_store: str | None = None, smtp: tuple[str, int, Mailbox] | None = None,
                    operator: Callable[[Member], bool] | None = None, **overrides: Any) -> Site:
            otp = make_otp(smtp=smtp, **overrides)
            served = servers.enter_context(serve(build_app(otp, MEMBERS, session_store=session_store,
                                                           operator=operator)))
            return Site(served.base, otp, smtp[2] if smtp else mailbox, enrolled_database[1], clock)

        yield factory


@pytest.fixture
def site(make_site: Callable[..., Site]) -> Site:
    return make_site()


def page_token(text: str) -> str:
    """The CSRF token of a page: the flow's ``<meta name="csrf-token">`` or a form's hidden field."""
    found = re.search(r'name="csrf-token" content="([^"]+)"', text) or \
        re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert found, text[:300]
    return found.group(1)


def sign_in(client: httpx.Client, member: Member, *, next_url: str = "") -> httpx.Response:
    """The site's password step (the login form's CSRF token included)."""
    token = page_token(client.get("/login").text)
    return client.post("/login", data={"email": member.email or "", "password": "correct horse",
                                       "csrf_token": token, "next": next_url})


def verify(client: httpx.Client, code: str, **extra: str) -> httpx.Response:
    """Post ``code`` on the verify page."""
    token = page_token(client.get("/otp/verify").text)
    return client.post("/otp/verify", data={"code": code, "csrf_token": token, **extra})
