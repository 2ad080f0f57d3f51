"""Engine set-up and transactions.

SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` for write transactions
(a deferred transaction that later writes can fail at once with "database is
locked" instead of waiting). PostgreSQL uses READ COMMITTED; correctness under
concurrency comes from conditional UPDATEs whose row count decides.
"""

from __future__ import annotations

import os
import select
import sqlite3
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, DisconnectionError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import StaticPool

from ..errors import ConfigurationError, StorageError
from ..settings import DATABASE_BACKENDS
from .fast import FastResult, FastStatements
from .shelf import Shelf

SQLITE_BUSY_TIMEOUT_MS = 10_000
SUPPORTED_BACKENDS = DATABASE_BACKENDS
#: A pooled PostgreSQL connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_SECONDS = 5.0


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    """Create the engine for ``url`` with otp-pro's connection settings.

    ``pool_size`` and ``max_overflow`` size a PostgreSQL engine's pool (docs/deployment.md);
    SQLite keeps SQLAlchemy's own pooling.
    """
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
            if parsed.get_driver_name() == "pysqlite" and not is_sqlite_file(Path(parsed.database).expanduser()):
                # sqlite3 would only say "file is not a database", and only at the first statement.
                raise ConfigurationError(
                    f"database_url: {Path(parsed.database).expanduser()} is not a SQLite database",
                    key="database_url",
                )
    else:
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow)
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


#: SQLite's result code for a file that is not a database.
SQLITE_NOTADB = 26


def is_sqlite_file(path: Path) -> bool:
    """Whether ``path`` can be opened as a SQLite database: missing, empty or a SQLite database file.

    A missing or empty file is one SQLite creates (or fills) on first use. Anything else SQLite cannot
    tell (a locked or unreadable file) is left for the driver to report.

    The file is read through SQLite itself, never with ``open()``: closing any descriptor of a database
    file drops every POSIX lock this process holds on it, those of SQLite connections already open on it
    included (Django's own, in a Django site, or an earlier engine's), and a database whose locks
    vanish can be corrupted by another process (https://www.sqlite.org/howtocorrupt.html, 2.2).
    SQLite's own descriptors are shared and closed safely across the connections of one process.
    """
    try:
        if path.stat().st_size == 0:
            return True
    except OSError:
        return True
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return True
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.DatabaseError as exc:
        # SQLITE_NOTADB: the header is not SQLite's. (sqlite_errorcode is there from Python 3.11 on.)
        code = getattr(exc, "sqlite_errorcode", None)
        return not (code == SQLITE_NOTADB or (code is None and "not a database" in str(exc)))
    finally:
        conn.close()
    return True


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
        if idle_since is None:
            return  # a new connection
        if time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS and not _has_unread_input(dbapi_connection):
            return  # in use a moment ago, and the server has said nothing since
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception:  # noqa: BLE001 - whatever the driver raises, the connection is unusable
            alive = False
        if not alive:
            raise DisconnectionError("pooled connection was dead; the pool opens a new one")


def _has_unread_input(dbapi_connection: Any) -> bool:
    """Whether the server sent something to an idle connection: a closed socket, or a notice before closing.

    A server that ends a session (``pg_terminate_backend``, a restart, an idle
    timeout) sends its farewell and closes the socket; the driver only learns
    of it at the next query, which would fail. Nothing else arrives unasked on
    an idle connection (otp-pro uses no LISTEN), so readable input means the
    connection must be pinged. A ``select`` with no wait is a system call, not
    a round trip.
    """
    try:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except (OSError, ValueError, AttributeError):
        return True  # no usable socket: let the ping decide
    return bool(readable)


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

    # BEGIN goes to the driver's cursor as the hot statements do (storage/fast.py), with the same
    # events and errors: exec_driver_sql's own overhead is paid once per transaction otherwise.
    statements = FastStatements(engine.dialect)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("otp_pro_single_read", False):
            return  # one SELECT is its own read transaction in SQLite's autocommit mode
        statements.run_sql(conn, "BEGIN IMMEDIATE" if options.get("otp_pro_write", False) else "BEGIN")


def _forget_inherited_connections(engine: Engine, shelf: Shelf | None) -> None:
    """After a fork, the child drops the parent's pooled and kept connections without closing them.

    Pre-fork servers (a Celery prefork worker, gunicorn ``--preload``) build ``OtpPro``
    in the parent and fork; a socket or a SQLite file handle shared by two processes
    interleaves their statements. ``dispose(close=False)`` leaves the parent's connections
    to the parent and gives the child a fresh pool (SQLAlchemy's "using connection pools
    with multiprocessing" recipe); the shelf forgets its kept ones the same way
    (:meth:`Shelf.forget_inherited`). Weak references: the hook outlives a closed instance.
    """
    engine_ref = weakref.ref(engine)
    shelf_ref = weakref.ref(shelf) if shelf is not None else None

    def after_in_child() -> None:
        alive = engine_ref()
        if alive is not None:
            alive.dispose(close=False)
        kept = shelf_ref() if shelf_ref is not None else None
        if kept is not None:
            kept.forget_inherited()

    os.register_at_fork(after_in_child=after_in_child)


class Database:
    """Owns the engine; hands out read and write transactions.

    A database failure inside any of them (a lost connection, a server that
    is down, SQLite locked past its busy timeout) is raised as
    :class:`~otp_pro.errors.StorageError` after the transaction was rolled
    back, never as the driver's exception: SQLAlchemy's text carries the SQL
    and its parameters (hashes of codes, member ids), which belong in no log.
    """

    def __init__(self, url: str, *, pool_size: int = 5, max_overflow: int = 10):
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.is_postgresql = self.engine.dialect.name == "postgresql"
        self.backend = "SQLite" if self.is_sqlite else "PostgreSQL" if self.is_postgresql else self.engine.dialect.name
        self._fast = FastStatements(self.engine.dialect)
        # SQLite's begin hook reads these options to choose BEGIN IMMEDIATE, BEGIN or none (_sqlite_setup).
        self._shelf = Shelf(self.engine, {"write": {"otp_pro_write": True}, "read": {},
                                          "single": {"otp_pro_single_read": True}}) if self.is_sqlite else None
        _forget_inherited_connections(self.engine, self._shelf)

    def _connection(self, way: str) -> AbstractContextManager[Connection]:
        """A connection for one of :meth:`write`, :meth:`read` or :meth:`read_once`: on SQLite a kept one
        (:mod:`otp_pro.storage.shelf`), elsewhere one from the pool."""
        if self._shelf is not None:
            return self._shelf.connection(way)
        return self.engine.connect()

    @property
    def connections_kept(self) -> int:
        """How many idle connections the instance keeps open between operations (SQLite only; else 0)."""
        return len(self._shelf) if self._shelf is not None else 0

    def run(self, conn: Connection, statement: Any, params: Mapping[str, Any]) -> FastResult:
        """Run one of the hot paths' module-level statements on ``conn``, in its transaction (see
        :mod:`otp_pro.storage.fast`): same SQL, same results, without SQLAlchemy's per-statement cost."""
        return self._fast.run(conn, statement, params)

    @contextmanager
    def _storage_errors(self) -> Iterator[None]:
        """Raise the driver's errors met inside as :class:`StorageError` (see :meth:`storage_error`)."""
        try:
            yield
        except DBAPIError as exc:
            raise self.storage_error(exc) from None

    def storage_error(self, exc: DBAPIError) -> StorageError:
        """The typed error for a driver error: what failed, in words, with no SQL and no parameters."""
        orig = exc.orig
        kind = f"{type(orig).__module__}.{type(orig).__qualname__}" if orig is not None else type(exc).__name__
        text = " ".join(str(orig).split()).lower() if orig is not None else ""
        if exc.connection_invalidated:
            reason, what = "connection_lost", "the connection to the database was lost during the operation"
        elif self.is_sqlite and ("locked" in text or "busy" in text):
            reason, what = "locked", "the database stayed locked by another writer past the busy timeout"
        elif isinstance(exc, OperationalError):
            reason, what = "unavailable", "the database cannot be used right now"
        else:
            reason, what = "error", "the database refused the operation"
        return StorageError(f"{self.backend} error: {what} ({kind}); the operation was not completed, try again",
                            reason=reason, backend=self.backend)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will write: committed on success, rolled back on any exception."""
        with self._storage_errors(), self._connection("write") as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction."""
        with self._storage_errors(), self._connection("read") as conn, conn.begin():
            yield conn

    @contextmanager
    def read_once(self) -> Iterator[Connection]:
        """For one read statement, without BEGIN and COMMIT (one statement sees one snapshot anyway).

        PostgreSQL runs it in autocommit (one round trip); SQLite, whose driver
        connection is in autocommit already, gets no BEGIN from the begin hook.
        """
        if self.is_postgresql:
            with self._autocommit() as conn:
                yield conn
            return
        with self._storage_errors(), self._connection("single") as conn:
            yield conn

    @contextmanager
    def write_once(self) -> Iterator[Connection]:
        """For one write statement: on PostgreSQL in autocommit (the statement is its own transaction,
        one round trip instead of BEGIN, statement, COMMIT); on SQLite a :meth:`write` transaction."""
        if not self.is_postgresql:
            with self.write() as conn:
                yield conn
            return
        with self._autocommit() as conn:
            yield conn

    @contextmanager
    def _autocommit(self) -> Iterator[Connection]:
        """A pooled PostgreSQL connection in autocommit for the block, back out of it before it is pooled again.

        The driver connection's own switch, not ``isolation_level="AUTOCOMMIT"``:
        SQLAlchemy's per-checkout characteristics machinery costs more than the switch
        itself, on a path that runs two or three times per sign-in. A connection that
        cannot be switched back (lost meanwhile) is invalidated, never pooled in
        autocommit: a later :meth:`write` on it would commit statement by statement.
        """
        with self._storage_errors(), self.engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            raw.autocommit = True
            try:
                yield conn
            finally:
                if not conn.invalidated:
                    try:
                        raw.autocommit = False
                    except Exception:  # noqa: BLE001 - a closed or broken connection: never pool it
                        conn.invalidate()

    def has_tables(self) -> bool:
        try:
            return inspect(self.engine).has_table("otp_members")
        except OperationalError as exc:
            reason = " ".join(str(exc.orig).split())  # one line: drivers' messages span several
            raise ConfigurationError(f"cannot connect to the database: {reason}", key="database_url") from None

    def dispose(self) -> None:
        if self._shelf is not None:
            self._shelf.close()
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"
