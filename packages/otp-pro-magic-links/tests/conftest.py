"""Fixtures: a real SMTP server and a real HTTP server on 127.0.0.1, a movable clock, SQLite and PostgreSQL.

Copied (trimmed) from the core's tests/conftest.py: this package's tests run in
an environment holding only the core and this package, without the core's tests.
``backend`` runs a test once per database; PostgreSQL needs OTP_PRO_TEST_POSTGRES_URL.
"""

from __future__ import annotations

import email
import email.policy
import http.client
import os
import re
import secrets
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from otp_pro import Member, OtpPro
from otp_pro.storage import migrate
from otp_pro.storage.schema import metadata

PG_ENV = "OTP_PRO_TEST_POSTGRES_URL"
SECRET_KEY = "test-secret-key-" + "x" * 32
LINK = re.compile(r"https?://\S+")


class Clock:
    """A clock tests can move."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2026, 11, 23, 12, 0, 10, tzinfo=timezone.utc)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float = 0, **kw: float) -> datetime:
        with self._lock:
            self.now = self.now + timedelta(seconds=seconds, **kw)
            return self.now


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mailbox:
    """Messages received by the loopback SMTP server, parsed with the stdlib email package."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.messages.append(
                email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
            )
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if address in str(m["To"])]

    def last_text(self, address: str) -> str:
        messages = self.to(address)
        assert messages, f"no mail to {address}"
        body = messages[-1].get_body(("plain",))
        assert body is not None
        return str(body.get_content())

    def last_link(self, address: str) -> str:
        match = LINK.search(self.last_text(address))
        assert match, "no link in the mail"
        return match.group(0)

    def last_code(self, address: str) -> str:
        match = re.search(r"\b(\d{6,10})\b", self.last_text(address))
        assert match, "no code in the mail"
        return match.group(1)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[str, int, Mailbox]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 for the whole run."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.hostname, controller.port, mailbox
    finally:
        controller.stop()


@pytest.fixture
def mailbox(smtp_server: tuple[str, int, Mailbox]) -> Mailbox:
    smtp_server[2].clear()
    return smtp_server[2]


@pytest.fixture
def clock() -> Clock:
    return Clock()


# ------------------------------------------------------------------ HTTP


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 64


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request line holds the token on GET; keep it out of the test output


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: str


class WebServer:
    """A threaded wsgiref server on 127.0.0.1 (bound before the app exists, so base_url can name its port)."""

    def __init__(self) -> None:
        self.server = _ThreadingWSGIServer(("127.0.0.1", 0), _QuietHandler)
        self.server.set_app(self._not_mounted)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def _not_mounted(environ: Any, start_response: Any) -> list[bytes]:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
        return [b"no app mounted"]

    def mount(self, app: Callable[..., Any]) -> None:
        self.server.set_app(app)

    def request(self, method: str, url: str, body: Mapping[str, str] | bytes | None = None,
                headers: Mapping[str, str] | None = None) -> Reply:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        all_headers = dict(headers or {})
        data: bytes | None = None
        if isinstance(body, Mapping):
            from urllib.parse import urlencode

            data = urlencode(body).encode()
            all_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif body is not None:
            data = body
        conn = http.client.HTTPConnection("127.0.0.1", self.server.server_port, timeout=30)
        try:
            conn.request(method, target, body=data, headers=all_headers)
            response = conn.getresponse()
            return Reply(response.status, response.headers, response.read().decode("utf-8", "replace"))
        finally:
            conn.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def web() -> Iterator[WebServer]:
    server = WebServer()
    try:
        yield server
    finally:
        server.close()


# -------------------------------------------------------------- databases


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str | None]:
    base = os.environ.get(PG_ENV)
    if not base:
        yield None
        return
    with temporary_pg_database(base, "otp_pro_magic_test") as url:
        engine = create_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


@contextmanager
def temporary_pg_database(base_url: str, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database next to ``base_url``'s, dropped afterwards; yields its URL."""
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
            ), {"n": name})
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def _truncate(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        names = ", ".join(t.name for t in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Any, pg_url: str | None) -> str:
    """A database URL: a fresh SQLite file, or the run's PostgreSQL database emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/otp.sqlite3"
    if pg_url is None:
        pytest.skip(f"PostgreSQL tests skipped: set {PG_ENV} (CI sets it) to run them")
    _truncate(pg_url)
    return pg_url


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path}/otp.sqlite3"


# ------------------------------------------------------------------ OtpPro


def base_settings(database_url: str, smtp: tuple[str, int], base_url: str | None, **overrides: Any) -> dict[str, Any]:
    magic: dict[str, Any] = {"base_url": base_url} if base_url else {}
    magic.update(overrides.pop("magic_links", {}))
    settings: dict[str, Any] = {
        "secret_key": SECRET_KEY,
        "database_url": database_url,
        "site_name": "Example",
        "support_email": "help@example.com",
        "channels": ["email:code", "email:magic_link", "outbox:magic_link", "totp"],
        "default_channel": "email:code",
        "resend_cooldown_seconds": 0,
        "providers": {
            "email": {"smtp_host": smtp[0], "smtp_port": smtp[1], "from_address": "otp@example.com"},
            "magic_links": magic,
        },
    }
    settings.update(overrides)
    return settings


@pytest.fixture
def make_otp(backend: str, clock: Clock, smtp_server: tuple[str, int, Mailbox],
             web: WebServer) -> Iterator[Callable[..., OtpPro]]:
    """``make_otp(max_attempts=3, magic_links={"same_browser": True})``; base_url is the test's web server."""
    made: list[OtpPro] = []

    def factory(*, base_url: str | None = "server", plugins: Any = (), **overrides: Any) -> OtpPro:
        url = web.url if base_url == "server" else base_url
        otp = OtpPro(base_settings(backend, smtp_server[:2], url, **overrides), plugins=plugins, clock=clock)
        made.append(otp)
        return otp

    yield factory
    for otp in made:
        otp.close()


@pytest.fixture
def member() -> Member:
    return Member(id="42", roles=["editor"], email="ann@example.com", name="Ann")


def enroll(otp: OtpPro, member: Member, mailbox: Mailbox) -> None:
    """Set up ``email:code`` for ``member`` through the real SMTP server."""
    otp.begin_setup(member, "email:code")
    otp.complete_setup(member, mailbox.last_code(member.email or ""))
    mailbox.clear()
