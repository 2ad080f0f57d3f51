"""Helpers for testing otp-pro and its plugins (the start of the third-party authoring kit).

Installed with otp-pro-core, this module is a pytest plugin (entry point
``pytest11``; it needs the ``testing`` extra, i.e. pytest, and aiosmtpd for the
SMTP fixture). Its fixtures:

* ``clock``: a :class:`Clock` tests can move;
* ``smtp_server`` / ``mailbox``: a real SMTP server (aiosmtpd) on 127.0.0.1 and
  what it received, parsed with the standard library's ``email`` package;
* ``pg_url``: a PostgreSQL database made for the run, migrated, dropped at the
  end, or None when ``OTP_PRO_TEST_POSTGRES_URL`` is not set;
* ``backend``: a database URL, once on SQLite and once on PostgreSQL (skipped,
  saying why, without ``OTP_PRO_TEST_POSTGRES_URL``); ``sqlite_url``: SQLite only.

``DiscoveryContract`` checks that an installed distribution is found through
the ``otp_pro`` entry-point group and loaded by the core's plugin manager, and
that both switches (``disable_plugins`` and ``OTP_PRO_DISABLE_PLUGINS``) turn
it off. Subclass it in a test module and set the three class attributes::

    class TestDiscovery(DiscoveryContract):
        entry_point = "otp_pro_acme_fax"
        distribution = "otp-pro-acme-fax"
        module = "otp_pro_acme_fax.plugin"
"""

from __future__ import annotations

import email
import email.policy
import importlib
import importlib.metadata
import os
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Any, ClassVar

import pytest

from .core import OtpPro
from .plugins import DISABLE_ENV, ENTRY_POINT_GROUP

PG_ENV = "OTP_PRO_TEST_POSTGRES_URL"
PG_SKIP_REASON = f"PostgreSQL tests skipped: set {PG_ENV} (CI sets it) to run them"


class Clock:
    """A clock tests can move. Starts at a fixed instant 10 s into a TOTP step."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2026, 11, 23, 12, 0, 10, tzinfo=timezone.utc)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float = 0, **kw: float) -> datetime:
        """Move forward by ``seconds`` (and any ``timedelta`` keywords: ``days=1``)."""
        with self._lock:
            self.now = self.now + timedelta(seconds=seconds, **kw)
            return self.now


@pytest.fixture
def clock() -> Clock:
    """A fresh :class:`Clock` for each test."""
    return Clock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Mailbox:
    """Messages received by the loopback SMTP server, parsed with the standard library's ``email``."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        #: Set to an SMTP reply ("451 try later") to refuse the next DATA with it.
        self.reply: str | None = None
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            if self.reply is not None:
                reply, self.reply = self.reply, None
                return reply
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        """Messages whose To header contains ``address``, oldest first."""
        with self._lock:
            return [m for m in self.messages if address in str(m["To"])]

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.envelopes.clear()
            self.reply = None


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[tuple[str, int, Mailbox]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 for the whole run: ``(host, port, mailbox)``."""
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
    """The loopback server's mailbox, emptied for this test."""
    smtp_server[2].clear()
    return smtp_server[2]


@contextmanager
def temporary_pg_database(base_url: str, prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database beside ``base_url``'s, dropped afterwards; yields its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

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


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str | None]:
    """A migrated PostgreSQL database for the run, or None without ``OTP_PRO_TEST_POSTGRES_URL``."""
    from sqlalchemy import create_engine

    from .storage import migrate

    base = os.environ.get(PG_ENV)
    if not base:
        yield None
        return
    with temporary_pg_database(base, "otp_pro_test") as url:
        engine = create_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, pg_url: str | None) -> str:
    """A database URL, once per database: a fresh SQLite file, then the run's PostgreSQL database emptied.

    The PostgreSQL variant is skipped, with :data:`PG_SKIP_REASON`, when ``OTP_PRO_TEST_POSTGRES_URL`` is not set.
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/otp.sqlite3"
    if pg_url is None:
        pytest.skip(PG_SKIP_REASON)
    truncate_all(pg_url)
    return pg_url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file for this test."""
    return f"sqlite:///{tmp_path}/otp.sqlite3"


def truncate_all(url: str) -> None:
    """Empty every otp-pro table (between PostgreSQL tests that share the run's database)."""
    from sqlalchemy import create_engine, text

    from .storage.schema import metadata

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(t.name for t in metadata.sorted_tables)} RESTART IDENTITY"))
    engine.dispose()


class DiscoveryContract:
    """Tests every plugin distribution should pass: discovered, loaded, switchable off."""

    entry_point: ClassVar[str]
    distribution: ClassVar[str]
    module: ClassVar[str]

    @pytest.fixture
    def settings(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
        """Settings for an OtpPro on a fresh SQLite file, with no plugin blocked from outside."""
        monkeypatch.delenv(DISABLE_ENV, raising=False)
        return {"secret_key": "discovery-contract-" + "x" * 32, "database_url": f"sqlite:///{tmp_path}/t.sqlite3"}

    def _entry_point(self) -> importlib.metadata.EntryPoint:
        found = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == self.entry_point]
        assert len(found) == 1, f"expected one {ENTRY_POINT_GROUP} entry point named {self.entry_point}, found {found}"
        return found[0]

    def _plugin(self, settings: dict[str, Any]) -> Any:
        otp = OtpPro(settings)
        try:
            return {p.name: p for p in otp.plugins()}[self.entry_point]
        finally:
            otp.close()

    def test_entry_point_points_at_the_plugin_module(self) -> None:
        ep = self._entry_point()
        assert ep.value == self.module
        assert ep.dist is not None and ep.dist.name == self.distribution
        assert ep.load() is importlib.import_module(self.module)

    def test_version_matches_the_installed_metadata(self) -> None:
        package = importlib.import_module(self.module.split(".")[0])
        assert package.__version__ == importlib.metadata.version(self.distribution)

    def test_core_plugin_manager_loads_it(self, settings: dict[str, Any]) -> None:
        plugin = self._plugin(settings)
        assert plugin.module == self.module
        assert plugin.distribution == self.distribution
        assert plugin.version == importlib.metadata.version(self.distribution)
        assert plugin.error is None
        assert not plugin.builtin
        assert plugin.enabled

    def test_disable_plugins_setting_switches_it_off(self, settings: dict[str, Any]) -> None:
        plugin = self._plugin({**settings, "disable_plugins": [self.entry_point]})
        assert plugin.enabled is False and plugin.error is None

    def test_disable_plugins_environment_variable_switches_it_off(
        self, settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(DISABLE_ENV, self.entry_point)
        assert self._plugin(settings).enabled is False
