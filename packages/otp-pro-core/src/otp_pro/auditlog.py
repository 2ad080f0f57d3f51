"""Reading the audit log for operators: filters, listing, streaming export and retention.

The ``otp-pro audit`` commands are thin wrappers around these functions, so a
site can call them from its own admin tooling too. Exports stream: rows are
fetched in batches (a server-side cursor on PostgreSQL, SQLite's stepping
cursor) and written as they come, so memory stays flat on millions of rows.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TextIO

from sqlalchemy import Select, delete, func, select

from . import audit
from .audit import AuditEvent
from .storage.schema import audit_events

if TYPE_CHECKING:
    from .core import OtpPro
    from .storage.db import Database

#: Export formats: ``csv`` (one header row), ``jsonl`` (one object a line), ``json`` (one array).
FORMATS = ("csv", "jsonl", "json")
COLUMNS = ("id", "at", "kind", "outcome", "member_id", "channel", "ip", "user_agent", "actor", "details")
BATCH_SIZE = 5_000

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_AGE = re.compile(r"^\s*(\d{1,7})\s*([smhdw])\s*$")
# Cells a spreadsheet would run as a formula (CSV injection); user agents come from anyone.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def parse_age(text: str) -> timedelta:
    """``"30d"``, ``"12h"``, ``"15m"``, ``"90s"``, ``"2w"`` as a :class:`timedelta`; :class:`ValueError` otherwise."""
    match = _AGE.match(text or "")
    if not match:
        raise ValueError(f"{text!r} is not an age like 30d, 12h, 15m, 90s or 2w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def parse_when(text: str, now: datetime) -> datetime:
    """An instant from an ISO date or date-time (UTC unless it says otherwise) or an age before ``now`` (``30d``).

    Raises :class:`ValueError` with a message fit for an operator.
    """
    value = (text or "").strip()
    if _AGE.match(value):
        try:
            return now - parse_age(value)
        except OverflowError:  # "9999999d": before the year 1, which datetime cannot hold
            raise ValueError(f"{text!r} reaches back before the year 1") from None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # In UTC, as the database compares it: 0001-01-01T00:00+01:00 is before the year 1 there.
        return parsed.astimezone(timezone.utc) if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)
    except OverflowError:
        raise ValueError(f"{text!r} is outside the years 1 to 9999 in UTC") from None
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an ISO date (2026-01-31, 2026-01-31T08:00) nor an age (30d, 12h)"
        ) from None


@dataclass(frozen=True)
class AuditFilter:
    """Which events: every given criterion must hold (``kinds`` is any-of; ``since`` inclusive, ``until`` not).

    ``ip`` and ``actor`` are exact matches (the address a request came from; the operator who acted).
    """

    member_id: str | None = None
    kinds: Sequence[str] = ()
    channel: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    ip: str | None = None
    actor: str | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        c = audit_events.c
        if self.member_id is not None:
            query = query.where(c.member_id == self.member_id)
        if self.kinds:
            query = query.where(c.kind.in_(list(self.kinds)))
        if self.channel is not None:
            query = query.where(c.channel == self.channel)
        if self.outcome is not None:
            query = query.where(c.outcome == self.outcome)
        if self.since is not None:
            query = query.where(c.at >= self.since)
        if self.until is not None:
            query = query.where(c.at < self.until)
        if self.ip is not None:
            query = query.where(c.ip == self.ip)
        if self.actor is not None:
            query = query.where(c.actor == self.actor)
        return query


def recorded_kinds(db: Database, among: Iterable[str] | None = None) -> set[str]:
    """The event kinds present in the log (only those of ``among``, when given: an index lookup each)."""
    query = select(audit_events.c.kind).distinct()
    if among is not None:
        query = query.where(audit_events.c.kind.in_(list(among)))
    with db.read() as conn:
        return set(conn.execute(query).scalars())


def unknown_kinds(db: Database, kinds: Iterable[str]) -> list[str]:
    """Those of ``kinds`` that are neither a core kind nor in the log: a typo, most likely."""
    candidates = [k for k in dict.fromkeys(kinds) if k not in audit.KINDS]
    if not candidates:
        return []
    found = recorded_kinds(db, candidates)
    return [k for k in candidates if k not in found]


def list_events(db: Database, where: AuditFilter = AuditFilter(), *, limit: int = 50) -> list[AuditEvent]:
    """The newest ``limit`` events matching ``where``, newest first."""
    query = where.apply(select(audit_events)).order_by(audit_events.c.id.desc()).limit(limit)
    with db.read() as conn:
        return [audit.from_row(r) for r in conn.execute(query)]


@dataclass(frozen=True)
class EventPage:
    """One page of :func:`page_events`: ``events`` newest first, and ``older`` (the ``before`` of the next page,
    None on the last one)."""

    events: list[AuditEvent]
    older: int | None


def page_events(db: Database, where: AuditFilter = AuditFilter(), *, before: int | None = None,
                limit: int = 50) -> EventPage:
    """The newest ``limit`` events matching ``where`` with an id below ``before``: keyset paging.

    Each page is ``WHERE id < :before ORDER BY id DESC LIMIT :limit + 1`` on the primary key, so page 10,000
    costs what page 1 costs: no ``OFFSET`` walks the rows before it, nothing is counted, and the table is
    never loaded. The extra row only says whether an older page exists.
    """
    query = where.apply(select(audit_events))
    if before is not None:
        query = query.where(audit_events.c.id < before)
    query = query.order_by(audit_events.c.id.desc()).limit(limit + 1)
    with db.read() as conn:
        events = [audit.from_row(r) for r in conn.execute(query)]
    more = len(events) > limit
    events = events[:limit]
    return EventPage(events, events[-1].id if more else None)


def count_events(db: Database, where: AuditFilter = AuditFilter()) -> int:
    """How many events match ``where``."""
    with db.read() as conn:
        return int(conn.execute(where.apply(select(func.count()).select_from(audit_events))).scalar_one())


def iter_rows(db: Database, where: AuditFilter = AuditFilter(), *,
              batch_size: int = BATCH_SIZE) -> Iterator[dict[str, Any]]:
    """Matching events oldest first as plain dicts (``at`` ISO 8601, ``details`` a dict), fetched in batches."""
    query = where.apply(select(audit_events)).order_by(audit_events.c.id)
    with db.read() as conn:
        # yield_per turns on stream_results: a named (server-side) cursor on PostgreSQL.
        result = conn.execution_options(yield_per=batch_size).execute(query)
        for partition in result.partitions():
            for row in partition:
                m = row._mapping
                yield {
                    "id": m["id"], "at": m["at"].isoformat(), "kind": m["kind"], "outcome": m["outcome"],
                    "member_id": m["member_id"], "channel": m["channel"], "ip": m["ip"],
                    "user_agent": m["user_agent"], "actor": m["actor"], "details": json.loads(m["details"] or "{}"),
                }


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def rows_as_text(rows: Iterable[dict[str, Any]], fmt: str) -> Iterator[str]:
    """``rows`` as ``csv``, ``jsonl`` or ``json`` text, one piece per row (the header and brackets apart)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(COLUMNS)
        yield _take(buffer)
    elif fmt == "json":
        yield "["
    count = 0
    for row in rows:
        if writer is not None:
            row["details"] = json.dumps(row["details"], sort_keys=True)
            writer.writerow([_csv_cell(row[c]) for c in COLUMNS])
            yield _take(buffer)
        elif fmt == "jsonl":
            yield json.dumps(row, default=str) + "\n"
        else:
            yield ("\n" if count == 0 else ",\n") + json.dumps(row, default=str)
        count += 1
    if fmt == "json":
        yield "\n]\n" if count else "]\n"


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def write_rows(rows: Iterable[dict[str, Any]], fmt: str, out: TextIO,
               progress: Callable[[int], None] | None = None) -> int:
    """Write ``rows`` to ``out`` as ``csv``, ``jsonl`` or ``json``; return how many. Streams: nothing is kept."""
    count = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal count
        for row in rows:
            yield row
            count += 1
            if progress is not None and count % 1000 == 0:
                progress(1000)

    for piece in rows_as_text(counted(), fmt):
        out.write(piece)
    if progress is not None and count % 1000:
        progress(count % 1000)
    return count


def export_chunks(db: Database, fmt: str, where: AuditFilter = AuditFilter(), *, batch_size: int = BATCH_SIZE,
                  chunk_chars: int = 64 * 1024) -> Iterator[str]:
    """The events matching ``where`` in ``fmt``, oldest first, as text chunks of about ``chunk_chars``.

    For a web response that streams: rows are read in batches as the chunks are taken, so memory stays flat
    however many events match. Closing the iterator early closes the database cursor.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    pending: list[str] = []
    size = 0
    for piece in rows_as_text(iter_rows(db, where, batch_size=batch_size), fmt):
        pending.append(piece)
        size += len(piece)
        if size >= chunk_chars:
            yield "".join(pending)
            pending, size = [], 0
    if pending:
        yield "".join(pending)


def export(db: Database, out: TextIO, fmt: str, where: AuditFilter = AuditFilter(), *,
           batch_size: int = BATCH_SIZE, progress: Callable[[int], None] | None = None) -> int:
    """Stream the events matching ``where`` to ``out`` in ``fmt``, oldest first; return how many were written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    return write_rows(iter_rows(db, where, batch_size=batch_size), fmt, out, progress)


def prune(otp: OtpPro, older_than: timedelta, *, actor: str | None = None, batch_size: int = 10_000) -> int:
    """Delete events older than ``older_than`` in short batches; record one ``audit_pruned`` event; return the count."""
    if older_than <= timedelta(0):
        raise ValueError("the age to prune must be positive")
    cutoff = otp.clock() - older_than
    deleted = 0
    while True:
        with otp.db.write() as conn:
            ids = select(audit_events.c.id).where(audit_events.c.at < cutoff).order_by(audit_events.c.id).limit(
                batch_size).scalar_subquery()
            count = conn.execute(delete(audit_events).where(audit_events.c.id.in_(ids))).rowcount
        deleted += count
        if count < batch_size:
            break
    otp.record_event(audit.AUDIT_PRUNED, actor=actor, deleted=deleted, cutoff=cutoff.isoformat(),
                     older_than_days=round(older_than.total_seconds() / 86400, 3))
    return deleted


__all__ = [
    "FORMATS", "AuditFilter", "EventPage", "count_events", "export", "export_chunks", "iter_rows", "list_events",
    "page_events", "parse_age", "parse_when", "prune", "rows_as_text", "write_rows",
]
