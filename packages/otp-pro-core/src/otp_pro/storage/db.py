"""Engine set-up and transactions.

SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for write transactions
(a deferred transaction that later writes can fail at once with "database is
locked" instead of waiting). PostgreSQL uses READ COMMITTED; correctness under
concurrency comes from conditional UPDATEs whose row count decides.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import StaticPool

from ..errors import ConfigurationError

SQLITE_BUSY_TIMEOUT_MS = 10_000
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
#: A pooled PostgreSQL connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_SECONDS = 5.0


def make_engine(url: str) -> Engine:
    """Create the engine for ``url`` with otp-pro's connection settings."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            "database_url is not a valid SQLAlchemy URL (for example sqlite:///otp-pro.sqlite3 "
            "or postgresql+psycopg://user@host/db)",
            key="database_url",
        ) from None
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        # Single use and failure counting rely on UPDATE ... RETURNING and ON CONFLICT.
        raise ConfigurationError(
            f"database_url: otp-pro runs on SQLite or PostgreSQL, not {parsed.get_backend_name()}",
            key="database_url",
        )
    kwargs: dict[str, Any] = {}
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite:
        memory = parsed.database in (None, "", ":memory:")
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        if memory:
            kwargs["poolclass"] = StaticPool
        elif parsed.database:
            folder = Path(parsed.database).expanduser().resolve().parent
            if not folder.is_dir():
                raise ConfigurationError(
                    f"database_url points into {folder}, which does not exist", key="database_url"
                )
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise ConfigurationError(
            f"database_url needs a driver that is not installed ({exc}); for PostgreSQL install "
            "otp-pro-core[postgresql]",
            key="database_url",
        ) from None
    if is_sqlite:
        _sqlite_setup(engine, memory=parsed.database in (None, "", ":memory:"))
    else:
        _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it sat idle for a while.

    ``pool_pre_ping`` would cost one round trip on every checkout, that is on every
    operation. A connection handed back a moment ago is alive; one that sat idle
    for :data:`PING_AFTER_IDLE_SECONDS` (a database restart, a proxy's idle
    timeout) is pinged, and replaced if dead. A server that dies while
    connections are in use fails those operations once; SQLAlchemy then
    invalidates the whole pool.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["otp_pro_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("otp_pro_idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # a new connection, or one in use a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception:  # noqa: BLE001 - whatever the driver raises, the connection is unusable
            alive = False
        if not alive:
            raise DisconnectionError("pooled connection was dead; the pool opens a new one")


def _sqlite_setup(engine: Engine, *, memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("otp_pro_single_read", False):
            return  # one SELECT is its own read transaction in SQLite's autocommit mode
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("otp_pro_write", False) else "BEGIN")


class Database:
    """Owns the engine; hands out read and write transactions."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.is_postgresql = self.engine.dialect.name == "postgresql"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will write: committed on success, rolled back on any exception."""
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn = conn.execution_options(otp_pro_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def read_once(self) -> Iterator[Connection]:
        """For one read statement, without BEGIN and COMMIT (one statement sees one snapshot anyway).

        PostgreSQL runs it in autocommit (one round trip); SQLite, whose driver
        connection is in autocommit already, gets no BEGIN from the begin hook.
        """
        with self.engine.connect() as conn:
            if self.is_postgresql:
                yield conn.execution_options(isolation_level="AUTOCOMMIT")
            else:
                yield conn.execution_options(otp_pro_single_read=True)

    @contextmanager
    def write_once(self) -> Iterator[Connection]:
        """For one write statement: on PostgreSQL in autocommit (the statement is its own transaction,
        one round trip instead of BEGIN, statement, COMMIT); on SQLite a :meth:`write` transaction."""
        if not self.is_postgresql:
            with self.write() as conn:
                yield conn
            return
        with self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    def has_tables(self) -> bool:
        try:
            return inspect(self.engine).has_table("otp_members")
        except OperationalError as exc:
            reason = " ".join(str(exc.orig).split())  # one line: drivers' messages span several
            raise ConfigurationError(f"cannot connect to the database: {reason}", key="database_url") from None

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"
