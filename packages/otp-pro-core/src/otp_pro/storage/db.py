"""Engine set-up and transactions.

SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for write transactions
(a deferred transaction that later writes can fail at once with "database is
locked" instead of waiting). PostgreSQL uses READ COMMITTED; correctness under
concurrency comes from conditional UPDATEs whose row count decides.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import StaticPool

from ..errors import ConfigurationError

SQLITE_BUSY_TIMEOUT_MS = 10_000
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


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
    else:
        kwargs["pool_pre_ping"] = True
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
    return engine


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
        immediate = conn.get_execution_options().get("otp_pro_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


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

    def has_tables(self) -> bool:
        try:
            return inspect(self.engine).has_table("otp_members")
        except OperationalError as exc:
            raise ConfigurationError(f"cannot connect to the database: {exc.orig}", key="database_url") from None

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"
