"""Who must use a second factor, and with which channels. Pure functions, no I/O.

The rules:

* site mode ``hidden``: nobody is asked, nothing is offered (a kill switch that
  role overrides do not lift);
* otherwise each of the member's roles has a requirement: its override in
  ``roles.<name>`` or, without one, the site default (``visible`` gives
  ``optional``, ``required`` gives ``required``); a member without roles gets the
  site default;
* the most onerous wins. Any required role makes the member required and offers
  the channels *every* required role allows (the intersection, so a role limited
  to ``totp`` is not widened by another role); if the required roles share no
  channel, their union is offered rather than locking the member out, and
  ``otp-pro config check`` warns about it. The shortest grace period of the
  required roles applies;
* otherwise any optional role makes the member optional, offered the union of
  the optional roles' channels;
* otherwise the member is not required and nothing is offered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .settings import Settings

NOT_REQUIRED = "not_required"
OPTIONAL = "optional"
REQUIRED = "required"
_RANK = {NOT_REQUIRED: 0, OPTIONAL: 1, REQUIRED: 2}
_MODE_DEFAULT = {"visible": OPTIONAL, "required": REQUIRED}


@dataclass(frozen=True)
class Requirement:
    """The policy's answer for one member.

    ``channels`` are the channels the policy allows, in preference order, before
    availability (a phone number on file, ...) is checked. ``roles`` are the roles
    that decided the answer (empty when the site default did).
    """

    requirement: str
    channels: tuple[str, ...]
    default_channel: str | None
    grace_days: int
    roles: tuple[str, ...] = ()

    @property
    def is_required(self) -> bool:
        return self.requirement == REQUIRED


@dataclass(frozen=True)
class _Entry:
    role: str | None
    requirement: str
    channels: tuple[str, ...]
    grace_days: int
    default_channel: str | None


def site_channels(settings: Settings, registered: Sequence[str]) -> tuple[str, ...]:
    """Channels offered site-wide: ``channels`` when set, else every registered channel."""
    if settings.channels is not None:
        return tuple(settings.channels)
    return tuple(registered)


def _entries(settings: Settings, roles: Iterable[str], registered: Sequence[str]) -> list[_Entry]:
    default_req = _MODE_DEFAULT[settings.mode]
    site = site_channels(settings, registered)
    out: list[_Entry] = []
    for role in dict.fromkeys(roles):  # keep order, drop repeats
        override = settings.roles.get(role)
        if override is None:
            out.append(_Entry(None, default_req, site, settings.grace_days, settings.default_channel))
        else:
            out.append(
                _Entry(
                    role,
                    override.requirement,
                    tuple(override.channels) if override.channels is not None else site,
                    override.grace_days if override.grace_days is not None else settings.grace_days,
                    override.default_channel or settings.default_channel,
                )
            )
    if not out:
        out.append(_Entry(None, default_req, site, settings.grace_days, settings.default_channel))
    return out


def _union(groups: Iterable[Sequence[str]]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for group in groups:
        for channel in group:
            seen.setdefault(channel, None)
    return tuple(seen)


def _intersection(groups: Sequence[Sequence[str]]) -> tuple[str, ...]:
    if not groups:
        return ()
    rest = [set(g) for g in groups[1:]]
    return tuple(c for c in dict.fromkeys(groups[0]) if all(c in g for g in rest))


def _pick_default(entries: Sequence[_Entry], channels: tuple[str, ...], site_default: str) -> str | None:
    for entry in entries:
        if entry.default_channel in channels:
            return entry.default_channel
    if site_default in channels:
        return site_default
    return channels[0] if channels else None


def resolve(settings: Settings, roles: Iterable[str], registered: Sequence[str]) -> Requirement:
    """Resolve the requirement for a member with ``roles``.

    ``registered`` is every channel the loaded plugins provide, in their
    preferred order; it is the site's channel set when ``channels`` is not set.
    """
    if settings.mode == "hidden":
        return Requirement(NOT_REQUIRED, (), None, 0)
    entries = _entries(settings, roles, registered)
    top = max(_RANK[e.requirement] for e in entries)
    deciding = [e for e in entries if _RANK[e.requirement] == top]
    decided_by = tuple(e.role for e in deciding if e.role is not None)
    if top == _RANK[NOT_REQUIRED]:
        return Requirement(NOT_REQUIRED, (), None, 0, decided_by)
    groups = [e.channels for e in deciding]
    if top == _RANK[REQUIRED]:
        channels = _intersection(groups) or _union(groups)
        grace = min(e.grace_days for e in deciding)
        default = _pick_default(deciding, channels, settings.default_channel)
        return Requirement(REQUIRED, channels, default, grace, decided_by)
    channels = _union(groups)
    return Requirement(OPTIONAL, channels, _pick_default(deciding, channels, settings.default_channel), 0, decided_by)


def conflicts(settings: Settings, registered: Sequence[str]) -> list[str]:
    """Pairs of required roles that share no channel (members holding both get the union)."""
    required = [r for r in settings.roles.values() if r.requirement == REQUIRED]
    site = site_channels(settings, registered)
    out = []
    for i, a in enumerate(required):
        for b in required[i + 1 :]:
            ca = set(a.channels if a.channels is not None else site)
            cb = set(b.channels if b.channels is not None else site)
            if not ca & cb:
                out.append(f"roles {a.name!r} and {b.name!r} are both required but share no channel")
    return out
