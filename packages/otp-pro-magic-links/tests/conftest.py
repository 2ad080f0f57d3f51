"""Fixtures: a real HTTP server on 127.0.0.1 serving the magic-link app, SQLite and PostgreSQL, OtpPro factories.

The clock, the loopback SMTP server (``smtp_server`` / ``mailbox``) and the
run's PostgreSQL database (``pg_url``) come from the core's ``otp_pro.testing``
pytest plugin. ``backend`` runs a test once per database; PostgreSQL needs
OTP_PRO_TEST_POSTGRES_URL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from magic_links_support import WebServer, base_settings

from otp_pro import Member, OtpPro
from otp_pro.testing import Mailbox


@pytest.fixture
def web() -> Iterator[WebServer]:
    """A web server on 127.0.0.1 for the test; a test mounts its app on it."""
    server = WebServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def make_otp(backend: str, otp_factory: Callable[..., OtpPro], smtp_server: tuple[str, int, Mailbox],
             web: WebServer) -> Callable[..., OtpPro]:
    """``make_otp(max_attempts=3, magic_links={"same_browser": True})``; base_url is the test's web server."""

    def factory(*, base_url: str | None = "server", plugins: Any = (), **overrides: Any) -> OtpPro:
        url = web.url if base_url == "server" else base_url
        return otp_factory(base_settings(backend, smtp_server[:2], url, **overrides), plugins=plugins)

    return factory


@pytest.fixture
def member() -> Member:
    return Member(id="42", roles=["editor"], email="ann@example.com", name="Ann")
