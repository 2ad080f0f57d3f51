"""Member support for operators: find a member, report where they stand, search by id or email.

``otp-pro members`` and the operator console (:mod:`otp_pro.web.flow.operator`) both stand on these
functions, so the console shows exactly what ``otp-pro members show --json`` prints. The actions
themselves (disable, reset, unlock, remove a factor) are :class:`~otp_pro.OtpPro` methods, audited with
the ``actor`` each caller passes.

The core owns no accounts: a member's roles and addresses come from the member lookup (the
``member_lookup`` setting or an ``otp_pro_member_lookup`` plugin). Without one, an id is a bare
``Member(id)``; :func:`find_member` says so (``known`` false) and the report leaves the policy's answers
unknown (null) instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from .audit import AuditEvent
from .errors import UnknownMember
from .member import Member
from .results import FactorInfo
from .storage.schema import factors, members

if TYPE_CHECKING:
    from .core import OtpPro

#: Why a member's roles and addresses are unknown when no member lookup is set up at all.
NO_LOOKUP = ("no member lookup is set up (set member_lookup = \"package.module:function\" in the settings, "
             "or install an otp_pro_member_lookup plugin)")
#: Events a member report lists, newest first.
REPORT_EVENTS = 20
#: Most matches a search answers.
SEARCH_LIMIT = 50


def iso(value: datetime | None) -> str | None:
    """A date-time in ISO 8601, or ``None``."""
    return value.isoformat() if value is not None else None


def event_dict(e: AuditEvent) -> dict[str, Any]:
    """An audit event as JSON-ready data."""
    return {"id": e.id, "at": iso(e.at), "kind": e.kind, "outcome": e.outcome, "member_id": e.member_id,
            "channel": e.channel, "ip": e.ip, "user_agent": e.user_agent, "actor": e.actor, "details": dict(e.details)}


def find_member(otp: OtpPro, member_id: str) -> tuple[Member, bool]:
    """The member ``member_id`` from the member lookup, or a bare ``Member(member_id)``; and whether it is known.

    ``known`` false: no lookup is set up (:attr:`OtpPro.has_member_lookup`) or it does not know the id, so
    roles and addresses are unknown. Raises :class:`~otp_pro.member.InvalidMember` for an id no member can
    have and :class:`~otp_pro.errors.PluginError` when the lookup fails.
    """
    bare = Member(member_id)
    if not otp.has_member_lookup:
        return bare, False
    try:
        return otp.member(bare.id), True
    except UnknownMember:
        return bare, False


def unknown_reason(otp: OtpPro) -> str:
    """Why :func:`find_member` answered ``known`` false."""
    return NO_LOOKUP if not otp.has_member_lookup else "the member lookup does not know the id"


def factor_dict(info: FactorInfo, known: bool) -> dict[str, Any]:
    """A factor as JSON-ready data; without the member's roles and addresses, whether it counts is unknown (null)."""
    return {
        "id": info.id, "kind": info.kind, "label": info.label, "own_label": info.own_label,
        "default": info.is_default, "created_at": iso(info.created_at), "last_used_at": iso(info.last_used_at),
        "recipient_hint": info.recipient_hint,
        # Judged against the member record (its address) and the role: a bare id has neither.
        "needs_reconfirming": info.needs_reconfirming if known else None,
        "usable": info.usable if known else None,
        "reason": info.reason if known else None,
    }


def member_report(otp: OtpPro, member: Member, known: bool, *, events: int = REPORT_EVENTS) -> dict[str, Any]:
    """Where ``member`` stands, as JSON-ready data: requirement, grace, factors, lock, devices, recent events.

    Looking does not start a grace period. Without ``known`` roles the policy's answers (requirement, grace,
    channels, whether a factor counts) are null: the site default dressed up as fact would mislead.
    ``seen`` says whether otp-pro holds any state for the member at all.
    """
    status = otp.status(member, start_grace=False)
    devices = otp.trusted_devices(member)
    return {
        "member": {"id": member.id, "roles": list(member.roles) if known else None, "roles_known": known,
                   "email": member.email, "name": member.name},
        "seen": status.seen,
        "requirement": status.requirement if known else None,
        "enrolled": status.enrolled,
        "channel": status.channel,
        "disabled": status.disabled,
        "channels": list(status.channels) if known else None,
        "unavailable": dict(status.unavailable) if known else None,
        "in_grace": status.in_grace if known else None,
        "grace_ends_at": iso(status.grace_ends_at) if known else None,
        "must_setup": status.must_setup if known else None,
        "locked_until": iso(status.locked_until),
        "factors": [factor_dict(f, known) for f in status.factors],
        "backup_codes_remaining": status.backup_codes_remaining,
        "trusted_devices": [
            {"id": d.id, "label": d.label, "created_at": iso(d.created_at), "expires_at": iso(d.expires_at),
             "last_used_at": iso(d.last_used_at)} for d in devices
        ],
        "events": [event_dict(e) for e in otp.events(member, limit=events)],
    }


@dataclass(frozen=True)
class Match:
    """A member a search found: ``member_id``, and ``how`` (``id``, ``id prefix`` or ``email``)."""

    member_id: str
    how: str


def search(otp: OtpPro, query: str, *, limit: int = SEARCH_LIMIT) -> list[Match]:
    """Members matching ``query``: its exact id, ids that start with it, and members with a factor at that email.

    An email matches the address a delivered factor was confirmed at (compared by its keyed hash: addresses
    are stored encrypted), and the member lookup's record when the query is also an id it knows. Ids are found
    through the members table's primary key; the email through the factors' recipient hashes (a few per member).
    """
    text = query.strip()[:255]
    if not text:
        return []
    found: dict[str, str] = {}
    c = members.c
    # LIKE with its wildcards escaped: "a_b%" means those characters, not patterns.
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    with otp.db.read() as conn:
        exact = conn.execute(select(c.member_id).where(c.member_id == text)).scalar_one_or_none()
        if exact is not None:
            found[exact] = "id"
        prefixed = select(c.member_id).where(c.member_id.like(escaped + "%", escape="\\")).order_by(
            c.member_id).limit(limit)
        for member_id in conn.execute(prefixed).scalars():
            found.setdefault(member_id, "id prefix")
        if "@" in text:
            # As _engine.messages.recipient_hash keys a factor's address.
            digest = otp.keys.hash("recipient", text.lower())
            by_address = select(factors.c.member_id).where(factors.c.recipient_hash == digest).distinct().limit(limit)
            for member_id in conn.execute(by_address).scalars():
                found.setdefault(member_id, "email")
    if not found and otp.has_member_lookup:
        try:
            found[otp.member(text).id] = "id"  # a member the lookup knows but otp-pro holds nothing for yet
        except (UnknownMember, ValueError):
            pass
    return [Match(member_id, how) for member_id, how in list(found.items())[:limit]]


__all__ = ["NO_LOOKUP", "Match", "event_dict", "factor_dict", "find_member", "iso", "member_report", "search",
           "unknown_reason"]
