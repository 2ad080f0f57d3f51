"""The prebuilt statements of the hot paths, grouped by the operation that runs them.

Building a SQLAlchemy expression costs more than running it on SQLite, so the
statements of sending and verifying are built once, here, and run through
:meth:`~otp_pro.storage.db.Database.run` (:mod:`otp_pro.storage.fast`).
Parameters are bound by name: ``b_<name>`` for conditions, ``c_<column>`` for
a new challenge's row, ``a_<column>`` for an audit row. Several statements touch
several tables at once (the PostgreSQL send, mark-sent with its audit row,
state + consume + audit): each is one round trip, which is why they are split by
operation and never by table.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, bindparam, case, exists, func, insert, literal_column, or_, select, true, update

from .. import audit
from ..results import ChallengeStatus
from ..settings import NIST_MAX_ATTEMPTS
from .schema import audit_events, challenges, factors, ip_counters, members

# ------------------------------------------------------------------ member state

#: The columns of a member's factor that a verification or a send decides from, in this order (the
#: engine's FactorRow), each labelled ``f_<column>`` in a state read. The label, the sealed address and
#: the times are read only to list the factors: a narrower row is cheaper to read on every sign-in.
STATE_FACTOR_COLUMNS = ("id", "kind", "is_default", "secret", "last_step", "recipient_hash", "recipient_hint")


def factor_columns(table: Any) -> tuple[Any, ...]:
    """:data:`STATE_FACTOR_COLUMNS` of ``table`` (``otp_factors`` or an alias of it), labelled ``f_<column>``."""
    return tuple(table.c[name].label(f"f_{name}") for name in STATE_FACTOR_COLUMNS)


FACTOR_COLUMNS = factor_columns(factors)
_WITH_FACTORS = members.outerjoin(factors, factors.c.member_id == members.c.member_id)
# Bookkeeping no operation decides from: two datetimes fewer to convert on every sign-in.
_UNREAD_MEMBER_COLUMNS = ("created_at", "updated_at")
#: The member's row with one row per factor (one, with ``f_id`` None, when there is none), by ``b_member``:
#: one statement reads what a verification or a send decides from. Unordered: the engine puts a member's
#: few factors in the order they were added (an ORDER BY costs SQLite a sort on every sign-in).
STATE = select(*(c for c in members.c if c.name not in _UNREAD_MEMBER_COLUMNS), *FACTOR_COLUMNS) \
    .select_from(_WITH_FACTORS).where(members.c.member_id == bindparam("b_member"))
#: PostgreSQL: the member's row lock, taken before a state read that must see the factors as they are
#: once the lock is held. (A locking read that joins the factors would return them as its snapshot saw
#: them before it waited: two concurrent removals would each see the other's factor still there.)
LOCK_MEMBER = select(members.c.member_id).where(members.c.member_id == bindparam("b_member")).with_for_update()
#: The values of a member's failure counters with nothing counted and no lock.
FAILURES_CLEARED: dict[str, Any] = {"failures": 0, "consecutive_failures": 0, "locked_until": None}
RESET_FAILURES = update(members).where(members.c.member_id == bindparam("b_member")).values(**FAILURES_CLEARED)

# A success judged after its attempt was counted (a backup code on SQLite, whose KDF runs between the two
# transactions) forgives the failures counted up to and including its own (b_counted, the consecutive count
# its reservation left), not those counted after it: they keep counting, and a lock they reached stands.
_LEFT = case((members.c.consecutive_failures > bindparam("b_counted"),
              members.c.consecutive_failures - bindparam("b_counted")), else_=0)
FORGIVE_COUNTED = update(members).where(members.c.member_id == bindparam("b_member")).values(
    consecutive_failures=_LEFT, failures=_LEFT % bindparam("b_max_attempts"),
    locked_until=case((_LEFT >= bindparam("b_max_attempts"), members.c.locked_until), else_=None))

# ---------------------------------------------------------------- per-IP limits

#: The caller's address (``b_ip``, its keyed hash; None when unknown) is under its limit of
#: ``b_ip_kind`` events (``b_ip_cap`` in the window begun after ``b_ip_window_ended``). Read, not
#: counted: the one-statement verify paths accept a right code only under it, and a failure is
#: counted by the transaction that judges it (otp_pro._engine.ip_limits.reserve).
IP_UNDER_LIMIT = ~exists().where(
    ip_counters.c.ip_hash == bindparam("b_ip", type_=ip_counters.c.ip_hash.type),
    ip_counters.c.kind == bindparam("b_ip_kind"), ip_counters.c.count >= bindparam("b_ip_cap"),
    ip_counters.c.window_start > bindparam("b_ip_window_ended", type_=ip_counters.c.window_start.type))

# ------------------------------------------------------------- factor counters

#: A factor's counter (a TOTP time step, an HOTP counter) only moves forward: the row count says whether the
#: answer's counter was still unused, so an answer is accepted once however many requests race with it.
#: The time of use is written too, except for a type whose counter tells it (a TOTP step is a time).
FACTOR_COUNTER_UNTIMED = update(factors).where(
    factors.c.id == bindparam("b_factor"), factors.c.member_id == bindparam("b_member"),
    or_(factors.c.last_step.is_(None), factors.c.last_step < bindparam("b_step")),
).values(last_step=bindparam("b_step"))
FACTOR_COUNTER = FACTOR_COUNTER_UNTIMED.values(
    last_used_at=bindparam("b_now", type_=factors.c.last_used_at.type))
# PostgreSQL, verify in one statement of its own (autocommit): the member state read just before
# must still hold, so the statement re-checks it: enrolled, no failures to reset, not locked, the
# factor's seed unchanged; and the caller's address under its limit of failed verifications
# (IP_UNDER_LIMIT, defined above).
_MEMBER_OPEN = exists().where(
    members.c.member_id == bindparam("b_member"), members.c.enrolled_at.is_not(None), members.c.failures == 0,
    members.c.consecutive_failures == 0, members.c.locked_until.is_(None))
_COUNTER_STATEMENTS: dict[bool, tuple[Any, Any, Any]] = {}


def factor_counter(timed: bool) -> tuple[Any, Any, Any]:
    """The counter's UPDATE (:data:`FACTOR_COUNTER`, or :data:`FACTOR_COUNTER_UNTIMED`), the same returning the
    member's id (for :func:`audited`), and PostgreSQL's one-statement form (the state re-checked, the seed
    unchanged, the caller's address under its limit of failed verifications: IP_UNDER_LIMIT)."""
    if timed not in _COUNTER_STATEMENTS:
        plain = FACTOR_COUNTER if timed else FACTOR_COUNTER_UNTIMED
        _COUNTER_STATEMENTS[timed] = (
            plain, plain.returning(factors.c.member_id),
            plain.where(_MEMBER_OPEN, factors.c.secret == bindparam("b_seed"), IP_UNDER_LIMIT).returning(
                factors.c.member_id))
    return _COUNTER_STATEMENTS[timed]

# --------------------------------------------------------------------- throttle

# Two plain binds, not IN with a list: an expanding parameter is re-rendered into the SQL on every execution.
# Queued and sending challenges (a queue dispatcher) count as sends; failed and replaced ones do not.
_LIVE = or_(challenges.c.status == ChallengeStatus.PENDING, challenges.c.status == ChallengeStatus.SENT,
            challenges.c.status == ChallengeStatus.QUEUED, challenges.c.status == ChallengeStatus.SENDING)
_RECENT = challenges.c.created_at > bindparam("b_since", type_=challenges.c.created_at.type)
# The cooldown is read from the last live send whose code was not used: a consumed code has done its
# job (the member read it and proved it), so it cannot hold back the next one, as a setup code would
# hold back the first sign-in's. The hourly caps still count consumed sends: they bound what reaching
# a member costs, and a used code was still a message sent.
_UNUSED_SENT_AT = case((challenges.c.consumed_at.is_(None), challenges.c.created_at))
# The member's last live unused send and, in the same statement, its live sends of the last hour.
_MEMBER_SENDS = select(
    func.max(_UNUSED_SENT_AT), func.count(case((_RECENT, 1))),
    func.min(case((_RECENT, challenges.c.created_at))),
).where(challenges.c.member_id == bindparam("b_member"), _LIVE)
_RECIPIENT_SENDS = select(func.count(), func.min(challenges.c.created_at)).where(
    challenges.c.recipient_hash == bindparam("b_recipient"), _LIVE, _RECENT)
#: The throttle's counts, member's and recipient's in one round trip (one snapshot, taken after the member's lock).
SENDS = select(*(q.scalar_subquery().label(name) for name, q in (
    ("last", _MEMBER_SENDS.with_only_columns(func.max(_UNUSED_SENT_AT))),
    ("member_count", _MEMBER_SENDS.with_only_columns(func.count(case((_RECENT, 1))))),
    ("member_oldest", _MEMBER_SENDS.with_only_columns(func.min(case((_RECENT, challenges.c.created_at))))),
    ("recipient_count", _RECIPIENT_SENDS.with_only_columns(func.count())),
    ("recipient_oldest", _RECIPIENT_SENDS.with_only_columns(func.min(challenges.c.created_at))),
)))
_sends = SENDS.cte("sends")
# The throttle's rule (otp_pro._engine.throttle.refusal) in SQL: no unused send since b_cooldown_since,
# both hourly caps unmet.
_SEND_ALLOWED = and_(
    or_(_sends.c.last.is_(None), _sends.c.last <= bindparam("b_cooldown_since", type_=challenges.c.created_at.type)),
    _sends.c.member_count < bindparam("b_member_cap"),
    _sends.c.recipient_count < bindparam("b_recipient_cap"),
)

# ------------------------------------------------------------------------- send

CHALLENGE_COLUMNS = ("member_id", "channel", "factor_id", "payload", "purpose", "secret_hash", "recipient_hash",
                     "binding_hash", "status", "created_at", "expires_at", "message")
# The new challenge's row, one bind ``c_<column>`` per column.
_CHALLENGE_BINDS = tuple(bindparam(f"c_{name}", type_=challenges.c[name].type) for name in CHALLENGE_COLUMNS)
_CHALLENGE_ROW = select(*_CHALLENGE_BINDS)
INSERT_CHALLENGE = insert(challenges).values(dict(zip(CHALLENGE_COLUMNS, _CHALLENGE_BINDS, strict=True))) \
    .returning(challenges.c.id)
# PostgreSQL: the counts and, when they allow it, the new challenge, in one statement (one round trip).
_inserted = insert(challenges).from_select(list(CHALLENGE_COLUMNS), _CHALLENGE_ROW.where(_SEND_ALLOWED)) \
    .returning(challenges.c.id).cte("inserted")
SENDS_AND_INSERT = select(_sends, _inserted.c.id).select_from(_sends.outerjoin(_inserted, true()))
# PostgreSQL: a send takes the member's row lock by writing the row (a new row version, whose
# xmin changes), not by SELECT ... FOR UPDATE: a concurrent SEEN_AND_SEND then sees that the row
# changed since its snapshot and leaves the send to this transaction. Returns the member's state.
LOCK_FOR_SEND = update(members).where(members.c.member_id == bindparam("b_member")).values(
    updated_at=members.c.updated_at).returning(*members.c)
# The same lock, returning the member's row with one row per factor (a state read, in the same round trip).
# The factors come from the statement's snapshot, taken before the lock was waited for: a factor removed
# meanwhile may be chosen, and its code is refused at verification (consume checks the factor exists).
_locked = LOCK_FOR_SEND.cte("locked")
LOCK_FOR_SEND_WITH_FACTORS = select(_locked, *FACTOR_COLUMNS) \
    .select_from(_locked.outerjoin(factors, factors.c.member_id == _locked.c.member_id))
# PostgreSQL: an inline send read and recorded by one statement of its own (autocommit). The
# message was made for the member's likely factor: the channel asked for, else the policy's
# default (b_state_channel), at the address the member record shows now (c_recipient_hash). The
# statement returns the member's row with its factors as its snapshot sees them (``seen``) and,
# when nothing stands in the way, ``sent_id``, the new challenge's id. The gate writes the
# member's row (its lock, as LOCK_FOR_SEND) only if the row is the version the snapshot sees
# (xmin unchanged: no send, or any other write, committed since or waiting on the lock), the
# member's default factor is of that channel and bound to that address (another factor is a
# fallback, recorded by the transaction path with its delivery_fallback row) and no lock, and the
# throttle's counts (same snapshot)
# allow a send; the challenge is inserted only behind the gate, for that factor. No sent_id:
# nothing was written, and the send goes on from the rows returned (a throttled send is recorded
# by the transaction path with its send_throttled row).
_xmin: Any = literal_column("otp_members.xmin")
_seen = select(members, _xmin.label("xmin")).where(members.c.member_id == bindparam("b_member")).cte("seen")
_likely_factor = select(factors.c.id).where(
    factors.c.member_id == bindparam("b_member"), factors.c.kind == bindparam("b_state_channel"),
    factors.c.recipient_hash == bindparam("c_recipient_hash"), factors.c.is_default,
).limit(1).scalar_subquery()
_gate = update(members).where(
    members.c.member_id == bindparam("b_member"),
    _xmin == select(_seen.c.xmin).scalar_subquery(),
    members.c.consecutive_failures < NIST_MAX_ATTEMPTS,
    or_(members.c.locked_until.is_(None),
        members.c.locked_until <= bindparam("b_now", type_=members.c.locked_until.type)),
    exists().select_from(_sends).where(_SEND_ALLOWED),
    _likely_factor.is_not(None),
).values(updated_at=members.c.updated_at).returning(members.c.member_id, _likely_factor.label("factor_id")).cte("gate")
_GATED_ROW = select(*(_gate.c.factor_id if name == "factor_id" else bind
                      for name, bind in zip(CHALLENGE_COLUMNS, _CHALLENGE_BINDS, strict=True)))
_gated = insert(challenges).from_select(list(CHALLENGE_COLUMNS), _GATED_ROW.select_from(_gate)) \
    .returning(challenges.c.id).cte("inserted")
_seen_factors = factors.alias("seen_factors")
SEEN_AND_SEND = select(_seen, *factor_columns(_seen_factors),
                       _gated.c.id.label("sent_id")).select_from(
    _seen.outerjoin(_seen_factors, _seen_factors.c.member_id == _seen.c.member_id).outerjoin(_gated, true())
)
#: The member's latest challenge (a fallback is a send right after one failed on another channel).
# A challenge a factor type issued (a passkey's) is no delivery: the delivery reads leave it out.
_DELIVERED = challenges.c.status != ChallengeStatus.ISSUED
LATEST = select(challenges.c.id, challenges.c.channel, challenges.c.status, challenges.c.error_code).where(
    challenges.c.member_id == bindparam("b_member"), _DELIVERED).order_by(challenges.c.id.desc()).limit(1)

# --------------------------------------------------------------------- mark sent

# Both at once: the new challenge is marked sent, the member's other unused ones are voided.
_IS_NEW = challenges.c.id == bindparam("b_id")
MARK_SENT_VOID_OTHERS = update(challenges).where(
    challenges.c.member_id == bindparam("b_member"),
    or_(_IS_NEW, (challenges.c.consumed_at.is_(None) & challenges.c.invalidated_at.is_(None))),
).values(
    # A still-queued older challenge is replaced: its task then finds nothing to send.
    status=case((_IS_NEW, ChallengeStatus.SENT), (challenges.c.status == ChallengeStatus.QUEUED,
                                                  ChallengeStatus.REPLACED), else_=challenges.c.status),
    sent_at=case((_IS_NEW, bindparam("b_sent_at", type_=challenges.c.sent_at.type)), else_=challenges.c.sent_at),
    provider_message_id=case((_IS_NEW, bindparam("b_message_id", type_=challenges.c.provider_message_id.type)),
                             else_=challenges.c.provider_message_id),
    invalidated_at=case((_IS_NEW, challenges.c.invalidated_at),
                        else_=bindparam("b_now", type_=challenges.c.invalidated_at.type)),
    message=None,  # a voided queued challenge's ciphertext goes too
)
# PostgreSQL: the same UPDATE and the challenge_sent audit row in one statement, which is its own
# transaction (one round trip instead of BEGIN, UPDATE, INSERT, COMMIT); SQLite has no UPDATE in WITH.
MARK_SENT_AUDITED = audit.INSERT.add_cte(MARK_SENT_VOID_OTHERS.cte("marked"))

# ------------------------------------------------------------------------ queue

# A new queued challenge replaces the member's older still-queued ones.
REPLACE_QUEUED = update(challenges).where(
    challenges.c.member_id == bindparam("b_member"), challenges.c.status == ChallengeStatus.QUEUED,
).values(status=ChallengeStatus.REPLACED, invalidated_at=bindparam("b_now", type_=challenges.c.invalidated_at.type),
         message=None)
# The worker's claim: only a queued, live row moves to sending; the row count decides who sends.
CLAIM = update(challenges).where(
    challenges.c.id == bindparam("b_id"), challenges.c.status == ChallengeStatus.QUEUED,
    challenges.c.invalidated_at.is_(None),
).values(status=ChallengeStatus.SENDING, attempts=challenges.c.attempts + 1).returning(
    challenges.c.member_id, challenges.c.channel, challenges.c.purpose, challenges.c.message, challenges.c.attempts,
    challenges.c.expires_at)
# Back to queued for a retry (the ciphertext stays for the next attempt).
REQUEUE = update(challenges).where(challenges.c.id == bindparam("b_id"),
                                   challenges.c.status == ChallengeStatus.SENDING).values(status=ChallengeStatus.QUEUED)
_IS_CLAIMED = challenges.c.id == bindparam("b_id")
# The claimed row is marked sent and its ciphertext wiped; the member's *older* unused challenges are voided
# (a newer one, made while this one was sending, stays: the newest challenge wins).
MARK_QUEUED_SENT = update(challenges).where(
    challenges.c.member_id == bindparam("b_member"),
    or_(_IS_CLAIMED & (challenges.c.status == ChallengeStatus.SENDING),
        (challenges.c.id < bindparam("b_id")) & challenges.c.consumed_at.is_(None)
        & challenges.c.invalidated_at.is_(None)),
).values(
    status=case((_IS_CLAIMED, ChallengeStatus.SENT), (challenges.c.status == ChallengeStatus.QUEUED,
                                                      ChallengeStatus.REPLACED), else_=challenges.c.status),
    sent_at=case((_IS_CLAIMED, bindparam("b_sent_at", type_=challenges.c.sent_at.type)), else_=challenges.c.sent_at),
    provider_message_id=case((_IS_CLAIMED, bindparam("b_message_id", type_=challenges.c.provider_message_id.type)),
                             else_=challenges.c.provider_message_id),
    invalidated_at=case((_IS_CLAIMED, challenges.c.invalidated_at),
                        else_=bindparam("b_now", type_=challenges.c.invalidated_at.type)),
    message=None,
)

# -------------------------------------------------------------- delivery status

_DELIVERY = select(
    challenges.c.id, challenges.c.channel, challenges.c.status, challenges.c.purpose, challenges.c.created_at,
    challenges.c.expires_at, challenges.c.sent_at, challenges.c.error_code, challenges.c.attempts,
).where(challenges.c.member_id == bindparam("b_member"), _DELIVERED)
DELIVERY_LATEST = _DELIVERY.order_by(challenges.c.id.desc()).limit(1)
DELIVERY_BY_ID = _DELIVERY.where(challenges.c.id == bindparam("b_id"))

# ------------------------------------------------------------------ verification

# The challenges whose code may be accepted: sent, or in the middle of being sent. The provider can
# hand the code to the member (a loopback SMTP server, a fast SMS) a moment before the worker or the
# request records "sent", and a code can only be typed by someone it reached. Queued (not yet handed
# to any provider), failed and replaced challenges are never accepted.
VERIFIABLE = or_(challenges.c.status == ChallengeStatus.SENT, challenges.c.status == ChallengeStatus.SENDING,
                 challenges.c.status == ChallengeStatus.PENDING)
_AUDITED: dict[int, Any] = {}


def audited(statement: Any) -> Any:
    """PostgreSQL: ``statement`` (an UPDATE ... RETURNING) and an audit row for each row it changed, in one statement.

    The audit row takes its channel from the returned ``channel`` column when
    there is one, otherwise from ``a_channel``; the statement returns the audit
    row's id and channel, and the changed row's ``factor_id`` when it returns one
    (a consumed challenge: the factor that answered). One round trip instead of
    two inside the transaction.
    """
    key = id(statement)  # the statements passed are module-level objects, built once
    if key not in _AUDITED:
        changed = statement.cte("changed")
        has_channel = "channel" in changed.c
        values = [changed.c.channel if name == "channel" and has_channel
                  else bindparam(f"a_{name}", type_=audit_events.c[name].type) for name in audit.COLUMNS]
        inserted = insert(audit_events).from_select(list(audit.COLUMNS), select(*values).select_from(changed)) \
            .returning(audit_events.c.id, audit_events.c.channel)
        if "factor_id" in changed.c:
            # RETURNING names the inserted row only: the factor comes from the changed row, beside it.
            rows = inserted.cte("audited")
            _AUDITED[key] = select(rows.c.id, rows.c.channel, changed.c.factor_id).select_from(
                rows.join(changed, true()))
        else:
            _AUDITED[key] = inserted
    return _AUDITED[key]


_CONSUME: dict[tuple[bool, int, int | None], Any] = {}


def consume(by_channel: bool, hashes: int, payloads: int | None) -> Any:
    """The conditional UPDATE that consumes a challenge (built once per shape).

    One plain bind per hash (``b_hash0``...) and per payload name (``b_payload0``...),
    not expanding IN parameters, so the cached compiled statement is used as is.
    """
    key = (by_channel, hashes, payloads)
    if key not in _CONSUME:
        conditions = [
            challenges.c.member_id == bindparam("b_member"),
            challenges.c.purpose == bindparam("b_purpose"),
            challenges.c.secret_hash.in_([bindparam(f"b_hash{i}") for i in range(hashes)]),
            VERIFIABLE,
            challenges.c.consumed_at.is_(None),
            challenges.c.invalidated_at.is_(None),
            challenges.c.expires_at > bindparam("b_now", type_=challenges.c.expires_at.type),
        ]
        if by_channel:
            conditions.append(challenges.c.channel == bindparam("b_channel"))
        if payloads is not None:
            conditions.append(challenges.c.payload.in_([bindparam(f"b_payload{i}") for i in range(payloads)]))
        # A sign-in code counts only while the factor it was sent to is the member's: a send that read
        # the factors just before the factor was removed must not leave a code that still signs in.
        conditions.append(or_(challenges.c.factor_id.is_(None),
                              exists().where(factors.c.id == challenges.c.factor_id)))
        _CONSUME[key] = update(challenges).where(*conditions).values(
            consumed_at=bindparam("b_now", type_=challenges.c.consumed_at.type)).returning(
                challenges.c.channel, challenges.c.factor_id)
    return _CONSUME[key]


# PostgreSQL, a one-time code verified by one statement of its own (autocommit): a member with
# a clean record (enrolled, no authenticator app, no failures to reset, no lock), asking from an
# address under its limit of failed verifications (IP_UNDER_LIMIT), has the code
# consumed and the verify_ok row written; in any case the statement returns the member's state
# (one snapshot), from which verify goes on when nothing was accepted.
_MEMBER_CLEAN = and_(members.c.enrolled_at.is_not(None), members.c.failures == 0,
                     members.c.consecutive_failures == 0, members.c.locked_until.is_(None),
                     ~exists().where(factors.c.member_id == members.c.member_id, factors.c.secret.is_not(None)))
_STATE_AND_CONSUME: dict[tuple[int, int], Any] = {}


def state_and_consume(hashes: int, payloads: int) -> Any:
    """The member's row, with ``ok_id`` and ``ok_channel`` (the verify_ok row) when the code was accepted."""
    key = (hashes, payloads)
    if key not in _STATE_AND_CONSUME:
        consumed = consume(False, hashes, payloads).where(
            exists().where(members.c.member_id == bindparam("b_member"), _MEMBER_CLEAN), IP_UNDER_LIMIT)
        ok = audited(consumed).cte("ok")
        state = STATE.cte("state")
        _STATE_AND_CONSUME[key] = select(state, ok.c.id.label("ok_id"), ok.c.channel.label("ok_channel"),
                                         ok.c.factor_id.label("ok_factor_id")) \
            .select_from(state.outerjoin(ok, true()))
    return _STATE_AND_CONSUME[key]
