"""Audit plumbing: a write transaction that collects events, the audit rows, and passing them to listeners.

Every change an operation makes is written with its audit row in one
transaction (:func:`transaction` + :func:`record`); once committed, the events
go to the ``otp_pro_event`` listeners (:func:`emit`), in the order they were
written.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, select

from .. import audit
from ..audit import AuditEvent
from ..hookcall import OnError
from ..member import Member
from ..storage.schema import audit_events
from .runtime import Runtime


@contextmanager
def transaction(rt: Runtime, member: Member | None = None) -> Iterator[tuple[Connection, list[AuditEvent]]]:
    """A write transaction; audit events collected in it are passed to listeners after commit.

    ``member`` is the :class:`Member` the caller was handed: listeners receive it with the events about them.
    """
    events: list[AuditEvent] = []
    with rt.db.write() as conn:
        yield conn, events
    emit(rt, events, member)


def record(
    rt: Runtime, conn: Connection, events: list[AuditEvent], kind: str, member_id: str | None, *,
    outcome: str = audit.INFO, channel: str | None = None, ip: str | None = None,
    user_agent: str | None = None, actor: str | None = None, **details: Any,
) -> None:
    """Write the audit row of ``kind`` in ``conn``'s transaction and add its event to ``events``."""
    event = AuditEvent(kind=kind, at=rt.clock(), outcome=outcome, member_id=member_id, channel=channel, ip=ip,
                       user_agent=user_agent, actor=actor, details=details)
    events.append(audit.write(rt.db, conn, event))


def emit(rt: Runtime, events: Sequence[AuditEvent], member: Member | None = None) -> None:
    """Pass committed ``events`` to every ``otp_pro_event`` listener, in commit order.

    Events recorded by a listener (a notification's ``notification_sent``) are
    queued behind the batch being passed on, so every listener sees every event
    in the order it was written.
    """
    local = rt.emitting
    batch = [(event, member if member is not None and event.member_id == member.id else None)
             for event in events]
    queue = getattr(local, "queue", None)
    if queue is not None:  # called from a listener: the outer loop delivers these next
        queue.extend(batch)
        return
    local.queue = queue = collections.deque(batch)
    try:
        while queue:
            event, who = queue.popleft()
            # A listener must not undo a committed change: its failure is logged.
            rt.host.call("otp_pro_event", OnError.LOG, otp=rt.otp, event=event, member=who)
    finally:
        local.queue = None


def record_event(
    rt: Runtime, kind: str, member_id: str | None, *, outcome: str, channel: str | None, ip: str | None,
    user_agent: str | None, actor: str | None, member: Member | None, details: dict[str, Any],
) -> AuditEvent:
    """A plugin's own audit event, written and passed to listeners (:meth:`OtpPro.record_event`)."""
    if outcome not in (audit.OK, audit.FAILED, audit.INFO):
        raise ValueError(f"outcome must be 'ok', 'failed' or 'info', not {outcome!r}")
    with transaction(rt, member) as (conn, events):
        record(rt, conn, events, kind, member_id, outcome=outcome, channel=channel, ip=ip,
               user_agent=user_agent, actor=actor, **details)
    return events[0]


def recent(rt: Runtime, member_id: str | None, kinds: Iterable[str] | None, limit: int) -> list[AuditEvent]:
    """Audit events, newest first, optionally for one member and some kinds."""
    query = select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
    if member_id is not None:
        query = query.where(audit_events.c.member_id == member_id)
    if kinds is not None:
        query = query.where(audit_events.c.kind.in_(list(kinds)))
    with rt.db.read() as conn:
        return [audit.from_row(r) for r in conn.execute(query)]
