"""The console's statistics page: adoption, verification, lockouts, deliveries, delivery times, as charts.

The figures are :func:`otp_pro.stats.collect`'s (what ``otp-pro stats`` prints),
:mod:`otp_pro.stats_trends`' (factors set up per day, delivery-time percentiles) and
:mod:`otp_pro.stats_adoption`'s (members enrolled per day, by current role); :mod:`.charts` draws
them as inline SVG and the template writes each chart's numbers in a table beside it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from .... import stats, stats_adoption, stats_trends
from ..interface import Answer
from ..pages import page
from .charts import Chart, svg

if TYPE_CHECKING:
    from ..visit import Visit

#: The periods the page offers, in days; the first is the default.
PERIODS = (30, 7, 90, 365)
#: Roles are not stored over time (the site's member lookup says a member's roles now): the chart says so.
ROLES_NOTE = ("Each member counts under the roles they have now: otp-pro does not store past roles. Enrolment "
              "is read from the audit log (set-ups, disables, resets, a last factor removed).")
NO_ROLES_NOTE = ("Every member otp-pro recorded (no member lookup, so no roles). Enrolment is read from the audit "
                 "log (set-ups, disables, resets, a last factor removed).")


def _period(v: Visit) -> int:
    raw = v.request.args.get("days", "")
    return int(raw) if isinstance(raw, str) and raw.isdigit() and int(raw) in PERIODS else PERIODS[0]


def statistics(v: Visit) -> Answer:
    """``GET ?days=30``: the charts of the last ``days`` days, each with its numbers."""
    days = _period(v)
    core = v.core
    until = core.clock()
    start = until - timedelta(days=days)
    found = stats.collect(core, start, until=until)
    labels = stats_trends.days_between(start, until)
    setups = stats_trends.setups_per_day(core, start, until)
    times = stats_trends.delivery_times(core, start, until)
    daily = {row["day"]: row for row in found.daily}
    enrolled = stats_adoption.enrolled_per_day(core, start, until)

    def per_day(name: str) -> list[float]:
        return [daily.get(day, {}).get(name, 0) for day in labels]

    charts = [
        Chart("setups", "Factors set up, by kind (running total over the period)", "line", labels,
              {kind: [float(n) for n in stats_trends.cumulative(counts, labels)]
               for kind, counts in sorted(setups.items())}, unit="factors"),
        Chart("adoption", "Members enrolled now, by role", "bar",
              ["all roles" if a.role == stats.ALL_ROLES else a.role for a in found.adoption],
              {"enrolled": [float(a.enrolled) for a in found.adoption],
               "required, not enrolled": [float(a.required_not_enrolled) for a in found.adoption],
               "disabled": [float(a.disabled) for a in found.adoption]}, unit="members"),
        Chart("adoption_over_time", "Members enrolled over time, by current role", "line", labels,
              {("all members" if role == stats.ALL_ROLES else role): [float(n) for n in counts]
               for role, counts in sorted(enrolled.items(), key=lambda item: item[0] != stats.ALL_ROLES)},
              unit="members", note=ROLES_NOTE if found.roles_known else NO_ROLES_NOTE),
        Chart("verifications", "Verifications by factor kind", "bar", [c.channel for c in found.channels],
              {"succeeded": [float(c.verify_ok) for c in found.channels],
               "failed": [float(c.verify_failed) for c in found.channels]}, unit="attempts"),
        Chart("daily", "Verifications and lockouts per day", "line", labels,
              {"succeeded": per_day("verify_ok"), "failed": per_day("verify_failed"),
               "lockouts": per_day("lockouts")}, unit="events"),
        Chart("deliveries", "Deliveries per day", "line", labels,
              {"sent": per_day("challenges_sent"), "failed": per_day("delivery_failures")}, unit="messages"),
        Chart("delivery_times", "Delivery time by channel (percentiles)", "bar", [t.channel for t in times],
              {f"p{p}": [t.percentiles[p] for t in times] for p in stats_trends.PERCENTILES}, unit="ms"),
    ]
    return page("otp_pro/operator/statistics.html", charts=charts, stats=found, days=days, periods=PERIODS,
                failures=found.delivery_failures, times=times, chart_svg=svg)
