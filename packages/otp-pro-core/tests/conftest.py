"""Shared fixtures: an OtpPro on SQLite and, when OTP_PRO_TEST_POSTGRES_URL is set, on PostgreSQL.

``backend`` runs a test once per database. PostgreSQL tests use a database
created for this run (dropped at the end) and tables truncated between tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from otp_pro import Member, OtpPro

# Fixtures clock, smtp_server, mailbox and pg_url come from the otp_pro.testing pytest plugin.
from otp_pro.testing import (  # noqa: F401 - re-exported for the test modules
    PG_ENV,
    PG_SKIP_REASON,
    Clock,
    Mailbox,
    free_port,
    temporary_pg_database,
    truncate_all,
)

SECRET_KEY = "test-secret-key-" + "x" * 32


def base_settings(database_url: str, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "secret_key": SECRET_KEY,
        "database_url": database_url,
        "site_name": "Example",
        "support_email": "help@example.com",
        "channels": ["outbox:code", "totp", "email:code"],
        "default_channel": "outbox:code",
        # Tests that are not about throttling should not trip over it; those that are set it.
        "resend_cooldown_seconds": 0,
    }
    settings.update(overrides)
    return settings


@pytest.fixture
def make_otp(
    backend: str, otp_factory: Callable[..., OtpPro], smtp_server: tuple[str, int, Mailbox]
) -> Callable[..., OtpPro]:
    """Build OtpPro instances on the test's database: ``make_otp(max_attempts=3, plugins=[...])``.

    The ``email`` transport points at the loopback SMTP server; ``otp_factory`` closes them.
    """
    host, port, _mailbox = smtp_server

    def factory(*, plugins: Any = (), **overrides: Any) -> OtpPro:
        overrides.setdefault(
            "providers", {"email": {"smtp_host": host, "smtp_port": port, "from_address": "otp@example.com"}}
        )
        return otp_factory(base_settings(backend, **overrides), plugins=plugins)

    return factory


@pytest.fixture
def otp(make_otp: Callable[..., OtpPro]) -> OtpPro:
    return make_otp()


@pytest.fixture
def member() -> Member:
    return Member(id="42", roles=["editor"], email="ann@example.com", name="Ann", fields={"phone": "+447911123456"})


def last_code(otp: OtpPro, recipient: str | None = None) -> str:
    """The code in the newest outbox message."""
    message = otp.transports["outbox"].last(recipient)  # type: ignore[attr-defined]
    assert message is not None, "no message in the outbox"
    match = re.search(rf"\b(\d{{{otp.settings.code_length}}})\b", message.text)
    assert match, "no code in the message"
    return match.group(1)


def mailed_code(mailbox: Mailbox, to: str = "ann@example.com") -> str:
    """The code in the newest mail the loopback SMTP server took for ``to`` (its plain-text part)."""
    messages = mailbox.to(to)
    assert messages, f"no message to {to}"
    body = messages[-1].get_body(preferencelist=("plain",))
    assert body is not None
    match = re.search(r"\b(\d{6})\b", body.get_content())
    assert match, "no code in the mail"
    return match.group(1)


def enroll(otp: OtpPro, member: Member, channel: str = "outbox:code") -> list[str]:
    """Set up ``channel`` for ``member``; return the backup codes."""
    info = otp.begin_setup(member, channel)
    if channel == "totp":
        import pyotp

        assert info.secret is not None
        return otp.complete_setup(member, pyotp.TOTP(info.secret).at(otp.clock()))
    return otp.complete_setup(member, last_code(otp))


def bare_flask_client(otp: OtpPro, member: Member) -> Any:
    """A test client of a Flask app holding only the extension: ``GET /login`` signs ``member`` in
    (303 to the verify page when a second step is due) and ``/home`` is the page after it."""
    from flask import Flask, redirect

    from otp_pro.web.flask import OtpProFlask

    app = Flask(__name__)
    app.secret_key = "flask-test-secret-" + "s" * 32
    app.config["TESTING"] = True
    extension = OtpProFlask(app, otp, load_member={member.id: member}.get, check_password=lambda _m, _p: True,
                            secure_cookies=False)

    @app.get("/login")
    def login() -> Any:
        return redirect(extension.login(member, next="/home"), 303)

    @app.get("/home")
    def home() -> str:
        return "home page"

    return app.test_client()


def page_csrf(page: str) -> str:
    """The CSRF token in a page's ``<meta name="csrf-token">``."""
    found = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert found, page[:300]
    return found.group(1)
