"""Shared fixtures: an OtpPro on SQLite and, when OTP_PRO_TEST_POSTGRES_URL is set, on PostgreSQL.

``backend`` runs a test once per database. PostgreSQL tests use a database
created for this run (dropped at the end) and tables truncated between tests.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from otp_pro import Member, OtpPro
from otp_pro.storage import migrate
from otp_pro.storage.schema import metadata

PG_ENV = "OTP_PRO_TEST_POSTGRES_URL"
SECRET_KEY = "test-secret-key-" + "x" * 32


class Clock:
    """A clock tests can move. Starts at a fixed instant in the middle of a TOTP step."""

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
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mailbox:
    """Messages received by the loopback SMTP server, parsed with the stdlib email package."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.reply: str | None = None  # set to e.g. "451 try later" to refuse the next DATA
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            if self.reply is not None:
                reply, self.reply = self.reply, None
                return reply
            self.messages.append(
                email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
            )
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if address in str(m["To"])]

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.envelopes.clear()


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


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str | None]:
    base = os.environ.get(PG_ENV)
    if not base:
        yield None
        return
    with temporary_pg_database(base, "otp_pro_test") as url:
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
def make_otp(backend: str, clock: Clock, smtp_server: tuple[str, int, Mailbox]) -> Iterator[Callable[..., OtpPro]]:
    """Build OtpPro instances on the test's database: ``make_otp(max_attempts=3, plugins=[...])``.

    The ``email`` transport points at the loopback SMTP server.
    """
    made: list[OtpPro] = []
    host, port, _mailbox = smtp_server

    def factory(*, plugins: Any = (), **overrides: Any) -> OtpPro:
        overrides.setdefault(
            "providers", {"email": {"smtp_host": host, "smtp_port": port, "from_address": "otp@example.com"}}
        )
        otp = OtpPro(base_settings(backend, **overrides), plugins=plugins, clock=clock)
        made.append(otp)
        return otp

    yield factory
    for otp in made:
        otp.close()


@pytest.fixture
def otp(make_otp: Callable[..., OtpPro]) -> OtpPro:
    return make_otp()


@pytest.fixture
def member() -> Member:
    return Member(id="42", roles=["editor"], email="ann@example.com", name="Ann", fields={"phone": "+447700900123"})


def last_code(otp: OtpPro, recipient: str | None = None) -> str:
    """The code in the newest outbox message."""
    message = otp.transports["outbox"].last(recipient)  # type: ignore[attr-defined]
    assert message is not None, "no message in the outbox"
    match = re.search(rf"\b(\d{{{otp.settings.code_length}}})\b", message.text)
    assert match, "no code in the message"
    return match.group(1)


def enroll(otp: OtpPro, member: Member, channel: str = "outbox:code") -> list[str]:
    """Set up ``channel`` for ``member``; return the backup codes."""
    info = otp.begin_setup(member, channel)
    if channel == "totp":
        import pyotp

        assert info.secret is not None
        return otp.complete_setup(member, pyotp.TOTP(info.secret).at(otp.clock()))
    return otp.complete_setup(member, last_code(otp))
