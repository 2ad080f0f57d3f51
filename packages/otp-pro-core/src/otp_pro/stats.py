"""Statistics for operators: adoption, challenges, verification rates, lockouts, backup codes, delivery failures,
per-IP limits.

``otp-pro stats`` is a thin wrapper around :func:`collect`. The database does the
counting: every figure comes from a ``GROUP BY`` over ``otp_members`` or
``otp_audit_events`` (SQLite and PostgreSQL alike), so the work in Python is
proportional to the number of groups (days x kinds x channels), not to the
number of rows.

Roles are the one thing the database does not hold: the core stores no roles,
the site does. When a ``member_lookup`` plugin is installed (and ``roles=True``),
adoption is split by role: the recorded members' ids are streamed and each is
looked up once, keeping only counters. Without roles, adoption is one row
``"*"`` computed in SQL from what the core recorded (see :func:`collect`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Date, Select, and_, case, cast, func, select
from sqlalchemy.sql.elements import ColumnElement

from . import audit
from ._engine import ip_limits
from .storage.schema import audit_events, factors, members

if TYPE_CHECKING:
    from .core import OtpPro

#: The role of the one adoption row when roles are unknown.
ALL_ROLES = "*"
#: Role of members the ``member_lookup`` hook does not know, and of members without any role.
UNKNOWN_ROLE = "(unknown)"
NO_ROLE = "(no role)"
#: Channel reported for events recorded without one (an unknown magic-link token, a lockout).
NO_CHANNEL = "-"

#: Audit event kinds counted per day, and the name each has in the output.
ACTIVITY = {
    audit.CHALLENGE_SENT: "challenges_sent",
    audit.VERIFY_OK: "verify_ok",
    audit.VERIFY_FAILED: "verify_failed",
    audit.LOCKED_OUT: "lockouts",
    audit.BACKUP_CODE_USED: "backup_codes_used",
    audit.DELIVERY_FAILED: "delivery_failures",
}
_BATCH = 1_000


@dataclass
class Adoption:
    """Members of one role: how many the policy covers and how far they got."""

    role: str
    #: Members the policy offers or requires a second factor (see :func:`collect` for unknown roles).
    subjects: int = 0
    enrolled: int = 0
    required_not_enrolled: int = 0
    #: Among ``required_not_enrolled``: those whose grace period has not ended.
    in_grace: int = 0
    #: Members who switched the second factor off (or had it switched off) and are not enrolled.
    disabled: int = 0
    #: Enrolled members by channel.
    channels: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"role": self.role, "subjects": self.subjects, "enrolled": self.enrolled,
                "required_not_enrolled": self.required_not_enrolled, "in_grace": self.in_grace,
                "disabled": self.disabled, "channels": dict(sorted(self.channels.items()))}


@dataclass
class ChannelActivity:
    """Challenges and verification attempts on one channel."""

    channel: str
    challenges_sent: int = 0
    verify_ok: int = 0
    verify_failed: int = 0

    @property
    def attempts(self) -> int:
        return self.verify_ok + self.verify_failed

    @property
    def success_rate(self) -> float | None:
        """Share of verification attempts that succeeded, or ``None`` without attempts."""
        return round(self.verify_ok / self.attempts, 4) if self.attempts else None

    @property
    def failure_rate(self) -> float | None:
        return round(self.verify_failed / self.attempts, 4) if self.attempts else None

    def as_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "challenges_sent": self.challenges_sent, "verify_ok": self.verify_ok,
                "verify_failed": self.verify_failed, "success_rate": self.success_rate,
                "failure_rate": self.failure_rate}


@dataclass(frozen=True)
class DeliveryFailures:
    """Failed deliveries of one provider (transport) with one error."""

    provider: str
    error: str
    provider_code: str | None
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "error": self.error, "provider_code": self.provider_code,
                "count": self.count}


@dataclass(frozen=True)
class IpLimitActivity:
    """One per-IP limit: its cap, the requests it refused in the period, and the addresses over it now."""

    limit: str
    setting: str
    cap: int
    refusals: int
    addresses: int
    over_now: int

    def as_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "setting": self.setting, "cap": self.cap, "refusals": self.refusals,
                "addresses": self.addresses, "over_now": self.over_now}


@dataclass
class Stats:
    """Everything ``otp-pro stats`` shows. ``daily`` has one entry per UTC day from ``since`` to ``until``
    (the last :data:`MAX_DAILY_DAYS` days of a longer period; the totals cover all of it)."""

    since: datetime
    until: datetime
    roles_known: bool
    adoption: list[Adoption]
    channels: list[ChannelActivity]
    totals: dict[str, int]
    delivery_failures: list[DeliveryFailures]
    daily: list[dict[str, Any]]
    ip_limits: list[IpLimitActivity] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``otp-pro stats --json``)."""
        return {
            "since": self.since.isoformat(), "until": self.until.isoformat(), "roles_known": self.roles_known,
            "adoption": [a.as_dict() for a in self.adoption],
            "channels": [c.as_dict() for c in self.channels],
            "totals": dict(self.totals),
            "delivery_failures": [f.as_dict() for f in self.delivery_failures],
            "ip_limits": [i.as_dict() for i in self.ip_limits],
            "daily": self.daily,
        }


def collect(otp: OtpPro, since: datetime | timedelta = timedelta(days=30), *, until: datetime | None = None,
            roles: bool = True) -> Stats:
    """Count adoption now and activity between ``since`` (an instant, or an age before now) and ``until``.

    Adoption covers the members the core has recorded (a row in ``otp_members``:
    they started a setup, were seen while required, or an operator acted on
    them); members the site has but otp-pro never saw are not counted.

    With ``roles`` and a ``member_lookup`` plugin, each recorded member is
    looked up: the policy for their roles decides ``subjects`` (optional or
    required) and ``required_not_enrolled``, with the role's grace period;
    a member with several roles counts under each; ids the lookup does not know
    count under ``"(unknown)"``. Otherwise one row ``"*"`` is computed in SQL:
    every recorded member is a subject, "required" means the core recorded the
    member as required (``required_since``) the last time it looked, and the
    grace period is the site-wide ``grace_days``.
    """
    now = otp.clock()
    until = until or now
    start = now - since if isinstance(since, timedelta) else since
    if start > until:
        raise ValueError("the start of the period is after its end")
    lookup = roles and otp.has_member_lookup
    adoption = _adoption_by_role(otp, now) if lookup else [_adoption_sql(otp, now)]
    channels, totals, daily = _activity(otp, start, until)
    return Stats(since=start, until=until, roles_known=lookup, adoption=adoption, channels=channels, totals=totals,
                 delivery_failures=_delivery_failures(otp, start, until), daily=daily,
                 ip_limits=_ip_limits(otp, start, until, now))


# ----------------------------------------------------------------- adoption


def _adoption_sql(otp: OtpPro, now: datetime) -> Adoption:
    m = members.c
    not_enrolled = m.enrolled_at.is_(None)
    required = and_(not_enrolled, m.required_since.is_not(None))
    grace_cut = now - timedelta(days=otp.settings.grace_days)

    def total(condition: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    query = select(func.count(), func.count(m.enrolled_at), total(required),
                   total(and_(required, m.required_since > grace_cut)),
                   total(and_(not_enrolled, m.disabled_at.is_not(None))))
    with otp.db.read() as conn:
        subjects, enrolled, req, grace, disabled = conn.execute(query.select_from(members)).one()
        # A member with two kinds of factor counts under each.
        by_channel = conn.execute(select(factors.c.kind, func.count(factors.c.member_id.distinct()))
                                  .group_by(factors.c.kind))
        channels = {str(channel): int(count) for channel, count in by_channel}
    return Adoption(ALL_ROLES, int(subjects), int(enrolled), int(req), int(grace), int(disabled), channels)


def _recorded_members(otp: OtpPro) -> Iterator[tuple[Any, tuple[str, ...]]]:
    """Every member's row with the kinds of their factors, a batch of members (and their factors) at a time."""
    m = members.c
    query = select(m.member_id, m.enrolled_at, m.required_since, m.disabled_at).order_by(m.member_id)
    with otp.db.read() as conn:
        for partition in conn.execution_options(yield_per=_BATCH).execute(query).partitions():
            ids = [row.member_id for row in partition]
            kinds: dict[str, list[str]] = {}
            with otp.db.read() as kinds_conn:
                for member_id, kind in kinds_conn.execute(
                        select(factors.c.member_id, factors.c.kind).where(factors.c.member_id.in_(ids))
                        .order_by(factors.c.id)):
                    own = kinds.setdefault(member_id, [])
                    if kind not in own:
                        own.append(kind)
            for row in partition:
                yield row, tuple(kinds.get(row.member_id, ()))


def _adoption_by_role(otp: OtpPro, now: datetime) -> list[Adoption]:
    from . import policy
    from .errors import UnknownMember
    from .member import Member

    rows: dict[str, Adoption] = {}
    everyone = Adoption(ALL_ROLES)
    for row, kinds in _recorded_members(otp):
        try:
            member = otp.member(row.member_id)
            role_names = tuple(member.roles) or (NO_ROLE,)
        except UnknownMember:
            member, role_names = Member(row.member_id), (UNKNOWN_ROLE,)
        req = otp.requirement(member)
        enrolled = row.enrolled_at is not None
        subject = req.requirement != policy.NOT_REQUIRED
        required = req.is_required and not enrolled
        # A required member not seen since becoming required starts the grace period on the next visit.
        grace = required and (row.required_since or now) + timedelta(days=req.grace_days) > now
        disabled = not enrolled and row.disabled_at is not None
        for target in (everyone, *(rows.setdefault(r, Adoption(r)) for r in role_names)):
            target.subjects += subject
            target.enrolled += enrolled
            target.required_not_enrolled += required
            target.in_grace += grace
            target.disabled += disabled
            for kind in kinds if enrolled else ():
                target.channels[kind] = target.channels.get(kind, 0) + 1
    return [everyone, *(rows[name] for name in sorted(rows))]


# ----------------------------------------------------------------- activity


#: The most days ``Stats.daily`` lists (the last ones of the period): ten years.
MAX_DAILY_DAYS = 3660


def _day(value: Any) -> str:
    """A UTC day as ISO text: SQLite's ``date()`` gives text, PostgreSQL's cast gives a ``date``."""
    return value.isoformat() if isinstance(value, date) else str(value)[:10]


def _day_column(otp: OtpPro) -> ColumnElement[Any]:
    # Times are stored as naive UTC, so the database's day is the UTC day.
    at = audit_events.c.at
    return func.date(at) if otp.db.is_sqlite else cast(at, Date)


def _activity(otp: OtpPro, start: datetime, until: datetime) -> tuple[list[ChannelActivity], dict[str, int],
                                                                       list[dict[str, Any]]]:
    c = audit_events.c
    day = _day_column(otp).label("day")
    query: Select[Any] = (
        select(day, c.kind, c.channel, func.count())
        .where(c.at >= start, c.at <= until, c.kind.in_(list(ACTIVITY)))
        .group_by(day, c.kind, c.channel)
    )
    by_channel: dict[str, ChannelActivity] = {}
    totals: Counter[str] = Counter({name: 0 for name in ACTIVITY.values()})
    days: dict[str, Counter[str]] = {}
    with otp.db.read() as conn:
        for when, kind, channel, count in conn.execute(query):
            name = ACTIVITY[kind]
            totals[name] += count
            days.setdefault(_day(when), Counter())[name] += count
            if name in ("challenges_sent", "verify_ok", "verify_failed"):
                entry = by_channel.setdefault(channel or NO_CHANNEL, ChannelActivity(channel or NO_CHANNEL))
                setattr(entry, name, getattr(entry, name) + count)
    daily = []
    last = until.date()
    # A day is a dict: "--since 0001-01-01" would otherwise build 740,000 of them (a gigabyte).
    current = max(start.date(), last - timedelta(days=MAX_DAILY_DAYS - 1))
    while current <= last:
        counts = days.get(current.isoformat(), Counter())
        daily.append({"day": current.isoformat(), **{name: counts[name] for name in ACTIVITY.values()}})
        current += timedelta(days=1)
    return [by_channel[k] for k in sorted(by_channel)], dict(totals), daily


def _detail(otp: OtpPro, key: str) -> ColumnElement[Any]:
    """One field of the JSON ``details`` column as text, in the database."""
    if otp.db.is_sqlite:
        return func.json_extract(audit_events.c.details, f"$.{key}")
    return cast(audit_events.c.details, JSON)[key].as_string()


def _delivery_failures(otp: OtpPro, start: datetime, until: datetime) -> list[DeliveryFailures]:
    c = audit_events.c
    provider, error, code = _detail(otp, "transport"), _detail(otp, "error"), _detail(otp, "provider_code")
    query = (
        select(provider, error, code, func.count())
        .where(c.kind == audit.DELIVERY_FAILED, c.at >= start, c.at <= until)
        .group_by(provider, error, code)
    )
    with otp.db.read() as conn:
        rows = [DeliveryFailures(str(p or NO_CHANNEL), str(e or "unknown"), None if k is None else str(k), int(n))
                for p, e, k, n in conn.execute(query)]
    return sorted(rows, key=lambda r: (-r.count, r.provider, r.error, r.provider_code or ""))


def _ip_limits(otp: OtpPro, start: datetime, until: datetime, now: datetime) -> list[IpLimitActivity]:
    """Each per-IP limit's refusals in the period (``ip_limited`` rows) and the addresses over it now."""
    c = audit_events.c
    limit = _detail(otp, "limit")
    query = (
        select(limit, func.count(), func.count(func.distinct(c.ip)))
        .where(c.kind == audit.IP_LIMITED, c.at >= start, c.at <= until)
        .group_by(limit)
    )
    caps = {kind: getattr(otp.settings, setting) for kind, setting in ip_limits.CAPS.items()}
    with otp.db.read() as conn:
        refused = {str(kind): (int(n), int(addresses)) for kind, n, addresses in conn.execute(query)}
        over = ip_limits.over_limit(conn, caps, now)
    return [IpLimitActivity(kind, setting, caps[kind], *refused.get(kind, (0, 0)), over[kind])
            for kind, setting in ip_limits.CAPS.items()]


__all__ = ["ACTIVITY", "ALL_ROLES", "Adoption", "ChannelActivity", "DeliveryFailures", "IpLimitActivity", "Stats",
           "collect"]
