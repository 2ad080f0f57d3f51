"""Where a member stands: the policy's answer, which channels they can use now, grace period and lock.

The policy itself (roles resolved to the most onerous) is :mod:`otp_pro.policy`;
this module adds what depends on the member and the plugins: whether each
allowed channel is available to them (payload, recipient, the
``otp_pro_channel_available`` hook), and what the database says (enrolment,
grace period, lockout, backup codes left).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from .. import i18n, policy
from ..errors import ChannelUnavailable, PolicyError, RecipientUnavailable
from ..hookcall import OnError
from ..i18n import L_, N_
from ..member import Member
from ..results import ChannelInfo, MemberStatus, Standing
from ..storage.schema import backup_codes, members
from ..transports import TOTP
from . import factors, lockout
from .runtime import Runtime

requirement = factors.requirement


def unavailable_reason(rt: Runtime, member: Member, channel: str) -> str | None:
    """Why ``channel`` cannot be used by ``member`` now, or None when it can."""
    definition = rt.channels.get(channel)
    if definition is None:
        return N_("this channel is not installed")
    if definition.payload is not None:
        reason = definition.payload.available(member)
        if reason:
            return reason
    if definition.transport is not None:
        try:
            definition.transport.recipient(member)
        except RecipientUnavailable as exc:
            return exc.reason
    # A check that fails is no objection: the channel stays offered and the failure is logged.
    for answer in rt.host.call("otp_pro_channel_available", OnError.SKIP, otp=rt.otp, member=member,
                               channel=channel):
        if answer.value is False:
            return L_("hidden by plugin %(plugin)s", plugin=answer.plugin)
        if isinstance(answer.value, str) and answer.value:
            return answer.value
    return None


def available_channels(rt: Runtime, member: Member) -> list[ChannelInfo]:
    """The channels the policy allows for ``member``, each with its availability."""
    out = []
    for name in requirement(rt, member).channels:
        reason = unavailable_reason(rt, member, name)
        label = i18n.label(rt.channels[name].label) if name in rt.channels else name
        out.append(ChannelInfo(name, label, reason is None, reason))
    return out


def fallback_channels(rt: Runtime, member: Member, failed_channel: str | None = None) -> tuple[str, ...]:
    """The channels of the member's own delivered factors to fall back to after a failed delivery on
    ``failed_channel`` (policy order; a factor waiting to be re-confirmed is not one)."""
    with rt.db.read() as conn:
        state = rt.state(conn, member.id)
    own = {f.kind for f in factors.counted(rt, member, state) if not factors.needs_reconfirming(rt, member, f)}
    return tuple(name for name in requirement(rt, member).channels
                 if name in own and name != failed_channel and name != TOTP and name in rt.channels
                 and unavailable_reason(rt, member, name) is None)


def check_channel(rt: Runtime, member: Member, req: policy.Requirement, channel: str) -> None:
    """Raise why ``member`` may not use ``channel`` now (:class:`PolicyError`, :class:`ChannelUnavailable`)."""
    if req.requirement == policy.NOT_REQUIRED:
        raise PolicyError(L_("two-factor authentication is not offered to this member"))
    if channel not in rt.channels:
        raise ChannelUnavailable(f"unknown channel {channel!r}", channel=channel,
                                 reason=N_("this channel is not installed"))
    if channel not in req.channels:
        allowed = ", ".join(req.channels) or "none"
        raise ChannelUnavailable(
            f"channel {channel!r} is not allowed for this member (allowed: {allowed})",
            channel=channel,
            reason=N_("not allowed for this member's role"),
        )
    reason = unavailable_reason(rt, member, channel)
    if reason:
        raise ChannelUnavailable(f"channel {channel!r} is not available: {reason}", channel=channel, reason=reason)


def status(rt: Runtime, member: Member, *, start_grace: bool) -> MemberStatus:
    """:meth:`OtpPro.status`: the first look under a required policy starts the grace period (a write)."""
    req = requirement(rt, member)
    now = rt.clock()
    with rt.db.read() as conn:
        state = rt.state(conn, member.id)
        remaining = 0
        if state is not None and state.factors:
            remaining = conn.execute(
                select(func.count()).select_from(backup_codes).where(
                    backup_codes.c.member_id == member.id, backup_codes.c.used_at.is_(None)
                )
            ).scalar_one()
        owned = factors.infos(rt, member, state, conn)
    required_since = state.required_since if state is not None else None
    if req.is_required and required_since is None:
        required_since = _start_grace(rt, member.id, now) if start_grace else now
    elif not req.is_required and required_since is not None and start_grace:
        # No longer required: a later requirement starts a fresh grace period.
        with rt.db.write() as conn:
            conn.execute(update(members).where(members.c.member_id == member.id).values(required_since=None))
    available: list[str] = []
    unavailable: dict[str, str] = {}
    for name in req.channels:
        reason = unavailable_reason(rt, member, name)
        if reason is None:
            available.append(name)
        else:
            unavailable[name] = reason
    # A factor waiting to be re-confirmed still counts: its member must pass the second step (with
    # another factor or a backup code) before confirming a new address, or changing the profile
    # would be enough to take the factor over.
    # Not required (no channel offered): the factors are kept, and still say the member set one up.
    counting = list(owned) if req.requirement == policy.NOT_REQUIRED else \
        [f for f in owned if factors.counts(req, rt, f.kind)]
    enrolled = bool(counting)
    default_factor = next((f for f in counting if f.is_default), counting[0] if counting else None)
    grace_ends_at = required_since + timedelta(days=req.grace_days) if req.is_required and required_since else None
    in_grace = bool(req.is_required and not enrolled and grace_ends_at is not None and now < grace_ends_at)
    default = req.default_channel if req.default_channel in available else (available[0] if available else None)
    return MemberStatus(
        member_id=member.id,
        requirement=req.requirement,
        enrolled=enrolled,
        channel=default_factor.kind if default_factor is not None and enrolled else None,
        channels=tuple(available),
        default_channel=default,
        unavailable=unavailable,
        grace_ends_at=grace_ends_at,
        must_setup=bool(req.is_required and not enrolled and not in_grace),
        in_grace=in_grace,
        locked_until=lockout.locked_until(state, now),
        backup_codes_remaining=remaining,
        can_disable=enrolled and not req.is_required,
        disabled=state is not None and state.disabled_at is not None and not enrolled,
        seen=state is not None,
        factors=owned,
    )


def standing(rt: Runtime, member: Member) -> Standing:
    """:meth:`OtpPro.standing`: the gate's facts from the member's row and factors, one read statement.

    Nothing is cached between requests: a reset, a disable or a removed factor done by another
    process is seen by the next request. The first look under a required policy (the grace period
    starts: a write) and the first look after the policy stopped requiring the member take
    :func:`status`'s path; each happens once per member.
    """
    req = requirement(rt, member)
    now = rt.clock()
    with rt.db.read_once() as conn:
        state = rt.state(conn, member.id)
    required_since = state.required_since if state is not None else None
    if (required_since is None) == req.is_required:
        full = status(rt, member, start_grace=True)
        return Standing(full.member_id, full.requirement, full.enrolled, full.must_setup, full.in_grace)
    owned = state.factors if state is not None else ()
    # As status(): with no channel offered every factor still says the member set one up.
    enrolled = any(req.requirement == policy.NOT_REQUIRED or factors.counts(req, rt, f.kind) for f in owned)
    grace_ends_at = required_since + timedelta(days=req.grace_days) if req.is_required and required_since else None
    in_grace = bool(req.is_required and not enrolled and grace_ends_at is not None and now < grace_ends_at)
    return Standing(member_id=member.id, requirement=req.requirement, enrolled=enrolled,
                    must_setup=bool(req.is_required and not enrolled and not in_grace), in_grace=in_grace)


def _start_grace(rt: Runtime, member_id: str, now: datetime) -> datetime:
    with rt.db.write() as conn:
        rt.ensure_member(conn, member_id)
        conn.execute(
            update(members)
            .where(members.c.member_id == member_id, members.c.required_since.is_(None))
            .values(required_since=now, updated_at=now)
        )
        value = conn.execute(select(members.c.required_since).where(members.c.member_id == member_id)).scalar_one()
    return value or now
