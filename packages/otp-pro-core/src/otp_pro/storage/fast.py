"""The hot statements, run on the driver's cursor with SQL that SQLAlchemy compiled once.

SQLAlchemy's ``Connection.execute`` runs more Python per statement (cache
lookup, execution context, result metadata, events) than SQLite needs to run
the statement itself: on SQLite that is most of a verification, and a sign-in
runs a dozen statements (``python -m nox -s bench`` measures both). The few
statements of the send and verify paths are compiled once per engine here, by
SQLAlchemy from the same ``Table`` definitions and with the same bind and
result processing (``UTCDateTime`` included), and run on the connection's
DB-API cursor inside the caller's SQLAlchemy transaction.

What stays as with ``Connection.execute``:

- the transaction: the statement runs on the connection SQLAlchemy checked out
  and began, so its commit and rollback (and the SQLite ``BEGIN IMMEDIATE``
  hook) are unchanged;
- errors: a driver error is raised as SQLAlchemy's ``DBAPIError`` (which
  :class:`~otp_pro.storage.db.Database` turns into ``StorageError``), and a lost
  connection invalidates the connection, as SQLAlchemy itself would;
- the ``before_cursor_execute`` and ``after_cursor_execute`` engine events fire
  when something listens (tracing, statement counters, the fault tests), and
  cost nothing when nothing does.

What differs: SQLAlchemy's own statement log (``echo=True``, the
``sqlalchemy.engine`` logger) does not list these statements; listen to the
events above to see them.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError


class FastResult:
    """The rows (already processed: aware datetimes) and row count of one statement."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def first(self) -> Any:
        return self.rows[0] if self.rows else None

    def one(self) -> Any:
        if len(self.rows) != 1:
            raise LookupError(f"expected one row, got {len(self.rows)}")
        return self.rows[0]


class FastStatement:
    """One SQLAlchemy statement compiled for one dialect, with its bind and result processors."""

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if getattr(compiled, "escaped_bind_names", None):
            raise ValueError("fast statements take plain bind names only")
        self.sql: str = compiled.string
        names = compiled.bind_names
        self.positional = bool(compiled.positional)
        order = list(compiled.positiontup or ()) if self.positional else sorted(set(names.values()))
        self.order: tuple[str, ...] = tuple(order)
        # Values fixed in the statement (``.values(failures=0)``) are binds with a value.
        self.defaults: dict[str, Any] = {}
        processors: dict[str, Callable[[Any], Any]] = {}
        for bind, name in names.items():
            if not bind.required and bind.callable is None:
                self.defaults[name] = bind.value
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors[name] = process
        self.bind_processors = tuple(processors.items())
        # A SELECT's columns, or an INSERT/UPDATE's RETURNING columns (none without RETURNING).
        columns = list(statement.exported_columns)
        self.returns = bool(columns)
        self.result_processors = tuple(
            (index, process) for index, column in enumerate(columns)
            if (process := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None)
        self.row_type: Any = namedtuple("Row", [getattr(c, "key", None) or f"c{i}" for i, c in enumerate(columns)],
                                        rename=True) if columns else None

    def parameters(self, params: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        values = {**self.defaults, **params}
        for name, process in self.bind_processors:
            values[name] = process(values[name])
        if self.positional:
            return [values[name] for name in self.order]
        return {name: values[name] for name in self.order}

    def rows(self, raw: Sequence[Any]) -> list[Any]:
        """``raw`` (the driver's rows of a statement that returns some) as named, processed rows."""
        make = self.row_type._make
        processors = self.result_processors
        out = []
        for row in raw:
            if processors:
                row = list(row)
                for index, process in processors:
                    row[index] = process(row[index])
            out.append(make(row))
        return out


class FastStatements:
    """The compiled statements of one engine, built on first use."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.dbapi_error = dialect.loaded_dbapi.Error
        self._compiled: dict[int, tuple[Any, FastStatement]] = {}

    def get(self, statement: Any) -> FastStatement:
        # The statements passed are module-level objects, kept alive by the cache entry itself.
        entry = self._compiled.get(id(statement))
        if entry is None or entry[0] is not statement:
            entry = self._compiled[id(statement)] = (statement, FastStatement(statement, self.dialect))
        return entry[1]

    def run(self, conn: Connection, statement: Any, params: Mapping[str, Any]) -> FastResult:
        """Run ``statement`` with ``params`` on ``conn``'s driver connection, in its current transaction."""
        fast = self.get(statement)
        return self._execute(conn, fast.sql, fast.parameters(params), fast)

    def run_sql(self, conn: Connection, sql: str) -> None:
        """Run ``sql``, a fixed statement with no parameters and no rows (SQLite's ``BEGIN IMMEDIATE``), on
        ``conn``'s driver connection: the same events and errors as :meth:`run`, and no compilation."""
        self._execute(conn, sql, (), None)

    def _execute(self, conn: Connection, sql: str, args: Sequence[Any] | dict[str, Any],
                 fast: FastStatement | None) -> FastResult:
        dbapi_connection = conn.connection.dbapi_connection
        assert dbapi_connection is not None
        cursor = dbapi_connection.cursor()
        dispatch = conn.dispatch
        try:
            if dispatch.before_cursor_execute:
                dispatch.before_cursor_execute(conn, cursor, sql, args, None, False)
            cursor.execute(sql, args)
            if dispatch.after_cursor_execute:
                dispatch.after_cursor_execute(conn, cursor, sql, args, None, False)
            rows = fast.rows(cursor.fetchall()) if fast is not None and fast.returns else []
            result = FastResult(rows, cursor.rowcount)
        except self.dbapi_error as exc:
            invalidated = bool(self.dialect.is_disconnect(exc, dbapi_connection, cursor))
            if invalidated:
                conn.invalidate()
            raise DBAPIError.instance(None, None, exc, self.dbapi_error, connection_invalidated=invalidated,
                                      dialect=self.dialect) from None
        finally:
            try:
                cursor.close()
            except self.dbapi_error:  # a connection already lost
                pass
        return result
