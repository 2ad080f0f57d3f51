"""Per-IP limits, shared by every instance: counters of one kind of event per IP address and hour.

A counter row per (address, kind) holds the count of a fixed one-hour window; the
address is kept as a keyed hash only. An event is counted before what it guards
runs (:func:`reserve`, one atomic upsert, so concurrent requests from one address
are counted one after the other and never pass the limit together), and the count
is given back when the event turns out not to be one (:func:`release`: a link
that was really issued is not a guess).
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, case, update

from ..storage.schema import ip_counters
from .runtime import Runtime

#: Sign-in links clicked that otp-pro never issued: guesses of nobody in particular.
UNKNOWN_LINK = "unknown_link"
WINDOW = timedelta(hours=1)


@functools.cache
def _count(dialect: str) -> Any:
    """The upsert that counts one event, starting a new window when the last one ended (per dialect)."""
    dialect_insert: Any
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    over = ip_counters.c.window_start <= bindparam("b_window_ended", type_=ip_counters.c.window_start.type)
    statement = dialect_insert(ip_counters).values(
        ip_hash=bindparam("b_ip"), kind=bindparam("b_kind"), count=1,
        window_start=bindparam("b_now", type_=ip_counters.c.window_start.type))
    return statement.on_conflict_do_update(index_elements=["ip_hash", "kind"], set_={
        "count": case((over, 1), else_=ip_counters.c.count + 1),
        "window_start": case((over, statement.excluded.window_start), else_=ip_counters.c.window_start),
    }).returning(ip_counters.c.count, ip_counters.c.window_start)


def reserve(rt: Runtime, conn: Connection, kind: str, ip: str | None, cap: int, now: datetime) -> int | None:
    """Count one ``kind`` event for ``ip`` in ``conn``'s transaction; None within ``cap``, else the seconds to wait.

    Without an address (a library call that passed none) nothing is counted.
    """
    if not ip:
        return None
    # Unpacked, not read by name: a row is a tuple, whose own count() would shadow the column.
    count, window_start = conn.execute(_count(conn.dialect.name), {
        "b_ip": rt.keys.hash("ip", ip), "b_kind": kind, "b_now": now, "b_window_ended": now - WINDOW}).one()
    if count <= cap:
        return None
    return max(1, int((window_start + WINDOW - now).total_seconds()) + 1)


def release(rt: Runtime, conn: Connection, kind: str, ip: str | None) -> None:
    """Give back the event :func:`reserve` counted for ``ip``: it was not one of ``kind`` after all."""
    if not ip:
        return
    conn.execute(update(ip_counters).where(
        ip_counters.c.ip_hash == rt.keys.hash("ip", ip), ip_counters.c.kind == kind, ip_counters.c.count > 0,
    ).values(count=ip_counters.c.count - 1))
