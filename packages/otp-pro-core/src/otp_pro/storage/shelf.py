"""SQLite: SQLAlchemy connections kept open between operations, ready to begin again.

Checking a connection out of SQLAlchemy's pool and handing it back costs more
Python than the transaction it carries: a new ``Connection`` object, the pool's
checkout and checkin, the reset of the driver connection, and the execution
options that tell the begin hook how to begin. On SQLite that was about 30 us of
the 44 us an empty write transaction cost, and an email sign-in runs four
transactions (``python -m nox -s bench`` measures the operations). A
:class:`Shelf` keeps a few of those ``Connection`` objects, one list per way of
beginning, and lends them out again.

What makes a connection unfit to keep, and closed instead (back to the pool):

- the block raised (SQLAlchemy has rolled the transaction back; the next
  borrower gets a clean connection from the pool rather than a question);
- it was invalidated, or is still in a transaction (a read-once block that ran
  a statement through ``Connection.execute`` autobegins one);
- the block changed its execution options (``yield_per`` for a long export):
  SQLAlchemy 2 changes them in place, and the next borrower must not inherit them;
- the shelf already keeps :data:`KEPT_PER_WAY` of its way.

Only SQLite's connections are kept: a PostgreSQL connection can die while it
sits idle (a restart, a proxy's timeout), which the pool's checkout check
catches and a shelf would not. A forked child never uses its parent's kept
connections (the file descriptors are shared with the parent): the database's
fork hook calls :meth:`Shelf.forget_inherited`, which leaves them unclosed, as
SQLAlchemy's pool leaves the parent's pooled ones, and starts an empty shelf. A
connection borrowed before the fork and handed back in the child (a block that
forked) is forgotten too, neither closed nor kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine

#: How many idle connections each way of beginning keeps. Well under the pool's 15, which the other
#: operations (exports, statistics, migrations) still draw from.
KEPT_PER_WAY = 2


class Shelf:
    """Idle ``Connection`` objects of one engine, one list per set of execution options (a way of beginning)."""

    def __init__(self, engine: Engine, ways: Mapping[str, Mapping[str, Any]]) -> None:
        self._engine = engine
        self._ways = ways
        self._kept: dict[str, list[tuple[Connection, Any]]] = {way: [] for way in ways}
        #: How many forks this process descends from since the shelf was made (see forget_inherited).
        self._generation = 0
        #: A forked child's inherited connections: referenced, so that they are never closed from the child.
        self._inherited: list[Any] = []

    @contextmanager
    def connection(self, way: str) -> Iterator[Connection]:
        """A connection with ``way``'s execution options, kept or new; kept again afterwards if it is fit."""
        generation = self._generation
        kept = self._kept[way]
        try:
            conn, options = kept.pop()  # list.pop and append are atomic: threads share the lists safely
        except IndexError:
            conn = self._engine.connect()
            if self._ways[way]:
                conn.execution_options(**self._ways[way])
            options = conn.get_execution_options()
        try:
            yield conn
        except BaseException:
            self._give_back(conn, generation)
            raise
        if (generation == self._generation and len(kept) < KEPT_PER_WAY and not conn.invalidated
                and not conn.in_transaction() and conn.get_execution_options() is options):
            kept.append((conn, options))
        else:
            self._give_back(conn, generation)

    def _give_back(self, conn: Connection, generation: int) -> None:
        """Close ``conn`` into the pool, or, when it was borrowed before a fork (this is the child), forget it."""
        if generation == self._generation:
            conn.close()
        else:
            self._inherited.append(conn)

    def __len__(self) -> int:
        """How many idle connections are kept."""
        return sum(len(kept) for kept in self._kept.values())

    def close(self) -> None:
        """Close every kept connection (they go back to the pool, which the caller then disposes)."""
        for kept in self._kept.values():
            while kept:
                conn, _options = kept.pop()
                conn.close()

    def forget_inherited(self) -> None:
        """In a forked child (the database's fork hook calls it): set the parent's kept connections aside,
        unclosed, and begin an empty shelf."""
        self._generation += 1
        for kept in self._kept.values():
            self._inherited.extend(kept)
            kept.clear()
