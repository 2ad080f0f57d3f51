"""Trends for the operator console's charts: factors set up per day by kind, and delivery times by channel.

:mod:`otp_pro.stats` counts a period (``otp-pro stats``); these two add what a chart over time needs and the
CLI does not print. As there, the database does the counting: a ``GROUP BY`` per day and kind, and the
delivery-time percentiles are picked in SQL (``percentile_cont`` on PostgreSQL; on SQLite, one ordered
``LIMIT 1 OFFSET k`` per percentile over the period's sent challenges of a channel), so nothing grows with
the number of rows in Python.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, cast, func, select

from . import audit
from .stats import MAX_DAILY_DAYS, _day, _day_column
from .storage.schema import audit_events, challenges

if TYPE_CHECKING:
    from .core import OtpPro

#: The delivery-time percentiles the console shows.
PERCENTILES = (50, 90, 99)


def days_between(start: datetime, until: datetime) -> list[str]:
    """Every UTC day from ``start`` to ``until`` as ISO text (the last :data:`~otp_pro.stats.MAX_DAILY_DAYS`)."""
    last = until.date()
    current = max(start.date(), last - timedelta(days=MAX_DAILY_DAYS - 1))
    days = []
    while current <= last:
        days.append(current.isoformat())
        current += timedelta(days=1)
    return days


def setups_per_day(otp: OtpPro, start: datetime, until: datetime) -> dict[str, dict[str, int]]:
    """Factors set up per UTC day, by kind (channel): ``{kind: {day: count}}`` (days without one left out)."""
    c = audit_events.c
    day = _day_column(otp).label("day")
    query = (select(day, c.channel, func.count())
             .where(c.kind == audit.SETUP_COMPLETED, c.at >= start, c.at <= until)
             .group_by(day, c.channel))
    found: dict[str, dict[str, int]] = defaultdict(dict)
    with otp.db.read() as conn:
        for when, channel, count in conn.execute(query):
            found[channel or "-"][_day(when)] = int(count)
    return dict(found)


@dataclass(frozen=True)
class DeliveryTimes:
    """How long the messages of one channel took from the challenge made to the provider's acceptance."""

    channel: str
    sent: int
    #: Milliseconds at each of :data:`PERCENTILES`.
    percentiles: dict[int, float]


def delivery_times(otp: OtpPro, start: datetime, until: datetime) -> list[DeliveryTimes]:
    """Delivery-time percentiles (ms) by channel for the challenges sent in the period."""
    c = challenges.c
    period = (c.sent_at.is_not(None), c.created_at >= start, c.created_at <= until)
    counts_query = select(c.channel, func.count()).where(*period).group_by(c.channel).order_by(c.channel)
    result = []
    with otp.db.read() as conn:
        counts = [(str(channel), int(n)) for channel, n in conn.execute(counts_query)]
        for channel, sent in counts:
            if otp.db.is_sqlite:
                result.append(DeliveryTimes(channel, sent, _sqlite_percentiles(conn, channel, sent, period)))
            else:
                result.append(DeliveryTimes(channel, sent, _pg_percentiles(conn, channel, period)))
    return result


def _sqlite_percentiles(conn: Any, channel: str, sent: int, period: tuple[Any, ...]) -> dict[int, float]:
    c = challenges.c
    ms = ((func.julianday(c.sent_at) - func.julianday(c.created_at)) * 86_400_000).label("ms")
    found = {}
    for p in PERCENTILES:
        # The nearest-rank percentile: the value at rank ceil(p/100 * n), 1-based.
        rank = max(1, -(-p * sent // 100))
        query = select(ms).where(c.channel == channel, *period).order_by(ms).limit(1).offset(rank - 1)
        found[p] = round(float(conn.execute(query).scalar_one()), 1)
    return found


def _pg_percentiles(conn: Any, channel: str, period: tuple[Any, ...]) -> dict[int, float]:
    c = challenges.c
    seconds = cast(func.extract("epoch", c.sent_at - c.created_at), Float)
    picks = [func.percentile_disc(p / 100).within_group(seconds) for p in PERCENTILES]
    row = conn.execute(select(*picks).where(c.channel == channel, *period)).one()
    return {p: round(float(value) * 1000, 1) for p, value in zip(PERCENTILES, row, strict=True)}


def cumulative(per_day: dict[str, int], days: list[str], before: int = 0) -> list[int]:
    """Running totals of ``per_day`` over ``days``, starting from ``before``."""
    total, out = before, []
    for day in days:
        total += per_day.get(day, 0)
        out.append(total)
    return out


__all__ = ["PERCENTILES", "DeliveryTimes", "cumulative", "days_between", "delivery_times", "setups_per_day"]
