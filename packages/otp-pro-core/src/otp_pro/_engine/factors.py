"""A member's factors: which one a send goes to, which ones count, and the member's changes to them.

A factor is added by a completed setup (:func:`~otp_pro._engine.enrolment.enrol`).
A delivered factor is bound to the address its setup confirmed: a send goes
there only while the member record still shows that address (compared by keyed
hash); another address there means the factor needs re-confirming, and nothing
is sent to either (:func:`bound_recipient`). A factor counts while its channel
is installed and allowed by the member's role (:func:`counts`). Every change is
audited in the transaction that makes it. Removing a factor revokes the member's
trusted devices, as adding one does (a device trusted under one set of factors
does not vouch for another); a new label or default changes no factor, and
revokes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, case, delete, func, select, update

from .. import audit, i18n, policy
from ..crypto import constant_time_in
from ..errors import (
    ChannelUnavailable,
    FactorNeedsReconfirming,
    FactorNotEnrolled,
    InvalidFactorLabel,
    NotEnrolled,
    PolicyError,
    RecipientUnavailable,
    SetupError,
    UnknownFactor,
)
from ..i18n import L_, N_
from ..member import Member
from ..results import ChallengeStatus, FactorInfo
from ..storage.schema import backup_codes, challenges, factors, members
from ..transports import TOTP, recipient_hint
from . import auditing, devices
from .messages import recipient_hash
from .runtime import FactorRow, MemberState, Runtime

#: The longest label a member may give a factor (the column's width).
MAX_LABEL = 100


def clean_label(label: object) -> str | None:
    """``label`` trimmed, or None for none; :class:`InvalidFactorLabel` names what is wrong with it."""
    if label is None:
        return None
    if not isinstance(label, str):
        raise InvalidFactorLabel(L_("a name must be text, not %(type)s", type=type(label).__name__))
    text = " ".join(label.split())
    if len(text) > MAX_LABEL:
        raise InvalidFactorLabel(L_("a name is at most %(max)d characters (this one has %(length)d)", max=MAX_LABEL,
                                    length=len(text)))
    if any(ord(ch) < 32 for ch in text):
        raise InvalidFactorLabel(L_("a name cannot hold control characters"))
    return text or None


def _same_address(rt: Runtime, stored_hash: str, recipient: str) -> bool:
    """Whether ``recipient`` is the address hashed as ``stored_hash`` (under the current or an older key)."""
    candidates = [value.encode() for value in rt.keys.hashes("recipient", recipient.strip().lower())]
    return constant_time_in(stored_hash.encode(), candidates) >= 0


def current_recipient(rt: Runtime, member: Member, channel: str) -> str | None:
    """The address the member record shows now for ``channel``'s transport, or None when it shows none."""
    definition = rt.channels.get(channel)
    if definition is None or definition.transport is None:
        return None
    try:
        return definition.transport.recipient(member)
    except RecipientUnavailable:
        return None


def needs_reconfirming(rt: Runtime, member: Member, factor: FactorRow) -> bool:
    """Whether the member record shows another address than ``factor`` was confirmed at."""
    if factor.recipient_hash is None:
        return False  # carried over from the one-channel schema: bound at its next send
    now_shown = current_recipient(rt, member, factor.kind)
    return now_shown is not None and not _same_address(rt, factor.recipient_hash, now_shown)


def bound_recipient(rt: Runtime, member: Member, factor: FactorRow) -> str:
    """The address a send to ``factor`` goes to: the one its setup confirmed, which the member record must
    still show.

    :class:`FactorNeedsReconfirming` when the record shows another (someone who
    changed the profile must not receive the codes), :class:`ChannelUnavailable`
    when it shows none. A factor carried over from the one-channel schema, with no
    address yet, is bound to the record's address now (:func:`bind_carried_over`).
    """
    now_shown = current_recipient(rt, member, factor.kind)
    if now_shown is None:
        raise ChannelUnavailable(f"channel {factor.kind!r} is not available: the member record shows no address",
                                 channel=factor.kind, reason=N_("the member record shows no address"))
    if factor.recipient_hash is None:
        bind_carried_over(rt, member, factor, now_shown)
    elif not _same_address(rt, factor.recipient_hash, now_shown):
        raise FactorNeedsReconfirming(
            f"the {factor.kind} factor was confirmed at another address than the member record shows now: "
            "confirm the new address first", channel=factor.kind, reason="needs re-confirming", factor_id=factor.id)
    elif factor.recipient_hint is None:  # the migration found its hash only: the address is kept now
        keep_carried_over_address(rt, factor, now_shown)
    return now_shown


def address_values(rt: Runtime, kind: str, recipient: str) -> dict[str, str]:
    """The columns that bind a factor of ``kind`` to ``recipient``: the address sealed, its keyed hash and the
    masked hint its transport makes."""
    definition = rt.channels.get(kind)
    return {"recipient": rt.keys.encrypt(recipient), "recipient_hash": recipient_hash(rt, recipient),
            "recipient_hint": recipient_hint(definition.transport if definition else None, recipient)[:100]}


def bind_carried_over(rt: Runtime, member: Member, factor: FactorRow, recipient: str) -> None:
    """Bind a factor carried over from the one-channel schema to ``recipient`` (once: the first caller wins)."""
    values = address_values(rt, factor.kind, recipient)
    with auditing.transaction(rt, member) as (conn, events):
        unbound = and_(factors.c.id == factor.id, factors.c.recipient_hash.is_(None))
        if conn.execute(update(factors).where(unbound).values(**values)).rowcount:
            auditing.record(rt, conn, events, audit.FACTOR_BOUND, member.id, channel=factor.kind, factor_id=factor.id,
                            recipient=values["recipient_hint"])


def requirement(rt: Runtime, member: Member) -> policy.Requirement:
    """The policy's answer for ``member`` (no database access)."""
    return rt.requirement(member.roles)


def keep_carried_over_address(rt: Runtime, factor: FactorRow, recipient: str) -> None:
    """Keep, encrypted, the address of a carried-over factor whose keyed hash the migration took from its setup,
    now that the member record showed that very address (once; nothing changes, so nothing is audited)."""
    values = address_values(rt, factor.kind, recipient)
    with rt.db.write() as conn:
        conn.execute(update(factors).where(factors.c.id == factor.id, factors.c.recipient.is_(None)).values(
            recipient=values["recipient"], recipient_hint=values["recipient_hint"]))


def counts(req: policy.Requirement, rt: Runtime, kind: str) -> bool:
    """Whether a factor of ``kind`` counts for a member with requirement ``req``: installed and allowed."""
    return kind in rt.channels and kind in req.channels


def counted(rt: Runtime, member: Member, state: MemberState | None,
            req: policy.Requirement | None = None) -> tuple[FactorRow, ...]:
    """The member's factors that count now (installed, allowed by the role)."""
    if state is None or not state.factors:
        return ()
    req = req or requirement(rt, member)
    return tuple(f for f in state.factors if counts(req, rt, f.kind))


def pick(rt: Runtime, member: Member, state: MemberState | None, channel: str | None,
         req: policy.Requirement) -> FactorRow:
    """The factor a send goes to: the member's default one, or their one on ``channel``.

    Raises :class:`NotEnrolled` (no factor that counts), :class:`FactorNotEnrolled`
    (no factor on that channel), :class:`ChannelUnavailable` (an authenticator app
    has nothing to send, or the role no longer allows the channel).
    """
    usable = counted(rt, member, state, req)
    if not usable:
        raise NotEnrolled(L_("the member has no second factor set up"))
    if channel is None:
        default = next((f for f in usable if f.is_default), usable[0])
        if default.kind == TOTP:
            raise ChannelUnavailable("an authenticator app has nothing to send: ask for its code", channel=TOTP,
                                     reason=N_("an authenticator app has nothing to send"))
        return default
    if channel == TOTP:
        raise ChannelUnavailable("an authenticator app has nothing to send: ask for its code", channel=TOTP,
                                 reason=N_("an authenticator app has nothing to send"))
    on_channel = [f for f in usable if f.kind == channel]
    if not on_channel:
        assert state is not None
        if any(f.kind == channel for f in state.factors):
            raise ChannelUnavailable(f"channel {channel!r} is not allowed for this member", channel=channel,
                                     reason=N_("not allowed for this member's role"))
        raise FactorNotEnrolled(f"the member has no factor on channel {channel!r}: only their own factors are used",
                                channel=channel, reason="not enrolled")
    # Of several on one channel (a work and a home phone), the one the record's address is bound to;
    # else the default, else the first, which then says why it cannot be used.
    now_shown = current_recipient(rt, member, channel)
    for factor in on_channel:
        if now_shown is not None and factor.recipient_hash is not None \
                and _same_address(rt, factor.recipient_hash, now_shown):
            return factor
    return next((f for f in on_channel if f.is_default), on_channel[0])


def infos(rt: Runtime, member: Member, state: MemberState | None, conn: Connection) -> tuple[FactorInfo, ...]:
    """The member's factors as :class:`FactorInfo`, with the label, the times and the last use (a delivered
    factor's from its latest consumed challenge; a TOTP app's from its last step)."""
    if state is None or not state.factors:
        return ()
    listed = {row.id: row for row in conn.execute(select(
        factors.c.id, factors.c.label, factors.c.created_at, factors.c.last_used_at).where(
        factors.c.member_id == member.id))}
    used = dict(conn.execute(select(challenges.c.factor_id, func.max(challenges.c.consumed_at)).where(
        challenges.c.member_id == member.id, challenges.c.factor_id.is_not(None),
        challenges.c.consumed_at.is_not(None)).group_by(challenges.c.factor_id)).all())
    req = requirement(rt, member)
    default = state.default_factor
    out = []
    for factor in state.factors:
        row = listed.get(factor.id)
        if row is None:  # removed between the two reads
            continue
        definition = rt.channels.get(factor.kind)
        factor_type = definition.factor_type if definition is not None else None
        by_counter = factor_type.used_at(factor.last_step) \
            if factor_type is not None and factor.last_step is not None else None
        last = max((t for t in (row.last_used_at, used.get(factor.id), by_counter) if t is not None), default=None)
        stale = needs_reconfirming(rt, member, factor)
        reason = None
        if definition is None:
            reason = N_("this channel is not installed")
        elif factor.kind not in req.channels:
            reason = N_("not allowed for this member's role")
        elif stale:
            reason = N_("the member record shows another address: confirm it again")
        # The channel's name in the current language (a page's); the member's own name as they wrote it.
        label = row.label or (i18n.label(definition.label) if definition is not None else factor.kind)
        out.append(FactorInfo(
            id=factor.id, kind=factor.kind, label=label, is_default=default is not None and factor.id == default.id,
            created_at=row.created_at, last_used_at=last, recipient_hint=factor.recipient_hint,
            needs_reconfirming=stale, usable=reason is None, reason=reason, own_label=row.label))
    return tuple(out)


def listing(rt: Runtime, member: Member) -> list[FactorInfo]:
    """:meth:`OtpPro.factors`."""
    with rt.db.read() as conn:
        return list(infos(rt, member, rt.state(conn, member.id), conn))


def owned(state: MemberState | None, factor_id: object) -> FactorRow:
    """The member's factor ``factor_id`` (an int or its digits), or :class:`UnknownFactor`."""
    wanted = factor_id if isinstance(factor_id, int) and not isinstance(factor_id, bool) else \
        int(factor_id) if isinstance(factor_id, str) and factor_id.isascii() and factor_id.isdigit() \
        and len(factor_id) < 19 else None
    found = state.factor(wanted) if state is not None and wanted is not None else None
    if found is None:
        raise UnknownFactor(factor_id)
    return found


def remove(rt: Runtime, member: Member, factor_id: object, *, actor: str | None, force: bool, ip: str | None,
           user_agent: str | None) -> None:
    """:meth:`OtpPro.remove_factor`."""
    now = rt.clock()
    req = requirement(rt, member)
    with auditing.transaction(rt, member) as (conn, events):
        state = rt.state(conn, member.id, for_update=True)
        factor = owned(state, factor_id)
        assert state is not None
        left = [f for f in state.factors if f.id != factor.id]
        if req.is_required and not force and counts(req, rt, factor.kind) \
                and not any(counts(req, rt, f.kind) for f in left):
            raise PolicyError("this is the member's last factor their role allows, and their role requires one: "
                              "add another factor first")
        conn.execute(delete(factors).where(factors.c.id == factor.id))
        values: dict[str, object] = {"updated_at": now}
        if not left:
            # No factor left: the member is no longer enrolled, and the recovery set goes with the last factor.
            values.update(enrolled_at=None, backup_salt=None, backup_key_id=None)
            conn.execute(delete(backup_codes).where(backup_codes.c.member_id == member.id))
        elif factor.is_default:
            conn.execute(update(factors).where(factors.c.id == left[0].id).values(is_default=True))
        conn.execute(update(members).where(members.c.member_id == member.id).values(**values))
        # A code already sent to the factor is void with it; a queued one is never sent.
        conn.execute(update(challenges).where(
            challenges.c.factor_id == factor.id, challenges.c.consumed_at.is_(None),
            challenges.c.invalidated_at.is_(None)).values(
                invalidated_at=now, message=None,
                status=case((challenges.c.status == ChallengeStatus.QUEUED, ChallengeStatus.REPLACED),
                            else_=challenges.c.status)))
        revoked = devices.revoke_all(conn, member.id, now)
        auditing.record(rt, conn, events, audit.FACTOR_REMOVED, member.id, channel=factor.kind, actor=actor, ip=ip,
                        user_agent=user_agent, factor_id=factor.id, recipient=factor.recipient_hint,
                        factors_left=len(left), devices_revoked=revoked)


def rename(rt: Runtime, member: Member, factor_id: object, label: object, *, actor: str | None, ip: str | None,
           user_agent: str | None) -> None:
    """:meth:`OtpPro.rename_factor`."""
    cleaned = clean_label(label)
    with auditing.transaction(rt, member) as (conn, events):
        factor = owned(rt.state(conn, member.id, for_update=True), factor_id)
        conn.execute(update(factors).where(factors.c.id == factor.id).values(label=cleaned))
        auditing.record(rt, conn, events, audit.FACTOR_RENAMED, member.id, channel=factor.kind, actor=actor, ip=ip,
                        user_agent=user_agent, factor_id=factor.id)


def set_default(rt: Runtime, member: Member, factor_id: object, *, actor: str | None, ip: str | None,
                user_agent: str | None) -> None:
    """:meth:`OtpPro.set_default_factor`."""
    with auditing.transaction(rt, member) as (conn, events):
        factor = owned(rt.state(conn, member.id, for_update=True), factor_id)
        conn.execute(update(factors).where(factors.c.member_id == member.id).values(
            is_default=factors.c.id == factor.id))
        auditing.record(rt, conn, events, audit.FACTOR_DEFAULT_CHANGED, member.id, channel=factor.kind, actor=actor,
                        ip=ip, user_agent=user_agent, factor_id=factor.id)


def add(rt: Runtime, conn: Connection, state: MemberState, now: datetime, *, kind: str, label: str | None,
        secret: str | None, last_step: int | None, recipient: str | None, replaces: int | None,
        handle: str | None = None) -> int:
    """Insert the member's new factor (or re-bind ``replaces`` to its new address); the factor's id.

    The first factor is the default; a later one is not, until the member makes it so. A ``handle`` another
    factor of ``kind`` holds (any member's) raises :class:`SetupError`: a passkey is registered once.
    """
    if handle is not None and conn.execute(select(factors.c.id).where(
            factors.c.kind == kind, factors.c.handle == handle)).first() is not None:
        raise SetupError(f"this {kind} factor is already registered (to this member or another): it is added once")
    values: dict[str, object] = dict(
        secret=secret, last_step=last_step, handle=handle,
        **(address_values(rt, kind, recipient) if recipient is not None
           else {"recipient": None, "recipient_hash": None, "recipient_hint": None}))
    old = state.factor(replaces) if replaces is not None else None
    if old is not None and old.kind == kind:
        conn.execute(update(factors).where(factors.c.id == old.id).values(**values))
        return old.id
    values.update(member_id=state.member_id, kind=kind, label=label, is_default=not state.factors, created_at=now)
    return int(conn.execute(factors.insert().values(**values).returning(factors.c.id)).scalar_one())


def existing_on(rt: Runtime, state: MemberState | None, kind: str, recipient: str | None) -> FactorRow | None:
    """The member's factor of ``kind`` already bound to ``recipient`` (a setup would add it twice)."""
    if state is None or recipient is None:
        return None
    return next((f for f in state.factors if f.kind == kind and f.recipient_hash is not None
                 and _same_address(rt, f.recipient_hash, recipient)), None)
