"""Adoption over time by each member's current role: how many members were enrolled at the end of each day.

otp-pro does not store roles: the site's member lookup says a member's roles now, not what they were. So this
series groups every member under the roles the lookup gives today, and the console labels it "by current
role": a member who moved from ``editor`` to ``staff`` last week counts as ``staff`` on every day.

Whether a member was enrolled on a day is read from the audit log's history of enrolment, member by member:

* ``setup_completed``: enrolled from then on (a second factor changes nothing);
* ``disabled``, ``reset``, and ``factor_removed`` with ``factors_left`` 0: not enrolled from then on;
* an "off" event while not enrolled means the member was enrolled before the log begins (pruned, or older
  than the audit log), so from the start;
* the member's row has the last word: a member enrolled now whose history ends not enrolled (setup events
  pruned) is enrolled since ``enrolled_at``; one not enrolled now is not enrolled after their last event.

Without a member lookup there is one series, every recorded member.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from . import audit
from .stats import ALL_ROLES, NO_ROLE, UNKNOWN_ROLE
from .stats_trends import days_between
from .storage.schema import audit_events, members

if TYPE_CHECKING:
    from .core import OtpPro

#: The audit kinds that change whether a member is enrolled.
_ON = (audit.SETUP_COMPLETED,)
_OFF = (audit.DISABLED, audit.RESET, audit.FACTOR_REMOVED)
#: Rows read from the database at a time.
_BATCH = 5_000

#: An enrolment interval: enrolled from ``on`` (None: since before the log) until ``off`` (None: still).
Interval = tuple[datetime | None, datetime | None]


def _intervals(history: list[tuple[datetime, str, str | None]], enrolled_at: datetime | None) -> list[Interval]:
    """The member's enrolment intervals from their history (oldest first) and their row's ``enrolled_at``."""
    found: list[Interval] = []
    on: datetime | None = None
    enrolled = False
    for at, kind, details in history:
        if kind in _ON:
            if not enrolled:
                on, enrolled = at, True
        elif kind == audit.FACTOR_REMOVED and json.loads(details or "{}").get("factors_left", 1) != 0:
            continue  # another factor is left: still enrolled
        elif enrolled:
            found.append((on, at))
            enrolled = False
        elif not found:  # switched off without a recorded start: enrolled since before the log
            found.append((None, at))
    if enrolled:
        found.append((on, None))
    if enrolled_at is not None and (not found or found[-1][1] is not None):
        found.append((enrolled_at, None))  # enrolled now, its setup not (or no longer) in the log
    elif enrolled_at is None and found and found[-1][1] is None:
        found[-1] = (found[-1][0], history[-1][0])  # not enrolled now: off by the last event at the latest
    return found


def enrolled_per_day(otp: OtpPro, start: datetime, until: datetime, *, roles: bool = True) -> dict[str, list[int]]:
    """Members enrolled at the end of each day of :func:`~otp_pro.stats_trends.days_between` ``(start, until)``:
    ``{role: [count per day]}``, with every member under :data:`~otp_pro.stats.ALL_ROLES` too, each role by the
    member lookup's answer today (``(unknown)`` for an id it does not know); only ``"*"`` without a lookup."""
    from .errors import UnknownMember

    days = days_between(start, until)
    # The instant each day's count is taken: its end, or ``until`` for the last day.
    ends = [min(datetime.fromisoformat(day).replace(tzinfo=until.tzinfo) + timedelta(days=1), until)
            for day in days]
    lookup = roles and otp.has_member_lookup
    counts: dict[str, list[int]] = {ALL_ROLES: [0] * (len(days) + 1)}
    histories: dict[str, list[tuple[datetime, str, str | None]]] = {}
    c = audit_events.c
    query = (select(c.member_id, c.at, c.kind, c.details)
             .where(c.kind.in_([*_ON, *_OFF]), c.member_id.is_not(None), c.at <= until).order_by(c.id))
    with otp.db.read() as conn:
        for partition in conn.execution_options(yield_per=_BATCH).execute(query).partitions():
            for member_id, at, kind, details in partition:
                # Only the details of a removed factor are read (factors_left); the rest stay unparsed.
                histories.setdefault(member_id, []).append((at, kind, details if kind == audit.FACTOR_REMOVED
                                                            else None))
    with otp.db.read() as conn:
        rows = conn.execution_options(yield_per=_BATCH).execute(
            select(members.c.member_id, members.c.enrolled_at).order_by(members.c.member_id))
        for batch in rows.partitions():
            for member_id, enrolled_at in batch:
                spans = _intervals(histories.pop(member_id, []), enrolled_at)
                if not spans:
                    continue
                names: tuple[str, ...] = ()
                if lookup:
                    try:
                        names = tuple(otp.member(member_id).roles) or (NO_ROLE,)
                    except UnknownMember:
                        names = (UNKNOWN_ROLE,)
                for on, off in spans:
                    # Counted on the days whose end falls in [on, off).
                    first = 0 if on is None else bisect_left(ends, on)
                    last = len(days) if off is None else bisect_left(ends, off)
                    if first >= last:
                        continue
                    for name in (ALL_ROLES, *names):
                        series = counts.setdefault(name, [0] * (len(days) + 1))
                        series[first] += 1
                        series[last] -= 1
    result: dict[str, list[int]] = {}
    for name, deltas in counts.items():
        total, running = 0, []
        for delta in deltas[:-1]:
            total += delta
            running.append(total)
        result[name] = running
    return result


__all__ = ["enrolled_per_day"]
