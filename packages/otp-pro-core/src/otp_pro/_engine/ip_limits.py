"""Per-IP limits, shared by every instance: counters of one kind of event per IP address and hour.

A counter row per (address, kind) holds the count of a fixed one-hour window; the
address is kept as a keyed hash only. An event is counted before what it guards
runs (:func:`reserve`, one atomic upsert, so concurrent requests from one address
are counted one after the other and never pass the limit together), and the count
is given back when the event turns out not to be one (:func:`release`: a link
that was really issued is not a guess, a code that was right is not a failure).

The kinds: sends (SMS pumping spreads over many accounts, so a member's own caps
do not see it), failed verifications across members (guesses sprayed over many
accounts stay under each member's lockout), and sign-in links otp-pro never
issued. On SQLite a counter is written in the transaction of what it guards (the
write lock serialises them anyway, and a transaction of its own would cost a
commit); on PostgreSQL by a statement of its own (:func:`reserve_alone`), so the
one-statement send and verify paths stay one statement and no row lock on the
counter is held while a code is checked.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, case, func, select, update

from .. import audit
from ..audit import AuditEvent
from ..storage.schema import ip_counters
from . import auditing
from .runtime import Runtime

#: Sign-in links clicked that otp-pro never issued: guesses of nobody in particular.
UNKNOWN_LINK = "unknown_link"
#: Challenges sent (or queued) to any member at the request of one address.
SEND = "send"
#: Verifications that did not pass, for any member, from one address.
FAILED_VERIFY = "failed_verify"
#: Every kind, in the order ``otp-pro stats`` lists them, with the setting that caps it.
CAPS = {SEND: "max_sends_per_hour_per_ip", FAILED_VERIFY: "max_failed_verifications_per_hour_per_ip",
        UNKNOWN_LINK: "max_unknown_links_per_hour_per_ip"}
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


# Built once and run as fast statements (otp_pro.storage.fast): they sit on the verify and send paths.
_RELEASE = update(ip_counters).where(
    ip_counters.c.ip_hash == bindparam("b_ip"), ip_counters.c.kind == bindparam("b_kind"), ip_counters.c.count > 0,
).values(count=ip_counters.c.count - 1)


def reserve(rt: Runtime, conn: Connection, kind: str, ip: str | None, cap: int, now: datetime) -> int | None:
    """Count one ``kind`` event for ``ip`` in ``conn``'s transaction; None within ``cap``, else the seconds to wait.

    Without an address (a library call that passed none) nothing is counted.
    """
    if not ip:
        return None
    # Unpacked, not read by name: a row is a tuple, whose own count() would shadow the column.
    count, window_start = rt.db.run(conn, _count(conn.dialect.name), {
        "b_ip": rt.keys.hash("ip", ip), "b_kind": kind, "b_now": now, "b_window_ended": now - WINDOW}).one()
    if count <= cap:
        return None
    return max(1, int((window_start + WINDOW - now).total_seconds()) + 1)


def release(rt: Runtime, conn: Connection, kind: str, ip: str | None) -> None:
    """Give back the event :func:`reserve` counted for ``ip``: it was not one of ``kind`` after all."""
    if not ip:
        return
    rt.db.run(conn, _RELEASE, {"b_ip": rt.keys.hash("ip", ip), "b_kind": kind})


def reserve_alone(rt: Runtime, kind: str, ip: str | None, cap: int, now: datetime) -> int | None:
    """:func:`reserve` by a statement of its own (PostgreSQL: autocommit, one round trip)."""
    if not ip:
        return None
    with rt.db.write_once() as conn:
        return reserve(rt, conn, kind, ip, cap, now)


def release_alone(rt: Runtime, kind: str, ip: str | None) -> None:
    """:func:`release` by a statement of its own."""
    if not ip:
        return
    with rt.db.write_once() as conn:
        release(rt, conn, kind, ip)


def record_limited(rt: Runtime, conn: Connection, events: list[AuditEvent], kind: str, member_id: str | None, *,
                   ip: str | None, user_agent: str | None, retry_after: int, **details: Any) -> None:
    """The ``ip_limited`` row of a request refused because ``ip`` is over its ``kind`` limit."""
    auditing.record(rt, conn, events, audit.IP_LIMITED, member_id, outcome=audit.FAILED, ip=ip,
                    user_agent=user_agent, limit=kind, retry_after=retry_after, **details)


def over_limit(conn: Connection, caps: dict[str, int], now: datetime) -> dict[str, int]:
    """How many addresses are over each kind's cap in their current window (``otp-pro stats``)."""
    live = ip_counters.c.window_start > now - WINDOW
    return {kind: conn.execute(select(func.count()).where(
        ip_counters.c.kind == kind, live, ip_counters.c.count > cap)).scalar_one() for kind, cap in caps.items()}
