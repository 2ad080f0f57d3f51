"""``OtpPro``: the public entry point. One instance per application (and per settings)."""

from __future__ import annotations

import collections
import json
import logging
import secrets
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Connection,
    CursorResult,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    update,
)

from . import audit, dispatch, policy, totp
from .audit import AuditEvent
from .crypto import KeyRing, backup_kdf, constant_time_in, new_backup_code, new_token
from .dispatch import QueuedDelivery
from .errors import (
    ChannelUnavailable,
    ConfigurationError,
    DeliveryError,
    InvalidCode,
    LockedOut,
    NotEnrolled,
    NotFound,
    PermanentDeliveryError,
    PluginError,
    PolicyError,
    RecipientUnavailable,
    SetupError,
    StorageError,
    ThrottledError,
    TransientDeliveryError,
    UnknownMember,
)
from .member import Member
from .plugins import PluginHost
from .results import (
    Challenge,
    ChannelInfo,
    DeliveryStatus,
    MemberStatus,
    PluginInfo,
    SetupInfo,
    TrustedDevice,
    VerifyResult,
)
from .settings import NIST_MAX_ATTEMPTS, Settings, _Problems, validate_section
from .storage import migrate
from .storage.db import Database
from .storage.schema import audit_events, backup_codes, challenges, members, trusted_devices
from .transports import (
    Message,
    Payload,
    PayloadContext,
    PayloadValue,
    ProviderConfig,
    ProviderTestResult,
    Transport,
    mask_recipient,
)

log = logging.getLogger("otp_pro")

TOTP = "totp"
PURPOSE_VERIFY = "verify"
PURPOSE_SETUP = "setup"
#: ``locked_until`` reported for the hard lock after NIST's 100 consecutive failures.
HARD_LOCK = datetime(9999, 12, 31, tzinfo=timezone.utc)
_MAX_INPUT = 64


# The statements of the hot paths (send, verify), built once: building a SQLAlchemy
# expression costs more than running it on SQLite. Parameters are bound by name.
_STATE = select(members).where(members.c.member_id == bindparam("b_member"))
_STATE_FOR_UPDATE = _STATE.with_for_update()
_RESET_FAILURES = update(members).where(members.c.member_id == bindparam("b_member")).values(
    failures=0, consecutive_failures=0, locked_until=None)
_TOTP_STEP = update(members).where(
    members.c.member_id == bindparam("b_member"),
    or_(members.c.totp_last_step.is_(None), members.c.totp_last_step < bindparam("b_step")),
).values(totp_last_step=bindparam("b_step"))
# A matched TOTP step moves and the failure counters reset in the same statement (one round trip).
_TOTP_STEP_RESET = _TOTP_STEP.values(failures=0, consecutive_failures=0, locked_until=None)
# Two plain binds, not IN with a list: an expanding parameter is re-rendered into the SQL on every execution.
# Queued and sending challenges (a queue dispatcher) count as sends; failed and replaced ones do not.
_LIVE = or_(challenges.c.status == "pending", challenges.c.status == "sent", challenges.c.status == "queued",
            challenges.c.status == "sending")
# The challenges whose code may be accepted: sent, or in the middle of being sent. The provider can
# hand the code to the member (a loopback SMTP server, a fast SMS) a moment before the worker or the
# request records "sent", and a code can only be typed by someone it reached. Queued (not yet handed
# to any provider), failed and replaced challenges are never accepted.
_VERIFIABLE = or_(challenges.c.status == "sent", challenges.c.status == "sending", challenges.c.status == "pending")
_RECENT = challenges.c.created_at > bindparam("b_since", type_=challenges.c.created_at.type)
# The member's last live send and, in the same statement, its live sends of the last hour.
_MEMBER_SENDS = select(
    func.max(challenges.c.created_at), func.count(case((_RECENT, 1))),
    func.min(case((_RECENT, challenges.c.created_at))),
).where(challenges.c.member_id == bindparam("b_member"), _LIVE)
_RECIPIENT_SENDS = select(func.count(), func.min(challenges.c.created_at)).where(
    challenges.c.recipient_hash == bindparam("b_recipient"), _LIVE, _RECENT)
# Both in one round trip (one snapshot, taken after the member's lock).
_SENDS = select(*(q.scalar_subquery().label(name) for name, q in (
    ("last", _MEMBER_SENDS.with_only_columns(func.max(challenges.c.created_at))),
    ("member_count", _MEMBER_SENDS.with_only_columns(func.count(case((_RECENT, 1))))),
    ("member_oldest", _MEMBER_SENDS.with_only_columns(func.min(case((_RECENT, challenges.c.created_at))))),
    ("recipient_count", _RECIPIENT_SENDS.with_only_columns(func.count())),
    ("recipient_oldest", _RECIPIENT_SENDS.with_only_columns(func.min(challenges.c.created_at))),
)))
_CHALLENGE_COLUMNS = ("member_id", "channel", "payload", "purpose", "secret_hash", "recipient_hash", "binding_hash",
                      "status", "created_at", "expires_at", "message")
# The new challenge's row, one bind ``c_<column>`` per column.
_CHALLENGE_BINDS = tuple(bindparam(f"c_{name}", type_=challenges.c[name].type) for name in _CHALLENGE_COLUMNS)
_CHALLENGE_ROW = select(*_CHALLENGE_BINDS)
_INSERT_CHALLENGE = insert(challenges).values(dict(zip(_CHALLENGE_COLUMNS, _CHALLENGE_BINDS, strict=True))) \
    .returning(challenges.c.id)
# PostgreSQL: the counts and, when they allow it, the new challenge, in one statement (one round trip).
# The condition is _throttle_refusal's, in SQL: no send since b_cooldown_since, both hourly caps unmet.
_sends = _SENDS.cte("sends")
_SEND_ALLOWED = and_(
    or_(_sends.c.last.is_(None), _sends.c.last <= bindparam("b_cooldown_since", type_=challenges.c.created_at.type)),
    _sends.c.member_count < bindparam("b_member_cap"),
    _sends.c.recipient_count < bindparam("b_recipient_cap"),
)
_inserted = insert(challenges).from_select(list(_CHALLENGE_COLUMNS), _CHALLENGE_ROW.where(_SEND_ALLOWED)) \
    .returning(challenges.c.id).cte("inserted")
_SENDS_AND_INSERT = select(_sends, _inserted.c.id).select_from(_sends.outerjoin(_inserted, true()))
# PostgreSQL: a send takes the member's row lock by writing the row (a new row version, whose
# xmin changes), not by SELECT ... FOR UPDATE: a concurrent _SEEN_AND_SEND then sees that the row
# changed since its snapshot and leaves the send to this transaction. Returns the member's state.
_LOCK_FOR_SEND = update(members).where(members.c.member_id == bindparam("b_member")).values(
    updated_at=members.c.updated_at).returning(*members.c)
# PostgreSQL: an inline send read and recorded by one statement of its own (autocommit). The
# message was made for the channel the member most likely has (b_state_channel); the statement
# returns the member's row as its snapshot sees it (``seen``) and, when nothing stands in the
# way, ``sent_id``, the new challenge's id. The gate writes the member's row (its lock, as
# _LOCK_FOR_SEND) only if the row is the version the snapshot sees (xmin unchanged: no send,
# or any other write, committed since or waiting on the lock), the member has that channel and
# no lock, and the throttle's counts (same snapshot) allow a send; the challenge is inserted
# only behind the gate. No sent_id: nothing was written, and send_challenge goes on from the
# row returned (a throttled send is recorded by the transaction path with its send_throttled row).
_xmin: Any = literal_column("otp_members.xmin")
_seen = select(members, _xmin.label("xmin")).where(members.c.member_id == bindparam("b_member")).cte("seen")
_gate = update(members).where(
    members.c.member_id == bindparam("b_member"),
    _xmin == select(_seen.c.xmin).scalar_subquery(),
    members.c.channel == bindparam("b_state_channel"),
    members.c.consecutive_failures < NIST_MAX_ATTEMPTS,
    or_(members.c.locked_until.is_(None),
        members.c.locked_until <= bindparam("b_now", type_=members.c.locked_until.type)),
    exists().select_from(_sends).where(_SEND_ALLOWED),
).values(updated_at=members.c.updated_at).returning(members.c.member_id).cte("gate")
_gated = insert(challenges).from_select(list(_CHALLENGE_COLUMNS), _CHALLENGE_ROW.select_from(_gate)) \
    .returning(challenges.c.id).cte("inserted")
_SEEN_AND_SEND = select(_seen, _gated.c.id.label("sent_id")).select_from(_seen.outerjoin(_gated, true()))
# Both at once: the new challenge is marked sent, the member's other unused ones are voided.
_IS_NEW = challenges.c.id == bindparam("b_id")
_MARK_SENT_VOID_OTHERS = update(challenges).where(
    challenges.c.member_id == bindparam("b_member"),
    or_(_IS_NEW, (challenges.c.consumed_at.is_(None) & challenges.c.invalidated_at.is_(None))),
).values(
    # A still-queued older challenge is replaced: its task then finds nothing to send.
    status=case((_IS_NEW, "sent"), (challenges.c.status == "queued", "replaced"), else_=challenges.c.status),
    sent_at=case((_IS_NEW, bindparam("b_sent_at", type_=challenges.c.sent_at.type)), else_=challenges.c.sent_at),
    provider_message_id=case((_IS_NEW, bindparam("b_message_id", type_=challenges.c.provider_message_id.type)),
                             else_=challenges.c.provider_message_id),
    invalidated_at=case((_IS_NEW, challenges.c.invalidated_at),
                        else_=bindparam("b_now", type_=challenges.c.invalidated_at.type)),
    message=None,  # a voided queued challenge's ciphertext goes too
)
# Queued delivery. A new queued challenge replaces the member's older still-queued ones.
_REPLACE_QUEUED = update(challenges).where(
    challenges.c.member_id == bindparam("b_member"), challenges.c.status == "queued",
).values(status="replaced", invalidated_at=bindparam("b_now", type_=challenges.c.invalidated_at.type), message=None)
# The worker's claim: only a queued, live row moves to sending; the row count decides who sends.
_CLAIM = update(challenges).where(
    challenges.c.id == bindparam("b_id"), challenges.c.status == "queued", challenges.c.invalidated_at.is_(None),
).values(status="sending", attempts=challenges.c.attempts + 1).returning(
    challenges.c.member_id, challenges.c.channel, challenges.c.purpose, challenges.c.message, challenges.c.attempts,
    challenges.c.expires_at)
# Back to queued for a retry (the ciphertext stays for the next attempt).
_REQUEUE = update(challenges).where(challenges.c.id == bindparam("b_id"), challenges.c.status == "sending").values(
    status="queued")
_IS_CLAIMED = challenges.c.id == bindparam("b_id")
# The claimed row is marked sent and its ciphertext wiped; the member's *older* unused challenges are voided
# (a newer one, made while this one was sending, stays: the newest challenge wins).
_MARK_QUEUED_SENT = update(challenges).where(
    challenges.c.member_id == bindparam("b_member"),
    or_(_IS_CLAIMED & (challenges.c.status == "sending"),
        (challenges.c.id < bindparam("b_id")) & challenges.c.consumed_at.is_(None)
        & challenges.c.invalidated_at.is_(None)),
).values(
    status=case((_IS_CLAIMED, "sent"), (challenges.c.status == "queued", "replaced"), else_=challenges.c.status),
    sent_at=case((_IS_CLAIMED, bindparam("b_sent_at", type_=challenges.c.sent_at.type)), else_=challenges.c.sent_at),
    provider_message_id=case((_IS_CLAIMED, bindparam("b_message_id", type_=challenges.c.provider_message_id.type)),
                             else_=challenges.c.provider_message_id),
    invalidated_at=case((_IS_CLAIMED, challenges.c.invalidated_at),
                        else_=bindparam("b_now", type_=challenges.c.invalidated_at.type)),
    message=None,
)
_LATEST = select(challenges.c.id, challenges.c.channel, challenges.c.status, challenges.c.error_code).where(
    challenges.c.member_id == bindparam("b_member")).order_by(challenges.c.id.desc()).limit(1)
_DELIVERY = select(
    challenges.c.id, challenges.c.channel, challenges.c.status, challenges.c.purpose, challenges.c.created_at,
    challenges.c.expires_at, challenges.c.sent_at, challenges.c.error_code, challenges.c.attempts,
).where(challenges.c.member_id == bindparam("b_member"))
_DELIVERY_LATEST = _DELIVERY.order_by(challenges.c.id.desc()).limit(1)
_DELIVERY_BY_ID = _DELIVERY.where(challenges.c.id == bindparam("b_id"))
#: Statuses of a delivery still in progress (a queue dispatcher); past the code's lifetime they read as failed.
_IN_FLIGHT = ("queued", "sending", "pending")
# PostgreSQL: the same UPDATE and the challenge_sent audit row in one statement, which is its own
# transaction (one round trip instead of BEGIN, UPDATE, INSERT, COMMIT); SQLite has no UPDATE in WITH.
_MARK_SENT_AUDITED = audit.INSERT.add_cte(_MARK_SENT_VOID_OTHERS.cte("marked"))
_AUDITED: dict[int, Any] = {}


def _audited(statement: Any) -> Any:
    """PostgreSQL: ``statement`` (an UPDATE ... RETURNING) and an audit row for each row it changed, in one statement.

    The audit row takes its channel from the returned ``channel`` column when
    there is one, otherwise from ``a_channel``; the statement returns the audit
    row's id and channel. One round trip instead of two inside the transaction.
    """
    key = id(statement)  # the statements passed are module-level objects, built once
    if key not in _AUDITED:
        changed = statement.cte("changed")
        has_channel = "channel" in changed.c
        values = [changed.c.channel if name == "channel" and has_channel
                  else bindparam(f"a_{name}", type_=audit_events.c[name].type) for name in audit.COLUMNS]
        _AUDITED[key] = insert(audit_events).from_select(list(audit.COLUMNS), select(*values).select_from(changed)) \
            .returning(audit_events.c.id, audit_events.c.channel)
    return _AUDITED[key]


_TOTP_STEP_RESET_RETURNING = _TOTP_STEP_RESET.returning(members.c.member_id)
# PostgreSQL, verify in one statement of its own (autocommit): the member state read just before
# must still hold, so the statement re-checks it: enrolled, not locked, the same seed.
_MEMBER_OPEN = and_(members.c.channel.is_not(None),
                    or_(members.c.locked_until.is_(None),
                        members.c.locked_until <= bindparam("b_now", type_=members.c.locked_until.type)))
_TOTP_STEP_ONCE = _TOTP_STEP_RESET.where(_MEMBER_OPEN, members.c.totp_seed == bindparam("b_seed")).returning(
    members.c.member_id)
_CONSUME: dict[tuple[bool, int, int | None], Any] = {}


def _consume_statement(by_channel: bool, hashes: int, payloads: int | None) -> Any:
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
            _VERIFIABLE,
            challenges.c.consumed_at.is_(None),
            challenges.c.invalidated_at.is_(None),
            challenges.c.expires_at > bindparam("b_now", type_=challenges.c.expires_at.type),
        ]
        if by_channel:
            conditions.append(challenges.c.channel == bindparam("b_channel"))
        if payloads is not None:
            conditions.append(challenges.c.payload.in_([bindparam(f"b_payload{i}") for i in range(payloads)]))
        _CONSUME[key] = update(challenges).where(*conditions).values(
            consumed_at=bindparam("b_now", type_=challenges.c.consumed_at.type)).returning(challenges.c.channel)
    return _CONSUME[key]


# PostgreSQL, a one-time code verified by one statement of its own (autocommit): a member with
# a clean record (enrolled, no authenticator, no failures to reset, no lock) has the code
# consumed and the verify_ok row written; in any case the statement returns the member's state
# (one snapshot), from which verify goes on when nothing was accepted.
_MEMBER_CLEAN = and_(members.c.channel.is_not(None), members.c.totp_seed.is_(None), members.c.failures == 0,
                     members.c.consecutive_failures == 0, members.c.locked_until.is_(None))
_STATE_AND_CONSUME: dict[tuple[int, int], Any] = {}


def _state_and_consume_statement(hashes: int, payloads: int) -> Any:
    """The member's row, with ``ok_id`` and ``ok_channel`` (the verify_ok row) when the code was accepted."""
    key = (hashes, payloads)
    if key not in _STATE_AND_CONSUME:
        consume = _consume_statement(False, hashes, payloads).where(
            exists().where(members.c.member_id == bindparam("b_member"), _MEMBER_CLEAN))
        ok = _audited(consume).cte("ok")
        state = _STATE.cte("state")
        _STATE_AND_CONSUME[key] = select(state, ok.c.id.label("ok_id"), ok.c.channel.label("ok_channel")) \
            .select_from(state.outerjoin(ok, true()))
    return _STATE_AND_CONSUME[key]


class _Outgoing(NamedTuple):
    """A challenge's message, made before its row is inserted (:meth:`OtpPro._outgoing`)."""

    channel: str
    transport: Transport
    payload: Payload
    recipient: str
    recipient_hash: str
    now: datetime
    expires: datetime
    value: PayloadValue
    message: Message
    sealed: str | None


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class ChannelDef:
    """A channel: a transport with a payload, or ``totp``."""

    name: str
    label: str
    transport: Transport | None
    payload: Payload | None


def normalize_code(code: object) -> str | None:
    """Canonical form of what a member typed, or None when it cannot be a code.

    Full-width and other compatibility digits become ASCII (NFKC); spaces and
    dashes are dropped; letters are lower-cased (backup codes). Anything left
    that is not an ASCII letter or digit makes the input malformed.
    """
    if isinstance(code, bytes):
        try:
            code = code.decode("ascii")
        except UnicodeDecodeError:
            return None
    if isinstance(code, int) and not isinstance(code, bool):
        code = str(code)
    if not isinstance(code, str) or len(code) > _MAX_INPUT:
        return None
    text = unicodedata.normalize("NFKC", code)
    text = "".join(ch for ch in text if not ch.isspace() and ch not in "-\u2010\u2011\u2012\u2013\u2014")
    text = text.lower()
    if not text or not text.isascii() or not text.isalnum():
        return None
    return text


def _inserted_id(result: CursorResult[Any]) -> Any:
    """The primary key of the one row an ``INSERT ... VALUES`` added."""
    # Typed Optional because a multi-row or INSERT-FROM-SELECT has none; a one-row
    # INSERT always has it.
    return cast("Sequence[Any]", result.inserted_primary_key)[0]


_MESSAGE_FIELDS = ("recipient", "subject", "text", "html", "headers", "member_id", "channel", "kind", "sensitive")


def _message_data(message: Message) -> dict[str, Any]:
    """A rendered message as JSON-able data, to be encrypted on a queued challenge row."""
    return {name: list(message.sensitive) if name == "sensitive" else getattr(message, name)
            for name in _MESSAGE_FIELDS}


def _message_from(data: Mapping[str, Any]) -> Message:
    """The message back from :func:`_message_data`'s form."""
    return Message(**{**{name: data[name] for name in _MESSAGE_FIELDS}, "sensitive": tuple(data["sensitive"])})


class OtpPro:
    """Multi-factor authentication for one application.

    ``settings`` is a mapping (or :class:`~otp_pro.settings.Settings`); invalid
    settings raise :class:`~otp_pro.errors.ConfigurationError` naming every bad key.
    ``plugins`` are extra plugin objects (modules or instances with hookimpls)
    registered beside the discovered ones; ``clock`` returns the current aware
    UTC time (tests move it); ``entry_points=False`` skips discovery.
    """

    def __init__(
        self,
        settings: Mapping[str, Any] | Settings,
        *,
        plugins: Iterable[object] = (),
        clock: Callable[[], datetime] | None = None,
        entry_points: bool = True,
        migrate_database: bool | None = None,
    ) -> None:
        self.settings = settings if isinstance(settings, Settings) else Settings.from_mapping(settings)
        self.clock = clock or utcnow
        self.keys = KeyRing(self.settings.all_secret_keys)
        self.host = PluginHost(disabled=self.settings.disable_plugins, extra=plugins, entry_points=entry_points)
        self.hook = self.host.pm.hook
        self.transports: dict[str, Transport] = {}
        self.payloads: dict[str, Payload] = {}
        #: Validated ``providers.<name>`` sections declared through ``otp_pro_register_settings``.
        self.plugin_settings: dict[str, ProviderConfig] = {}
        problems = _Problems()
        self._register_providers(problems)
        #: The delivery dispatcher the ``dispatcher`` setting names (``inline`` by default).
        self.dispatcher = dispatch.build(self, problems)
        self.channels: dict[str, ChannelDef] = self._build_channels()
        self._validate_channels(problems)
        problems.raise_if_any()
        self.db = Database(self.settings.database_url, pool_size=self.settings.database_pool_size,
                           max_overflow=self.settings.database_max_overflow)
        self._prepare_database(migrate_database)
        self._startup()

    def _startup(self) -> None:
        """Call every ``otp_pro_startup`` hook; their problems fail start-up together."""
        problems = _Problems()
        for impl in self.hook.otp_pro_startup.get_hookimpls():
            try:
                answer = self.host.call(impl, otp=self)
            except Exception as exc:  # noqa: BLE001 - a crash at start-up is a problem to report, by plugin
                problems.add(f"plugin {impl.plugin_name}", f"failed at start-up: {type(exc).__name__}: {exc}")
                continue
            if answer is None:
                continue
            if isinstance(answer, str) or not isinstance(answer, Iterable):
                answer = [str(answer)]
            for problem in answer:
                key, _, message = str(problem).partition(": ")
                problems.add(key if message else f"plugin {impl.plugin_name}", message or str(problem))
        if problems.items:
            self.db.dispose()
        problems.raise_if_any("start-up checks failed")

    # ------------------------------------------------------------------ set-up

    def _register_providers(self, problems: _Problems) -> None:
        found, sections = self.host.collect_providers()
        providers = dict(self.settings.providers)
        for name, (_owner, specs) in sections.items():
            raw = providers.pop(name, {})
            self.plugin_settings[name] = ProviderConfig(
                name, validate_section(specs, raw, f"providers.{name}.", problems), specs
            )
        for name, (owner, cls) in found.items():
            raw = providers.pop(name, {})
            values = validate_section(cls.settings, raw, f"providers.{name}.", problems)
            config = ProviderConfig(name, values, cls.settings)
            try:
                instance = cls(config, self)
            except Exception as exc:  # noqa: BLE001
                problems.add(f"providers.{name}", f"plugin {owner} failed to start: {type(exc).__name__}: {exc}")
                continue
            if isinstance(instance, Transport):
                self.transports[name] = instance
            else:
                self.payloads[name] = instance
        for name in providers:
            installed = ", ".join(sorted([*found, *sections])) or "none"
            problems.add(
                f"providers.{name}", f"no installed plugin has settings called {name!r} (installed: {installed})"
            )
        started: list[Transport | Payload] = [*self.transports.values(), *self.payloads.values()]
        for provider in started:
            for problem in provider.check():
                key, _, message = problem.partition(": ")
                problems.add(key if message else f"providers.{provider.name}", message or problem)

    def _build_channels(self) -> dict[str, ChannelDef]:
        channels: dict[str, ChannelDef] = {}
        for transport in self.transports.values():
            for payload in self.payloads.values():
                if payload.supports(transport):
                    name = f"{transport.name}:{payload.name}"
                    label = transport.label if payload.name == "code" else f"{transport.label} ({payload.label})"
                    channels[name] = ChannelDef(name, label, transport, payload)
        channels[TOTP] = ChannelDef(TOTP, "Authenticator app", None, None)
        return channels

    @property
    def registered_channels(self) -> tuple[str, ...]:
        """Channels offered site-wide when ``channels`` is not set.

        Leaves out dev-only transports (``offered_by_default = False``) and transports that
        are installed but not configured (``configured`` is false).
        """
        return tuple(
            name
            for name, c in self.channels.items()
            if c.transport is None or (c.transport.offered_by_default and c.transport.configured)
        )

    def _validate_channels(self, problems: _Problems) -> None:
        known = ", ".join(self.channels)

        def check(key: str, name: str | None) -> None:
            if name is not None and name not in self.channels:
                problems.add(key, f"unknown channel {name!r} (available: {known})")

        s = self.settings
        site = s.channels if s.channels is not None else self.registered_channels
        if s.channels is not None:
            for name in s.channels:
                check("channels", name)
        if s.mode != "hidden" and s.default_channel not in self.channels:
            check("default_channel", s.default_channel)
        for role in s.roles.values():
            for name in role.channels or ():
                check(f"roles.{role.name}.channels", name)
            check(f"roles.{role.name}.default_channel", role.default_channel)
        if s.channels is not None and not site:
            problems.add("channels", "must list at least one channel")

    def _prepare_database(self, migrate_database: bool | None) -> None:
        if migrate_database is False:
            return
        has_tables = self.db.has_tables()
        if migrate_database or (self.db.is_sqlite and not has_tables):
            migrate.upgrade(self.db.engine)
            return
        if self.db.is_sqlite:
            if migrate.current_revision(self.db.engine) != migrate.head_revision():
                migrate.upgrade(self.db.engine)
            return
        if not has_tables:
            raise ConfigurationError(
                "the database has no otp-pro tables yet: run `otp-pro db upgrade`", key="database_url"
            )
        # A shared database is never migrated by an instance (several would race): one that is behind
        # this code is refused. One ahead of it (a rolling deploy's newer instances migrated it) is
        # accepted: migrations only add, so older code keeps working on a newer schema.
        current = migrate.current_revision(self.db.engine)
        if current != migrate.head_revision() and current in migrate.known_revisions():
            raise ConfigurationError(
                f"the database schema is at revision {current}, this otp-pro-core needs "
                f"{migrate.head_revision()}: run `otp-pro db upgrade`", key="database_url"
            )

    @classmethod
    def from_file(cls, path: str, **kwargs: Any) -> OtpPro:
        """Build from a TOML settings file (see :meth:`Settings.from_file`)."""
        return cls(Settings.from_file(path), **kwargs)

    def close(self) -> None:
        """Release database connections and whatever the transports and the dispatcher hold."""
        try:
            self.dispatcher.close()
        except Exception as exc:  # noqa: BLE001 - closing must go on for the others
            log.warning("otp-pro dispatcher %s failed to close: %s", self.dispatcher.name, type(exc).__name__)
        for transport in self.transports.values():
            try:
                transport.close()
            except Exception as exc:  # noqa: BLE001 - closing must go on for the others
                log.warning("otp-pro transport %s failed to close: %s", transport.name, type(exc).__name__)
        self.db.dispose()

    def __enter__(self) -> OtpPro:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<OtpPro site={self.settings.site_name!r} db={self.db!r} channels={list(self.channels)}>"

    # ---------------------------------------------------------------- plugins

    def plugins(self) -> list[PluginInfo]:
        """Every built-in and discovered plugin: where it came from, enabled or not, its error if any."""
        return self.host.infos()

    def redacted_settings(self) -> dict[str, Any]:
        """The effective settings with secrets shown as ``'********'``, providers as validated."""
        out = self.settings.redacted()
        started: dict[str, Transport | Payload] = {**self.transports, **self.payloads}
        out["providers"] = {name: p.config.redacted() for name, p in started.items()}
        out["providers"].update({name: config.redacted() for name, config in self.plugin_settings.items()})
        return out

    def member(self, member_id: str) -> Member:
        """Load a member through the ``otp_pro_member_lookup`` hook; :class:`UnknownMember` if nobody knows it."""
        found: Member | None = None
        for impl in reversed(self.hook.otp_pro_member_lookup.get_hookimpls()):
            try:
                # The hookspec promises a Member or None.
                found = cast("Member | None", self.host.call(impl, otp=self, member_id=str(member_id)))
            except Exception as exc:  # noqa: BLE001
                raise PluginError(f"plugin {impl.plugin_name} failed to look up member {member_id!r}: "
                                  f"{type(exc).__name__}: {exc}", plugin=impl.plugin_name) from None
            if found is not None:
                break
        if found is None:
            raise UnknownMember(f"no member with id {member_id!r} (is a member_lookup plugin installed?)")
        return found

    # ----------------------------------------------------------- transactions

    @contextmanager
    def _write(self, member: Member | None = None) -> Iterator[tuple[Connection, list[AuditEvent]]]:
        """A write transaction; audit events collected in it are passed to listeners after commit.

        ``member`` is the :class:`Member` the caller was handed: listeners receive it with the events about them.
        """
        events: list[AuditEvent] = []
        with self.db.write() as conn:
            yield conn, events
        self._emit(events, member)

    def _audit(
        self, conn: Connection, events: list[AuditEvent], kind: str, member_id: str | None, *,
        outcome: str = audit.INFO, channel: str | None = None, ip: str | None = None,
        user_agent: str | None = None, actor: str | None = None, **details: Any,
    ) -> None:
        event = AuditEvent(kind=kind, at=self.clock(), outcome=outcome, member_id=member_id, channel=channel, ip=ip,
                           user_agent=user_agent, actor=actor, details=details)
        events.append(audit.write(self.db, conn, event))

    def _emit(self, events: Sequence[AuditEvent], member: Member | None = None) -> None:
        """Pass committed ``events`` to every ``otp_pro_event`` listener, in commit order.

        Events recorded by a listener (a notification's ``notification_sent``) are
        queued behind the batch being passed on, so every listener sees every event
        in the order it was written.
        """
        local = self.__dict__.get("_emitting")
        if local is None:
            local = self.__dict__.setdefault("_emitting", threading.local())
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
                for impl in self.hook.otp_pro_event.get_hookimpls():
                    try:
                        self.host.call(impl, otp=self, event=event, member=who)
                    except Exception as exc:  # noqa: BLE001 - a listener must not undo a committed change
                        log.warning("otp-pro event listener %s failed on %s: %s", impl.plugin_name, event.kind,
                                    type(exc).__name__)
        finally:
            local.queue = None

    def record_event(
        self, kind: str, member_id: str | None = None, *, outcome: str = "info", channel: str | None = None,
        ip: str | None = None, user_agent: str | None = None, actor: str | None = None, member: Member | None = None,
        **details: Any,
    ) -> AuditEvent:
        """Write a plugin's own audit event (``notification_sent``, a webhook's failure) and pass it to listeners.

        ``kind`` is a short snake_case name (document it for the site's support);
        ``outcome`` is ``"ok"``, ``"failed"`` or ``"info"``; ``details`` hold facts
        (counts, ids, error classes), never a code, token or password. Returns the
        stored event (with its ``id``). Called from an ``otp_pro_event`` listener,
        the new event reaches the listeners after the events already committed.
        """
        if outcome not in (audit.OK, audit.FAILED, audit.INFO):
            raise ValueError(f"outcome must be 'ok', 'failed' or 'info', not {outcome!r}")
        with self._write(member) as (conn, events):
            self._audit(conn, events, kind, member_id, outcome=outcome, channel=channel, ip=ip,
                        user_agent=user_agent, actor=actor, **details)
        return events[0]

    def _state(self, conn: Connection, member_id: str, *, for_update: bool = False) -> Any:
        query = _STATE_FOR_UPDATE if for_update and self.db.is_postgresql else _STATE
        return self.db.run(conn, query, {"b_member": member_id}).first()

    def _ensure_member(self, conn: Connection, member_id: str) -> None:
        now = self.clock()
        values = {
            "member_id": member_id, "created_at": now, "updated_at": now, "failures": 0, "consecutive_failures": 0
        }
        statement = self.__dict__.get("_ensure_statement")
        if statement is None:
            # The two supported dialects' insert() return different classes with the same on_conflict_do_nothing().
            dialect_insert: Any
            if conn.dialect.name == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            statement = self.__dict__["_ensure_statement"] = dialect_insert(members).on_conflict_do_nothing(
                index_elements=["member_id"])
        conn.execute(statement, values)

    # ----------------------------------------------------------------- policy

    def requirement(self, member: Member) -> policy.Requirement:
        """The policy's answer for ``member`` (no database access)."""
        return policy.resolve(self.settings, member.roles, self.registered_channels)

    def _unavailable_reason(self, member: Member, channel: str) -> str | None:
        definition = self.channels.get(channel)
        if definition is None:
            return "this channel is not installed"
        if definition.payload is not None:
            reason = definition.payload.available(member)
            if reason:
                return reason
        if definition.transport is not None:
            try:
                definition.transport.recipient(member)
            except RecipientUnavailable as exc:
                return exc.reason
        answers = self.host.call_each("otp_pro_channel_available", otp=self, member=member, channel=channel)
        for record, answer in answers:
            if answer is False:
                return f"hidden by plugin {record.name if record else '?'}"
            if isinstance(answer, str) and answer:
                return answer
        return None

    def available_channels(self, member: Member) -> list[ChannelInfo]:
        """The channels the policy allows for ``member``, each with its availability."""
        req = self.requirement(member)
        out = []
        for name in req.channels:
            reason = self._unavailable_reason(member, name)
            label = self.channels[name].label if name in self.channels else name
            out.append(ChannelInfo(name, label, reason is None, reason))
        return out

    def status(self, member: Member, *, start_grace: bool = True) -> MemberStatus:
        """Where ``member`` stands: requirement, enrolment, channels, grace period, lockout.

        The first time a member is seen under a required policy the grace period starts.
        ``start_grace=False`` only looks (support tools): nothing is written, and a grace
        period that has not started is shown as if it started now.
        """
        req = self.requirement(member)
        now = self.clock()
        with self.db.read() as conn:
            state = self._state(conn, member.id)
            remaining = 0
            if state is not None and state.channel is not None:
                remaining = conn.execute(
                    select(func.count()).select_from(backup_codes).where(
                        backup_codes.c.member_id == member.id, backup_codes.c.used_at.is_(None)
                    )
                ).scalar_one()
        required_since = state.required_since if state is not None else None
        if req.is_required and required_since is None:
            required_since = self._start_grace(member.id, now) if start_grace else now
        elif not req.is_required and required_since is not None and start_grace:
            # No longer required: a later requirement starts a fresh grace period.
            with self.db.write() as conn:
                conn.execute(update(members).where(members.c.member_id == member.id).values(required_since=None))
        infos = [ChannelInfo(n, self.channels[n].label, True) for n in req.channels]
        available: list[str] = []
        unavailable: dict[str, str] = {}
        for info in infos:
            reason = self._unavailable_reason(member, info.name)
            if reason is None:
                available.append(info.name)
            else:
                unavailable[info.name] = reason
        enrolled = state is not None and state.channel is not None
        grace_ends_at = required_since + timedelta(days=req.grace_days) if req.is_required and required_since else None
        in_grace = bool(req.is_required and not enrolled and grace_ends_at is not None and now < grace_ends_at)
        default = req.default_channel if req.default_channel in available else (available[0] if available else None)
        return MemberStatus(
            member_id=member.id,
            requirement=req.requirement,
            enrolled=enrolled,
            channel=state.channel if enrolled else None,
            channels=tuple(available),
            default_channel=default,
            unavailable=unavailable,
            grace_ends_at=grace_ends_at,
            must_setup=bool(req.is_required and not enrolled and not in_grace),
            in_grace=in_grace,
            locked_until=self._locked_until(state, now),
            backup_codes_remaining=remaining,
            can_disable=enrolled and not req.is_required,
            disabled=state is not None and state.disabled_at is not None and not enrolled,
        )

    def _start_grace(self, member_id: str, now: datetime) -> datetime:
        with self.db.write() as conn:
            self._ensure_member(conn, member_id)
            conn.execute(
                update(members)
                .where(members.c.member_id == member_id, members.c.required_since.is_(None))
                .values(required_since=now, updated_at=now)
            )
            value = conn.execute(select(members.c.required_since).where(members.c.member_id == member_id)).scalar_one()
        return value or now

    def _locked_until(self, state: Any, now: datetime) -> datetime | None:
        if state is None:
            return None
        if state.consecutive_failures >= NIST_MAX_ATTEMPTS:
            return HARD_LOCK
        if state.locked_until is not None and state.locked_until > now:
            return state.locked_until
        return None

    def _check_channel(self, member: Member, req: policy.Requirement, channel: str) -> None:
        if req.requirement == policy.NOT_REQUIRED:
            raise PolicyError("two-factor authentication is not offered to this member")
        if channel not in self.channels:
            raise ChannelUnavailable(f"unknown channel {channel!r}", channel=channel, reason="unknown")
        if channel not in req.channels:
            allowed = ", ".join(req.channels) or "none"
            raise ChannelUnavailable(
                f"channel {channel!r} is not allowed for this member (allowed: {allowed})",
                channel=channel,
                reason="not allowed",
            )
        reason = self._unavailable_reason(member, channel)
        if reason:
            raise ChannelUnavailable(f"channel {channel!r} is not available: {reason}", channel=channel, reason=reason)

    # ------------------------------------------------------------------ setup

    def begin_setup(
        self, member: Member, channel: str, *, seed: str | None = None, ip: str | None = None,
        user_agent: str | None = None, binding: str | None = None,
    ) -> SetupInfo:
        """Start setting up ``channel`` for ``member``.

        For ``totp`` a fresh seed is kept (encrypted) as pending and returned as a
        provisioning URI and QR code; ``seed`` (base32, at least 128 bits) imports an
        existing one instead, for members moving from another system. For a delivered
        channel a confirmation code (or link) is sent; ``binding`` ties a link to the
        browser as in :meth:`send_challenge`. Finish with :meth:`complete_setup`, or
        :meth:`verify_token` for a link.
        """
        req = self.requirement(member)
        self._check_channel(member, req, channel)
        now = self.clock()
        expires = now + timedelta(seconds=self.settings.setup_ttl_seconds)
        with self.db.read() as conn:
            locked = self._locked_until(self._state(conn, member.id), now)
        if locked:
            raise LockedOut("too many failed attempts; try again later", locked_until=locked)
        if seed is not None and channel != TOTP:
            raise SetupError("a seed can only be imported for the totp channel")
        if channel == TOTP:
            seed = totp.new_seed() if seed is None else totp.check_seed(seed)
            cfg = self.settings.totp
            issuer = cfg.issuer or self.settings.site_name
            uri = totp.provisioning_uri(seed, member.email or member.display_name, issuer, cfg)
            with self._write(member) as (conn, events):
                self._ensure_member(conn, member.id)
                conn.execute(
                    update(members).where(members.c.member_id == member.id).values(
                        pending_channel=TOTP, pending_totp_seed=self.keys.encrypt(seed), pending_expires_at=expires,
                        updated_at=now,
                    )
                )
                self._audit(conn, events, audit.SETUP_STARTED, member.id, channel=TOTP, ip=ip, user_agent=user_agent)
            return SetupInfo(
                channel=TOTP, expires_at=expires, provisioning_uri=uri, qr_svg=totp.qr_svg(uri), secret=seed
            )
        with self._write(member) as (conn, events):
            self._ensure_member(conn, member.id)
            conn.execute(
                update(members).where(members.c.member_id == member.id).values(
                    pending_channel=channel, pending_totp_seed=None, pending_expires_at=expires, updated_at=now
                )
            )
            self._audit(conn, events, audit.SETUP_STARTED, member.id, channel=channel, ip=ip, user_agent=user_agent)
        challenge = self._deliver(member, channel, PURPOSE_SETUP, ip=ip, user_agent=user_agent, binding=binding)
        return SetupInfo(channel=channel, expires_at=expires, challenge=challenge)

    def complete_setup(
        self, member: Member, code: str, *, ip: str | None = None, user_agent: str | None = None
    ) -> list[str]:
        """Confirm the pending setup with ``code``; return the new backup codes (show them once).

        A wrong code counts as a failed attempt and raises :class:`InvalidCode`.
        """
        now = self.clock()
        normalized = normalize_code(code)
        with self.db.read() as conn:
            state = self._state(conn, member.id)
        if state is None or state.pending_channel is None:
            raise SetupError("no setup in progress: call begin_setup first")
        if state.pending_expires_at is None or state.pending_expires_at <= now:
            raise SetupError("the setup expired: start it again")
        locked = self._locked_until(state, now)
        if locked:
            raise LockedOut("too many failed attempts; try again later", locked_until=locked)
        channel = state.pending_channel
        if normalized is None:
            raise InvalidCode("the code is not in a valid format", result=VerifyResult(False, reason="malformed"))
        with self._write(member) as (conn, events):
            ok = False
            totp_step = None
            if channel == TOTP:
                seed = self.keys.decrypt(state.pending_totp_seed)
                totp_step = totp.match(seed, normalized, now, self.settings.totp, after_step=None)
                if totp_step is not None:
                    ok = conn.execute(
                        update(members).where(
                            members.c.member_id == member.id,
                            members.c.pending_channel == TOTP,
                            members.c.pending_totp_seed == state.pending_totp_seed,
                        ).values(
                            totp_seed=self.keys.rotate(state.pending_totp_seed), totp_last_step=totp_step
                        )
                    ).rowcount == 1
            else:
                consumed = self._consume_challenge(conn, member.id, normalized, PURPOSE_SETUP, now, channel=channel)
                ok = consumed is not None
            if not ok:
                result = self._record_failure(conn, events, member.id, now, channel=channel, ip=ip,
                                              user_agent=user_agent, reason="invalid", setup=True)
            else:
                values: dict[str, Any] = dict(
                    channel=channel, enrolled_at=now, disabled_at=None, pending_channel=None, pending_totp_seed=None,
                    pending_expires_at=None, failures=0, consecutive_failures=0, locked_until=None, updated_at=now,
                )
                if channel != TOTP:
                    values.update(totp_seed=None, totp_last_step=None)
                conn.execute(update(members).where(members.c.member_id == member.id).values(**values))
                codes = self._new_backup_codes(conn, member.id, now)
                self._audit(conn, events, audit.SETUP_COMPLETED, member.id, channel=channel, ip=ip,
                            user_agent=user_agent, outcome=audit.OK)
                # setup=True: part of the setup, which the member hears about once.
                self._audit(conn, events, audit.BACKUP_CODES_GENERATED, member.id, channel=channel, ip=ip,
                            user_agent=user_agent, count=len(codes), setup=True)
        if not ok:
            raise InvalidCode("the code is not correct", result=result)
        return codes

    def _new_backup_codes(self, conn: Connection, member_id: str, now: datetime) -> list[str]:
        codes = [new_backup_code() for _ in range(self.settings.backup_code_count)]
        salt = secrets.token_bytes(16)
        key_id = self.keys.key_ids[0]
        pepper = self.keys.pepper(key_id)
        assert pepper is not None
        conn.execute(delete(backup_codes).where(backup_codes.c.member_id == member_id))
        conn.execute(
            backup_codes.insert(),
            [
                {
                    "member_id": member_id,
                    "code_hash": backup_kdf(normalize_code(c) or "", salt, pepper).hex(),
                    "created_at": now,
                }
                for c in codes
            ],
        )
        conn.execute(
            update(members).where(members.c.member_id == member_id).values(backup_salt=salt.hex(), backup_key_id=key_id)
        )
        return codes

    def regenerate_backup_codes(
        self, member: Member, *, actor: str | None = None, ip: str | None = None, user_agent: str | None = None
    ) -> list[str]:
        """Replace the member's backup codes with a fresh set; the old ones stop working. Show them once."""
        now = self.clock()
        with self._write(member) as (conn, events):
            state = self._state(conn, member.id, for_update=True)
            if state is None or state.channel is None:
                raise NotEnrolled("backup codes need a configured second factor")
            codes = self._new_backup_codes(conn, member.id, now)
            self._audit(conn, events, audit.BACKUP_CODES_GENERATED, member.id, channel=state.channel, ip=ip,
                        user_agent=user_agent, actor=actor, count=len(codes))
        return codes

    # --------------------------------------------------------------- delivery

    def send_challenge(
        self, member: Member, *, channel: str | None = None, ip: str | None = None, user_agent: str | None = None,
        binding: str | None = None,
    ) -> Challenge:
        """Send a one-time code (or link) to ``member`` on their channel, or on ``channel``.

        Raises :class:`ThrottledError` inside the cooldown or over an hourly cap,
        :class:`ChannelUnavailable` for a channel the member cannot use, and a
        :class:`DeliveryError` when the transport failed (the challenge is then
        void and does not count against the cooldown; ``error.challenge_id`` names
        it, and :meth:`delivery_status` lists the channels to fall back to).
        ``binding`` (for example a browser cookie value) is stored as a keyed hash;
        :meth:`verify_token` then accepts the token only with the same binding.

        With a queue dispatcher (``dispatcher = "celery"``) the challenge comes back
        with ``status == "queued"``: a worker sends it (see :meth:`delivery_status`).
        Asking for another channel right after the member's delivery failed is a
        fallback, recorded as a ``delivery_fallback`` event.
        """
        req = self.requirement(member)

        def usable(chosen: str) -> str:
            """``chosen``, if a code may be sent there to ``member`` whatever their state says."""
            if chosen == TOTP:
                raise ChannelUnavailable("an authenticator app has nothing to send: ask for its code", channel=TOTP,
                                         reason="nothing to send")
            self._check_channel(member, req, chosen)
            return chosen

        def choose(state: Any) -> str:
            """The channel to send on, for the member's ``state``; or why nothing is sent."""
            if state is None or state.channel is None:
                raise NotEnrolled("the member has no second factor set up")
            # Without an explicit channel the member's own is used; a TOTP member gets
            # nothing sent unless a fallback channel is asked for by name.
            chosen = usable(channel or state.channel)
            locked = self._locked_until(state, self.clock())
            if locked:
                raise LockedOut("too many failed attempts; try again later", locked_until=locked)
            return chosen

        # Before anything is read, the likely channel: the one asked for, else the policy's default.
        guess = channel or req.default_channel
        return self._deliver(member, None, PURPOSE_VERIFY, ip=ip, user_agent=user_agent, binding=binding,
                             choose=choose, likely=(lambda: usable(guess)) if guess else None)

    def _outgoing(self, member: Member, channel: str, purpose: str, binding: str | None) -> _Outgoing:
        """The message of a new challenge on ``channel``: its code or link made, rendered, sealed for a queue."""
        definition = self.channels[channel]
        transport, payload = definition.transport, definition.payload
        assert transport is not None and payload is not None
        try:
            recipient = transport.recipient(member)
        except RecipientUnavailable as exc:
            raise ChannelUnavailable(f"channel {channel!r} is not available: {exc.reason}", channel=channel,
                                     reason=exc.reason) from None
        now = self.clock()
        expires = now + timedelta(seconds=payload.ttl_seconds or self.settings.code_ttl_seconds)
        value = payload.create(PayloadContext(member, channel, transport.name, purpose, now, expires, binding))
        # Rendered before the challenge row exists: a broken template plugin leaves nothing pending.
        message = self.render_message(
            transport, member, channel, "challenge",
            {"payload": value.display, "payload_kind": payload.name, "payload_is_link": not payload.entered_as_code,
             "purpose": purpose, "recipient": recipient,
             "issued_at": now, "expires_at": expires, **value.variables},
        )
        message.sensitive = (value.secret, value.display)
        # Encrypted before the insert (Fernet is not free); only a queue worker ever reads it.
        sealed = self.keys.encrypt(json.dumps(_message_data(message))) if self.dispatcher.queued else None
        return _Outgoing(channel, transport, payload, recipient, self.keys.hash("recipient", recipient.strip().lower()),
                         now, expires, value, message, sealed)

    def _deliver(self, member: Member, channel: str | None, purpose: str, *, ip: str | None, user_agent: str | None,
                 binding: str | None = None, choose: Callable[[Any], str] | None = None,
                 likely: Callable[[], str] | None = None) -> Challenge:
        """Make, record and send (or queue) a challenge on ``channel``.

        With ``choose`` (:meth:`send_challenge`) the channel is ``choose(state)`` for the
        member's state; asking for a channel other than the member's own is a fallback.
        On PostgreSQL an inline send first makes the message for the ``likely()`` channel
        and tries to read the state and record the challenge with one statement
        (:data:`_SEEN_AND_SEND`), which records only if the member has that channel and
        nothing stands in the way. Otherwise (SQLite, a queue, a different channel, a
        throttled send) the state is chosen from as read, and the transaction of
        :meth:`_record` reads it again under the row lock and decides.
        """
        queued = self.dispatcher.queued
        challenge_id: Any = None
        other_channel = False
        if choose is None:
            out = self._outgoing(member, cast(str, channel), purpose, binding)
        else:
            # The message is made before any transaction (plugins' hooks hold no lock); the transaction
            # makes it again only if the member's channel changed in between.
            guess = self._likely_outgoing(member, likely, purpose, binding) \
                if likely is not None and self.db.is_postgresql and not queued else None
            if guess is not None:
                with self.db.write_once() as conn:
                    seen = self.db.run(conn, _SEEN_AND_SEND, {**self._send_params(member, guess, purpose, binding),
                                                              "b_state_channel": guess.channel,
                                                              "b_now": guess.now}).first()
                challenge_id = seen.sent_id if seen is not None else None
            else:
                with self.db.read_once() as conn:
                    seen = self._state(conn, member.id)
            if challenge_id is not None:
                out = cast(_Outgoing, guess)
            else:
                chosen = choose(seen)
                out = guess if guess is not None and guess.channel == chosen else \
                    self._outgoing(member, chosen, purpose, binding)
                other_channel = chosen != seen.channel
        if challenge_id is None:
            challenge_id, out = self._record(member, out, purpose, ip=ip, user_agent=user_agent, binding=binding,
                                             other_channel=other_channel, choose=choose)
        channel, transport, recipient, now, expires, message = (
            out.channel, out.transport, out.recipient, out.now, out.expires, out.message)
        if queued:
            try:
                self.dispatcher.enqueue(int(challenge_id))
            except Exception as exc:  # noqa: BLE001 - a broker that cannot take the task fails this delivery
                log.warning("otp-pro dispatcher %s could not enqueue: %s", self.dispatcher.name, type(exc).__name__)
                unqueued = TransientDeliveryError("the delivery queue is not reachable just now",
                                                  transport=transport.name, provider_code="enqueue")
                self._once_more(lambda: self._fail_delivery(
                    int(challenge_id), member.id, channel, purpose, transport.name, unqueued, ip=ip,
                    user_agent=user_agent, only_if="queued", member=member))
                raise unqueued from None
            return Challenge(id=int(challenge_id), member_id=member.id, channel=channel, purpose=purpose,
                             created_at=now, expires_at=expires, recipient_hint=mask_recipient(recipient),
                             status="queued")
        try:
            receipt = transport.send(message)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded; non-delivery errors are wrapped
            error = exc if isinstance(exc, DeliveryError) else TransientDeliveryError(
                f"transport {transport.name} failed: {type(exc).__name__}", transport=transport.name,
                provider_code=type(exc).__name__,
            )
            # only_if: a retry after a lost connection must not record the failure twice.
            self._once_more(lambda: self._fail_delivery(
                int(challenge_id), member.id, channel, purpose, transport.name, error, ip=ip, user_agent=user_agent,
                only_if="pending", member=member))
            if error is not exc:
                log.warning("otp-pro transport %s raised %s", transport.name, type(exc).__name__)
            raise error from None
        # Marked sent; a new challenge voids the member's earlier unused ones (of either purpose).
        marked = {"b_member": member.id, "b_id": challenge_id, "b_sent_at": self.clock(), "b_now": now,
                  "b_message_id": (receipt.provider_message_id or "")[:128] or None}
        sent = AuditEvent(kind=audit.CHALLENGE_SENT, at=self.clock(), outcome=audit.OK, member_id=member.id,
                          channel=channel, ip=ip, user_agent=user_agent, details=dict(
                              purpose=purpose, challenge_id=challenge_id, transport=transport.name,
                              recipient=mask_recipient(recipient), provider_message_id=receipt.provider_message_id))
        # The message is out: its record must not be lost to a dropped connection, or the code the
        # member holds would be refused and its pending row would hold the cooldown.
        self._once_more(lambda: self._mark_sent(int(challenge_id), marked, sent, member),
                        done=lambda: self._challenge_status(int(challenge_id)) == "sent")
        return Challenge(id=int(challenge_id), member_id=member.id, channel=channel, purpose=purpose, created_at=now,
                         expires_at=expires, recipient_hint=mask_recipient(recipient),
                         provider_message_id=receipt.provider_message_id)

    def _likely_outgoing(self, member: Member, likely: Callable[[], str], purpose: str,
                         binding: str | None) -> _Outgoing | None:
        """The message on the ``likely()`` channel, or None when it cannot be made there (the member
        may not have that channel; :meth:`_deliver` then chooses from the member's state as usual,
        and whatever stood in the way is raised there if it still matters)."""
        try:
            return self._outgoing(member, likely(), purpose, binding)
        except Exception:  # noqa: BLE001 - a guess: the usual path makes the message again, or raises
            return None

    def _send_params(self, member: Member, out: _Outgoing, purpose: str, binding: str | None) -> dict[str, Any]:
        """The binds of the throttle's counts and limits and of the new challenge's row."""
        limits = self.settings
        return {
            "b_member": member.id, "b_recipient": out.recipient_hash, "b_since": out.now - timedelta(hours=1),
            "b_member_cap": limits.max_sends_per_hour, "b_recipient_cap": limits.max_sends_per_hour_per_recipient,
            "b_cooldown_since": out.now - timedelta(seconds=limits.resend_cooldown_seconds)
            if limits.resend_cooldown_seconds else HARD_LOCK,
            "c_member_id": member.id, "c_channel": out.channel, "c_payload": out.payload.name, "c_purpose": purpose,
            "c_secret_hash": self.keys.hash("challenge", out.value.secret), "c_recipient_hash": out.recipient_hash,
            "c_binding_hash": self.keys.hash("binding", binding) if binding else None,
            "c_status": "queued" if self.dispatcher.queued else "pending", "c_created_at": out.now,
            "c_expires_at": out.expires, "c_message": out.sealed,
        }

    def _record(self, member: Member, out: _Outgoing, purpose: str, *, ip: str | None,
                user_agent: str | None, binding: str | None, other_channel: bool,
                choose: Callable[[Any], str] | None) -> tuple[Any, _Outgoing]:
        """The new challenge's transaction: the member's lock, the throttle, the insert (and the
        fallback or queued event); the challenge's id and message, or the :class:`ThrottledError`
        raised once its ``send_throttled`` row is committed."""
        queued = self.dispatcher.queued
        with self._write() as (conn, events):
            if self.db.is_postgresql:
                # One send at a time per member: the row lock. The row is made first only if missing.
                state = self.db.run(conn, _LOCK_FOR_SEND, {"b_member": member.id}).first()
                if choose is not None:
                    chosen = choose(state)
                    if out.channel != chosen:  # the member's channel changed since _deliver read it
                        out = self._outgoing(member, chosen, purpose, binding)
                    other_channel = chosen != state.channel
                elif state is None:
                    self._ensure_member(conn, member.id)
                    self.db.run(conn, _LOCK_FOR_SEND, {"b_member": member.id})
            elif choose is None:  # BEGIN IMMEDIATE already serialises writers
                # With choose, _deliver read the member's row, and rows of otp_members are never deleted.
                self._ensure_member(conn, member.id)
            params = self._send_params(member, out, purpose, binding)
            channel, now = out.channel, out.now
            challenge_id: Any = None
            # Only when the member asked for a channel other than their own.
            failed = self._failed_before(conn, member.id, channel) if other_channel else None
            if self.db.is_postgresql and not queued:
                # The throttle's counts and the insert in one statement; the refusal is explained from the counts.
                counts = self.db.run(conn, _SENDS_AND_INSERT, params).one()
                challenge_id = counts.id
                refusal = None if challenge_id is not None else self._throttle_refusal(counts, now)
                if refusal is None and challenge_id is None:  # the same rule in SQL and in Python: cannot happen
                    raise RuntimeError("the send throttle's SQL refused a send that its counts allow")
            else:
                refusal = self._throttle_refusal(self.db.run(conn, _SENDS, params).one(), now)
            if refusal is not None:
                self._audit(conn, events, audit.SEND_THROTTLED, member.id, outcome=audit.FAILED, channel=channel, ip=ip,
                            user_agent=user_agent, limit=refusal.limit, retry_after=refusal.retry_after)
            else:
                if failed is not None:
                    self._audit(conn, events, audit.DELIVERY_FALLBACK, member.id, channel=channel, ip=ip,
                                user_agent=user_agent, from_channel=failed.channel, to_channel=channel,
                                failed_challenge_id=failed.id, error_code=failed.error_code)
                if queued:
                    conn.execute(_REPLACE_QUEUED, {"b_member": member.id, "b_now": now})
                if challenge_id is None:
                    challenge_id = self.db.run(conn, _INSERT_CHALLENGE, params).one()[0]
                if queued:
                    self._audit(conn, events, audit.CHALLENGE_QUEUED, member.id, channel=channel, ip=ip,
                                user_agent=user_agent, purpose=purpose, challenge_id=challenge_id,
                                transport=out.transport.name, recipient=mask_recipient(out.recipient),
                                dispatcher=self.dispatcher.name)
        if refusal is not None:
            raise refusal
        return challenge_id, out

    def _once_more(self, action: Callable[[], object], done: Callable[[], bool] | None = None) -> None:
        """Run ``action``, a write that records what a provider already did, once more if the connection was lost.

        The first :class:`StorageError` rolled its transaction back, and a pooled
        connection the server dropped is replaced on the next checkout, so the second
        try runs on a fresh connection. The connection can also be lost after the
        server committed: ``done`` then says so and nothing is written twice
        (``action`` itself may be conditional on the row's status instead). A
        database that is down for good fails both tries.
        """
        try:
            action()
        except StorageError as exc:
            if exc.reason not in ("connection_lost", "unavailable"):
                raise
            log.warning("otp-pro lost its database connection while recording a delivery; trying once more")
            if done is None or not done():
                action()

    def _challenge_status(self, challenge_id: int) -> str | None:
        with self.db.read_once() as conn:
            status: str | None = conn.execute(select(challenges.c.status).where(
                challenges.c.id == challenge_id)).scalar_one_or_none()
        return status

    def _mark_sent(self, challenge_id: int, marked: dict[str, Any], sent: AuditEvent, member: Member) -> None:
        """Mark the inline challenge sent (voiding the member's older ones) with its ``challenge_sent`` row."""
        if self.db.is_postgresql:
            with self.db.write_once() as conn:
                event_id = self.db.run(conn, _MARK_SENT_AUDITED, {**marked, **audit.params(sent)}).one()[0]
            self._emit([AuditEvent(**{**sent.__dict__, "id": event_id})], member)
        else:
            with self._write(member) as (conn, events):
                self.db.run(conn, _MARK_SENT_VOID_OTHERS, marked)
                events.append(audit.write(self.db, conn, sent))

    def _fail_delivery(self, challenge_id: int, member_id: str, channel: str, purpose: str, transport: str,
                       error: DeliveryError, *, ip: str | None = None, user_agent: str | None = None,
                       attempts: int | None = None, only_if: str | None = None, member: Member | None = None) -> bool:
        """Mark a challenge ``failed`` (its ciphertext wiped) with a ``delivery_failed`` event; False if
        ``only_if`` (a status) no longer held, in which case nothing is written."""
        error.challenge_id = challenge_id
        condition = [challenges.c.id == challenge_id]
        if only_if is not None:
            condition.append(challenges.c.status == only_if)
        code = (error.provider_code or "")[:64] or None
        # Before the transaction: it may call plugins.
        fallback = list(self.fallback_channels(member, channel) if member is not None
                        else self._fallback_names(member_id, channel))
        with self._write(member) as (conn, events):
            if conn.execute(update(challenges).where(*condition).values(
                    status="failed", error_code=code, message=None)).rowcount != 1:
                return False
            extra: dict[str, Any] = {} if attempts is None else {"attempts": attempts}
            self._audit(conn, events, audit.DELIVERY_FAILED, member_id, outcome=audit.FAILED, channel=channel,
                        ip=ip, user_agent=user_agent, purpose=purpose, challenge_id=challenge_id,
                        error=type(error).__name__, provider_code=error.provider_code, permanent=error.permanent,
                        transport=transport, fallback=fallback, **extra)
        return True

    def _fallback_names(self, member_id: str, failed_channel: str) -> tuple[str, ...]:
        """For the audit record: the channels a member could fall back to, when the member can be looked up."""
        try:
            member = self.member(member_id)
        except Exception:  # noqa: BLE001 - no member_lookup plugin: the web layer asks with the Member it has
            return ()
        return self.fallback_channels(member, failed_channel)

    def _failed_before(self, conn: Connection, member_id: str, channel: str) -> Any:
        """Inside a new challenge's transaction, before its insert: the member's latest challenge when its
        delivery failed on another channel (the new one is then a fallback), or None."""
        latest = conn.execute(_LATEST, {"b_member": member_id}).first()
        return latest if latest is not None and latest.status == "failed" and latest.channel != channel else None

    def fallback_channels(self, member: Member, failed_channel: str | None = None) -> tuple[str, ...]:
        """The member's channels to fall back to after a failed delivery on ``failed_channel``.

        The channels the policy allows this member, in the policy's order, that
        deliver something (not ``totp``) and that no availability check hides,
        without ``failed_channel``.
        """
        req = self.requirement(member)
        return tuple(name for name in req.channels
                     if name != failed_channel and name != TOTP and name in self.channels
                     and self._unavailable_reason(member, name) is None)

    def delivery_status(self, member: Member, challenge_id: int | None = None) -> DeliveryStatus | None:
        """Where the delivery of the member's challenge ``challenge_id`` (default: their latest) stands.

        ``None`` when the member has no such challenge (another member's id gives
        ``None`` too). A queued or sending delivery still in flight when the code's
        lifetime ends reads as ``failed`` with ``error_code = "expired"``. A failed
        delivery lists ``fallback_channels`` (see :meth:`fallback_channels`).
        """
        if challenge_id is not None:
            try:
                challenge_id = int(challenge_id)
            except (TypeError, ValueError):
                return None
        with self.db.read_once() as conn:
            if challenge_id is None:
                row = conn.execute(_DELIVERY_LATEST, {"b_member": member.id}).first()
            else:
                row = conn.execute(_DELIVERY_BY_ID, {"b_member": member.id, "b_id": challenge_id}).first()
        if row is None:
            return None
        status, error_code = row.status, row.error_code
        if status in _IN_FLIGHT and row.expires_at <= self.clock():
            status, error_code = "failed", "expired"
        elif status == "pending":
            status = "sending"  # an inline send in progress
        fallback = self.fallback_channels(member, row.channel) if status == "failed" else ()
        return DeliveryStatus(challenge_id=int(row.id), channel=row.channel, status=status, purpose=row.purpose,
                              created_at=row.created_at, error_code=error_code, attempts=int(row.attempts or 0),
                              sent_at=row.sent_at, fallback_channels=fallback)

    def deliver_queued(self, challenge_id: int) -> QueuedDelivery:
        """Send a queued challenge: what a queue dispatcher's worker calls with the id it was given.

        Claims the row (``queued`` -> ``sending``, attempt counted) with one
        conditional UPDATE, so a duplicated or retried task for a row that is not
        queued does nothing (``skipped``). Then decrypts the message, sends it through
        the channel's transport and marks the row ``sent`` (voiding the member's older
        unused challenges, as an inline send does) with its ciphertext wiped. A
        transient error puts the row back to ``queued`` and answers ``retry`` with the
        backoff to wait, until ``delivery_max_attempts``; a permanent error, the last
        attempt, or a code whose lifetime ended in the queue answers ``failed``, with a
        ``delivery_failed`` event. Never raises for a delivery problem.
        """
        now = self.clock()
        with self.db.write_once() as conn:
            row = conn.execute(_CLAIM, {"b_id": int(challenge_id)}).first()
        if row is None:
            return QueuedDelivery("skipped", int(challenge_id))
        member_id, channel, purpose, attempts = row.member_id, row.channel, row.purpose, int(row.attempts)
        definition = self.channels.get(channel)
        transport = definition.transport if definition is not None else None
        transport_name = transport.name if transport is not None else channel.partition(":")[0]

        def fail(error: DeliveryError) -> QueuedDelivery:
            self._fail_delivery(int(challenge_id), member_id, channel, purpose, transport_name, error,
                                attempts=attempts, only_if="sending")
            return QueuedDelivery("failed", int(challenge_id), attempts, error_code=error.provider_code)

        if row.expires_at <= now:
            return fail(PermanentDeliveryError("the code expired before a worker could send it",
                                               transport=transport_name, provider_code="expired"))
        if transport is None:
            return fail(PermanentDeliveryError(f"the worker has no channel {channel!r}", transport=transport_name,
                                               provider_code="channel"))
        try:
            message = _message_from(json.loads(self.keys.decrypt(row.message or "")))
        except (ConfigurationError, ValueError, TypeError, KeyError):
            return fail(PermanentDeliveryError("the queued message cannot be decrypted with the configured keys",
                                               transport=transport_name, provider_code="undecryptable"))
        try:
            receipt = transport.send(message)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded; non-delivery errors are wrapped
            error = exc if isinstance(exc, DeliveryError) else TransientDeliveryError(
                f"transport {transport_name} failed: {type(exc).__name__}", transport=transport_name,
                provider_code=type(exc).__name__)
            if error is not exc:
                log.warning("otp-pro transport %s raised %s", transport_name, type(exc).__name__)
            if error.permanent or attempts >= self.settings.delivery_max_attempts:
                return fail(error)
            wait = self.settings.delivery_retry_backoff_seconds * 2 ** (attempts - 1)
            with self._write() as (conn, events):
                conn.execute(_REQUEUE, {"b_id": int(challenge_id)})
                self._audit(conn, events, audit.DELIVERY_RETRIED, member_id, outcome=audit.FAILED, channel=channel,
                            purpose=purpose, challenge_id=int(challenge_id), attempts=attempts,
                            error=type(error).__name__, provider_code=error.provider_code, retry_after=wait,
                            transport=transport_name)
            return QueuedDelivery("retry", int(challenge_id), attempts, retry_after=wait,
                                  error_code=error.provider_code)
        sent_at = self.clock()

        def mark_sent() -> None:
            with self._write() as (conn, events):
                conn.execute(_MARK_QUEUED_SENT, {
                    "b_member": member_id, "b_id": int(challenge_id), "b_sent_at": sent_at, "b_now": sent_at,
                    "b_message_id": (receipt.provider_message_id or "")[:128] or None})
                self._audit(conn, events, audit.CHALLENGE_SENT, member_id, outcome=audit.OK, channel=channel,
                            purpose=purpose, challenge_id=int(challenge_id), transport=transport_name,
                            recipient=mask_recipient(message.recipient),
                            provider_message_id=receipt.provider_message_id, attempts=attempts,
                            dispatcher=self.dispatcher.name)

        # As inline: the message is out, its record gets a second try on a fresh connection.
        self._once_more(mark_sent, done=lambda: self._challenge_status(int(challenge_id)) == "sent")
        return QueuedDelivery("sent", int(challenge_id), attempts)

    def _throttle_refusal(self, counts: Any, now: datetime) -> ThrottledError | None:
        """Why a send is refused, from the member's and the recipient's sends (a :data:`_SENDS` row), or None."""
        s = self.settings
        last, member_count, member_oldest, recipient_count, recipient_oldest = counts[:5]
        if s.resend_cooldown_seconds:
            if last is not None and last > now - timedelta(seconds=s.resend_cooldown_seconds):
                wait = int((last + timedelta(seconds=s.resend_cooldown_seconds) - now).total_seconds()) + 1
                return ThrottledError(f"please wait {wait} s before asking for another code", retry_after=wait,
                                      limit="cooldown")
        caps = (
            (member_count, member_oldest, s.max_sends_per_hour, "member_hourly",
             "too many codes sent in the last hour"),
            (recipient_count, recipient_oldest, s.max_sends_per_hour_per_recipient, "recipient_hourly",
             "too many codes sent to this address in the last hour"),
        )
        for count, oldest, cap, limit, text in caps:
            if count >= cap:
                wait = int((oldest + timedelta(hours=1) - now).total_seconds()) + 1
                return ThrottledError(f"{text}; try again in {wait // 60 + 1} min", retry_after=wait, limit=limit)
        return None

    def message_variables(self, member: Member, channel: str, kind: str, extra: Mapping[str, Any]) -> dict[str, Any]:
        """The template variables of a message: the core's, then every plugin's additions."""
        s = self.settings
        issued = extra.get("issued_at") or self.clock()
        expires = extra.get("expires_at")
        variables: dict[str, Any] = {
            "site_name": s.site_name,
            "member_name": member.display_name,
            "support_email": s.support_email or f"the {s.site_name} team",
            "channel": channel,
            "issued_at": issued,
            "expires_at": expires,
            "expiry_minutes": max(1, round((expires - issued).total_seconds() / 60)) if expires else None,
            "payload": None,
            "payload_kind": None,
            "payload_is_link": False,
            "purpose": None,
        }
        variables.update(extra)
        for _record, added in self.host.call_each("otp_pro_message_variables", otp=self, member=member, channel=channel,
                                                   kind=kind, variables=dict(variables)):
            if isinstance(added, Mapping):
                variables.update(added)
        return variables

    def render_message(self, transport: Transport, member: Member, channel: str, kind: str,
                       extra: Mapping[str, Any]) -> Message:
        """Build the message for ``transport`` through the variables and rendering hooks."""
        variables = self.message_variables(member, channel, kind, extra)
        message = None
        for impl in reversed(self.hook.otp_pro_render_message.get_hookimpls()):  # pluggy's call order
            try:
                message = self.host.call(impl, otp=self, transport=transport, member=member, channel=channel,
                                         kind=kind, variables=variables)
            except Exception as exc:  # noqa: BLE001 - named, never with the message text
                record = self.host.record_for(impl.plugin)
                if record is not None:
                    record.error = f"{type(exc).__name__} while rendering"
                raise PluginError(f"plugin {impl.plugin_name} failed to render a {kind} message for {channel}: "
                                  f"{type(exc).__name__}", plugin=impl.plugin_name) from None
            if message is not None:
                break
        if not isinstance(message, Message):
            raise PluginError(f"no plugin rendered a {kind} message for {channel}")
        if not message.recipient:
            message.recipient = str(variables.get("recipient", ""))
        message.member_id = member.id
        message.channel = channel
        return message

    def provider_test(
        self, transport_name: str, to: str, *, dry_run: bool = True, actor: str | None = None
    ) -> ProviderTestResult:
        """Send (or with ``dry_run`` only render) a test message through ``transport_name`` to ``to``.

        The test code in it is random and is not stored: it cannot be used to sign in.
        """
        transport = self.transports.get(transport_name)
        if transport is None:
            installed = ", ".join(self.transports)
            raise ConfigurationError(
                f"no transport called {transport_name!r} (installed: {installed})", key="transport"
            )
        recipient = transport.normalize_recipient(to)
        probe = Member(id="provider-test", email=recipient if "@" in recipient else None, name="Provider test")
        now = self.clock()
        message = self.render_message(
            transport, probe, f"{transport_name}:code", "test",
            {"payload": f"{secrets.randbelow(10**6):06d}", "payload_kind": "code", "recipient": recipient,
             "issued_at": now, "expires_at": now + timedelta(seconds=self.settings.code_ttl_seconds)},
        )
        params = transport.dry_run_parameters(message)
        result_id: str | None = None
        error: str | None = None
        if not dry_run:
            try:
                result_id = transport.send(message).provider_message_id
            except DeliveryError as exc:
                error = f"{type(exc).__name__}: {exc}"
        with self._write() as (conn, events):
            self._audit(conn, events, audit.PROVIDER_TEST, None, outcome=audit.FAILED if error else audit.OK,
                        channel=f"{transport_name}:code", actor=actor, transport=transport_name, dry_run=dry_run,
                        recipient=mask_recipient(recipient), provider_message_id=result_id, error=error)
        return ProviderTestResult(transport=transport_name, recipient=recipient, dry_run=dry_run, ok=error is None,
                                  subject=message.subject, text=message.text, parameters=params,
                                  provider_message_id=result_id, error=error)

    # ----------------------------------------------------------- verification

    def _consume_challenge(self, conn: Connection, member_id: str, secret: str, purpose: str, now: datetime, *,
                           channel: str | None = None, payloads: Sequence[str] | None = None,
                           accepted: tuple[list[AuditEvent], AuditEvent] | None = None) -> str | None:
        """Consume a live challenge matching ``secret``: one conditional UPDATE; its row count decides.

        With ``accepted`` (``events`` and the event to write on success; PostgreSQL
        only) the audit row is inserted by the same statement and appended to ``events``.
        """
        params, hashes = self._consume_params(member_id, secret, purpose, now, channel=channel, payloads=payloads)
        statement = _consume_statement(channel is not None, hashes, None if payloads is None else len(payloads))
        if accepted is not None:
            return self._accept_audited(conn, statement, params, *accepted)
        row = self.db.run(conn, statement, params).first()
        return row[0] if row is not None else None

    def _consume_params(self, member_id: str, secret: str, purpose: str, now: datetime, *, channel: str | None = None,
                        payloads: Sequence[str] | None = None) -> tuple[dict[str, Any], int]:
        """The binds of :func:`_consume_statement` for ``secret``, and how many key hashes they hold."""
        hashes = self.keys.hashes("challenge", secret)
        params: dict[str, Any] = {"b_member": member_id, "b_purpose": purpose, "b_now": now}
        params.update((f"b_hash{i}", value) for i, value in enumerate(hashes))
        if channel is not None:
            params["b_channel"] = channel
        if payloads is not None:
            params.update((f"b_payload{i}", name) for i, name in enumerate(payloads))
        return params, len(hashes)

    def _accept_audited(self, conn: Connection, statement: Any, params: dict[str, Any], events: list[AuditEvent],
                        event: AuditEvent) -> str | None:
        """PostgreSQL: run ``statement`` with ``event``'s audit row (:func:`_audited`); the audit channel, or None."""
        row = self.db.run(conn, _audited(statement), {**params, **audit.params(event)}).first()
        if row is None:
            return None
        events.append(AuditEvent(**{**event.__dict__, "id": row[0], "channel": row[1]}))
        return cast("str | None", row[1])

    def _record_failure(self, conn: Connection, events: list[AuditEvent], member_id: str, now: datetime, *,
                        channel: str | None, ip: str | None, user_agent: str | None, reason: str,
                        setup: bool = False) -> VerifyResult:
        """Count a failure atomically; lock the member when the maximum is reached."""
        s = self.settings
        reached = members.c.failures + 1 >= s.max_attempts
        row = conn.execute(
            update(members).where(members.c.member_id == member_id).values(
                failures=case((reached, 0), else_=members.c.failures + 1),
                consecutive_failures=members.c.consecutive_failures + 1,
                locked_until=case((reached, now + timedelta(seconds=s.lockout_seconds)), else_=members.c.locked_until),
                updated_at=now,
            ).returning(members.c.failures, members.c.consecutive_failures, members.c.locked_until)
        ).first()
        failures, consecutive, locked_until = (row[0], row[1], row[2]) if row is not None else (1, 1, None)
        locked = None
        if consecutive >= NIST_MAX_ATTEMPTS:
            locked = HARD_LOCK
        elif failures == 0 and locked_until is not None and locked_until > now:
            locked = locked_until
        self._audit(conn, events, audit.VERIFY_FAILED, member_id, outcome=audit.FAILED, channel=channel, ip=ip,
                    user_agent=user_agent, reason=reason, setup=setup, failures=consecutive)
        if locked is not None:
            self._audit(conn, events, audit.LOCKED_OUT, member_id, outcome=audit.FAILED, channel=channel, ip=ip,
                        user_agent=user_agent, until=locked.isoformat(), consecutive_failures=consecutive)
            return VerifyResult(False, reason="locked", attempts_remaining=0, locked_until=locked, channel=channel)
        return VerifyResult(False, reason=reason, attempts_remaining=s.max_attempts - failures, channel=channel)

    def verify(
        self, member: Member, code: object, *, ip: str | None = None, user_agent: str | None = None
    ) -> VerifyResult:
        """Check what the member typed: a one-time code, an authenticator code or a backup code.

        Never raises for a wrong or malformed code: ``.ok`` is False and ``.reason``
        says why. Each failure counts toward the lockout, across all methods.
        """
        normalized = normalize_code(code)
        if normalized is None:
            return VerifyResult(False, reason="malformed")
        now = self.clock()
        code_payloads = [name for name, p in self.payloads.items() if p.entered_as_code]
        cfg = self.settings.totp
        totp_step: int | None = None
        backup_id: int | None = None
        backup_unused = 0
        digits = normalized.isdigit()
        is_code = digits and len(normalized) == self.settings.code_length
        state: Any = None
        if digits and self.db.is_postgresql:
            accepted = self._verify_once(member, normalized, now, is_code, code_payloads, ip, user_agent)
            if accepted is not None:
                return accepted
        if not digits:
            # A backup code's KDF runs before the write transaction, which on SQLite holds the
            # database's write lock; a code of digits is checked in one transaction (matching is cheap).
            with self.db.read() as conn:
                state = self._state(conn, member.id)
            refusal = self._verify_refusal(state, now)
            if refusal is not None:
                return refusal
            if state.backup_salt is not None:
                backup_id, backup_unused = self._match_backup_code(state, normalized)
        with self._write(member) as (conn, events):
            if digits:
                state = self._state(conn, member.id)
                refusal = self._verify_refusal(state, now)
                if refusal is not None:
                    return refusal
                if state.totp_seed is not None and len(normalized) == cfg.digits:
                    totp_step = totp.match(self.keys.decrypt(state.totp_seed), normalized, now, cfg,
                                           after_step=state.totp_last_step)
            method: str | None = None
            channel: str | None = None
            remaining: int | None = None
            # On PostgreSQL the verify_ok row of a TOTP or one-time code is written by the statement
            # that accepts the code (see _audited); written_ok then says it is done.
            events_before = len(events)
            # A matched TOTP step is tried first: the member's pending challenges are then left alone
            # (one statement moves the step and resets the failure counters).
            if totp_step is not None:
                step_params = {"b_member": member.id, "b_step": totp_step}
                if self.db.is_postgresql:
                    if self._accept_audited(conn, _TOTP_STEP_RESET_RETURNING, step_params, events, self._ok_event(
                            member.id, TOTP, "totp", ip, user_agent)) is not None:
                        method, channel = "totp", TOTP
                elif self.db.run(conn, _TOTP_STEP_RESET, step_params).rowcount == 1:
                    method, channel = "totp", TOTP
            if method is None and is_code:
                channel = self._consume_challenge(
                    conn, member.id, normalized, PURPOSE_VERIFY, now, payloads=code_payloads,
                    accepted=(events, self._ok_event(member.id, None, "code", ip, user_agent))
                    if self.db.is_postgresql else None)
                if channel is not None:
                    method = "code"
            written_ok = len(events) > events_before
            if method is None and backup_id is not None and conn.execute(
                update(backup_codes).where(backup_codes.c.id == backup_id, backup_codes.c.used_at.is_(None))
                .values(used_at=now)
            ).rowcount == 1:
                method, remaining = "backup_code", backup_unused - 1
            if method is None:
                reason = "invalid"
                if is_code and self._expired_match(conn, member.id, normalized, now):
                    reason = "expired"
                result = self._record_failure(conn, events, member.id, now, channel=state.channel, ip=ip,
                                              user_agent=user_agent, reason=reason)
            else:
                # Read in this transaction, the state says whether there is anything to reset;
                # a backup code's state was read before the transaction, so it always resets.
                if method != "totp" and (not digits or state.failures or state.consecutive_failures
                                         or state.locked_until is not None):
                    self.db.run(conn, _RESET_FAILURES, {"b_member": member.id})
                if method == "backup_code":
                    self._audit(conn, events, audit.BACKUP_CODE_USED, member.id, outcome=audit.OK, ip=ip,
                                user_agent=user_agent, remaining=remaining)
                if not written_ok:
                    self._audit(conn, events, audit.VERIFY_OK, member.id, outcome=audit.OK,
                                channel=channel or state.channel, ip=ip, user_agent=user_agent, method=method)
                result = VerifyResult(True, method=method, channel=channel or state.channel,
                                      attempts_remaining=self.settings.max_attempts, backup_codes_remaining=remaining)
        return result

    def _verify_once(self, member: Member, normalized: str, now: datetime, is_code: bool,
                     code_payloads: Sequence[str], ip: str | None, user_agent: str | None) -> VerifyResult | None:
        """PostgreSQL: accept a right code in one or two round trips, or answer None to let the transaction decide.

        A one-time code is tried by one statement in autocommit, which is its own
        transaction (:func:`_state_and_consume_statement`): for a member with a clean
        record it consumes the code and inserts the ``verify_ok`` row, and it returns the
        member's state either way. Otherwise the state is read in autocommit. A matching
        TOTP step is then accepted by one more statement, on condition that the state read
        still holds (enrolled, not locked, the same seed). Anything else (a refusal, a
        wrong or replayed code, failure counters to reset) is left to :meth:`verify`'s
        transaction, which reads again and records what happened; a refusal read here is
        returned as the transaction would return it.
        """
        events: list[AuditEvent] = []
        if is_code:
            ok_event = self._ok_event(member.id, None, "code", ip, user_agent)
            params, hashes = self._consume_params(member.id, normalized, PURPOSE_VERIFY, now, payloads=code_payloads)
            with self.db.write_once() as conn:
                state = self.db.run(conn, _state_and_consume_statement(hashes, len(code_payloads)),
                                    {**params, **audit.params(ok_event)}).first()
            if state is not None and state.ok_id is not None:
                self._emit([AuditEvent(**{**ok_event.__dict__, "id": state.ok_id, "channel": state.ok_channel})],
                           member)
                return VerifyResult(True, method="code", channel=state.ok_channel,
                                    attempts_remaining=self.settings.max_attempts)
        else:
            with self.db.read_once() as conn:
                state = self._state(conn, member.id)
        refusal = self._verify_refusal(state, now)
        if refusal is not None or state.failures or state.consecutive_failures or state.locked_until is not None:
            return refusal
        cfg = self.settings.totp
        if state.totp_seed is not None and len(normalized) == cfg.digits:
            step = totp.match(self.keys.decrypt(state.totp_seed), normalized, now, cfg, after_step=state.totp_last_step)
            if step is not None:
                with self.db.write_once() as conn:
                    won = self._accept_audited(
                        conn, _TOTP_STEP_ONCE, {"b_member": member.id, "b_step": step, "b_seed": state.totp_seed,
                                                "b_now": now},
                        events, self._ok_event(member.id, TOTP, "totp", ip, user_agent))
                if won is None:
                    return None
                self._emit(events, member)
                return VerifyResult(True, method="totp", channel=TOTP, attempts_remaining=self.settings.max_attempts)
        # A wrong, expired or replayed code, an authenticator member's wrong code or emailed
        # fallback code: the transaction tries the code and records the failure (one write, not two).
        return None

    def _ok_event(self, member_id: str, channel: str | None, method: str, ip: str | None,
                  user_agent: str | None) -> AuditEvent:
        """The ``verify_ok`` event that :meth:`_accept_audited` writes with the accepting statement."""
        return AuditEvent(kind=audit.VERIFY_OK, at=self.clock(), outcome=audit.OK, member_id=member_id, channel=channel,
                          ip=ip, user_agent=user_agent, details={"method": method})

    def _verify_refusal(self, state: Any, now: datetime) -> VerifyResult | None:
        """Why :meth:`verify` answers without looking at the code: not enrolled, or locked out."""
        if state is None or state.channel is None:
            return VerifyResult(False, reason="not_enrolled")
        locked = self._locked_until(state, now)
        if locked is not None:
            return VerifyResult(False, reason="locked", attempts_remaining=0, locked_until=locked)
        return None

    def verify_token(
        self, payload: str, token: object, *, binding: str | None = None, ip: str | None = None,
        user_agent: str | None = None,
    ) -> VerifyResult:
        """Verify a clicked token (a magic link) of ``payload``; the token itself names the member.

        The token is consumed by the same conditional UPDATE as a code, so two
        concurrent clicks cannot both win. A failure counts toward the member's
        lockout; an unknown token is audited without a member. When the token
        belongs to a pending setup, the setup is completed and the result carries
        the new ``backup_codes``.
        """
        if not isinstance(token, str) or not token or len(token) > 512 or not token.isascii():
            return VerifyResult(False, reason="malformed")
        now = self.clock()
        hashes = self.keys.hashes("challenge", token)
        with self.db.read() as conn:
            row = conn.execute(select(challenges).where(
                challenges.c.secret_hash.in_(hashes), challenges.c.payload == payload,
            ).order_by(challenges.c.id.desc()).limit(1)).first()
            state = self._state(conn, row.member_id) if row is not None else None
        if row is None:
            with self._write() as (conn, events):
                self._audit(conn, events, audit.VERIFY_FAILED, None, outcome=audit.FAILED, ip=ip,
                            user_agent=user_agent, reason="unknown", payload=payload)
            return VerifyResult(False, reason="unknown")
        member_id = row.member_id
        locked = self._locked_until(state, now)
        if locked is not None:
            return VerifyResult(False, reason="locked", attempts_remaining=0, locked_until=locked, member_id=member_id)
        bound_ok = row.binding_hash is None or (
            binding is not None and row.binding_hash in self.keys.hashes("binding", binding))
        with self._write() as (conn, events):
            won = bound_ok and conn.execute(update(challenges).where(
                challenges.c.id == row.id, _VERIFIABLE, challenges.c.consumed_at.is_(None),
                challenges.c.invalidated_at.is_(None), challenges.c.expires_at > now,
            ).values(consumed_at=now)).rowcount == 1
            if not won:
                if not bound_ok:
                    reason = "wrong_browser"
                elif row.consumed_at is not None:
                    reason = "used"
                elif row.invalidated_at is not None:
                    reason = "replaced"
                elif row.expires_at <= now:
                    reason = "expired"
                else:
                    reason = "used"  # consumed by a concurrent click a moment ago
                failed = self._record_failure(conn, events, member_id, now, channel=row.channel, ip=ip,
                                              user_agent=user_agent, reason=reason, setup=row.purpose == PURPOSE_SETUP)
                result = VerifyResult(False, reason=failed.reason if failed.reason == "locked" else reason,
                                      attempts_remaining=failed.attempts_remaining, locked_until=failed.locked_until,
                                      channel=row.channel, member_id=member_id, purpose=row.purpose)
            elif row.purpose == PURPOSE_SETUP:
                conn.execute(update(members).where(members.c.member_id == member_id).values(
                    channel=row.channel, enrolled_at=now, disabled_at=None, pending_channel=None,
                    pending_totp_seed=None, pending_expires_at=None, totp_seed=None, totp_last_step=None,
                    failures=0, consecutive_failures=0, locked_until=None, updated_at=now))
                codes = self._new_backup_codes(conn, member_id, now)
                self._audit(conn, events, audit.SETUP_COMPLETED, member_id, channel=row.channel, ip=ip,
                            user_agent=user_agent, outcome=audit.OK)
                self._audit(conn, events, audit.BACKUP_CODES_GENERATED, member_id, channel=row.channel, ip=ip,
                            user_agent=user_agent, count=len(codes), setup=True)
                result = VerifyResult(True, method=payload, channel=row.channel, member_id=member_id,
                                      purpose=PURPOSE_SETUP, backup_codes=tuple(codes),
                                      attempts_remaining=self.settings.max_attempts)
            else:
                conn.execute(update(members).where(members.c.member_id == member_id).values(
                    failures=0, consecutive_failures=0, locked_until=None))
                self._audit(conn, events, audit.VERIFY_OK, member_id, outcome=audit.OK, channel=row.channel, ip=ip,
                            user_agent=user_agent, method=payload)
                result = VerifyResult(True, method=payload, channel=row.channel, member_id=member_id,
                                      purpose=PURPOSE_VERIFY, attempts_remaining=self.settings.max_attempts)
        return result

    def _expired_match(self, conn: Connection, member_id: str, code: str, now: datetime) -> bool:
        return conn.execute(
            select(challenges.c.id).where(
                challenges.c.member_id == member_id,
                challenges.c.secret_hash.in_(self.keys.hashes("challenge", code)),
                challenges.c.consumed_at.is_(None),
                challenges.c.expires_at <= now,
            ).limit(1)
        ).first() is not None

    def _match_backup_code(self, state: Any, code: str) -> tuple[int | None, int]:
        """Find which unused backup code ``code`` is, with one KDF evaluation: (row id or None, unused count)."""
        from .crypto import BACKUP_CODE_LENGTH

        if len(code) != BACKUP_CODE_LENGTH:
            return None, 0
        pepper = self.keys.pepper(state.backup_key_id or "")
        if pepper is None:
            log.warning("otp-pro: backup codes of a member were made with a key no longer configured")
            return None, 0
        with self.db.read() as conn:
            rows = conn.execute(
                select(backup_codes.c.id, backup_codes.c.code_hash).where(
                    backup_codes.c.member_id == state.member_id, backup_codes.c.used_at.is_(None))
            ).all()
        if not rows:
            return None, 0
        candidate = backup_kdf(code, bytes.fromhex(state.backup_salt), pepper)
        index = constant_time_in(candidate, [bytes.fromhex(r.code_hash) for r in rows])
        return (rows[index].id if index >= 0 else None), len(rows)

    # ------------------------------------------------------ disable and reset

    def disable(self, member: Member, *, actor: str | None = None, force: bool = False, ip: str | None = None,
                user_agent: str | None = None) -> None:
        """Switch the member's second factor off: factor, backup codes and trusted devices are removed.

        A member whose policy requires a second factor cannot disable it
        (:class:`PolicyError`); ``force=True`` lets an administrator do it anyway
        (the member will be asked to set up again).
        """
        req = self.requirement(member)
        if req.is_required and not force:
            raise PolicyError("two-factor authentication is required for this member and cannot be disabled")
        self._clear(member, audit.DISABLED, actor=actor, ip=ip, user_agent=user_agent, disabled=True)

    def reset(
        self, member: Member, *, actor: str | None = None, ip: str | None = None, user_agent: str | None = None
    ) -> None:
        """Force the member to set up again: factor, backup codes, trusted devices and lockout are cleared."""
        self._clear(member, audit.RESET, actor=actor, ip=ip, user_agent=user_agent, disabled=False)

    def _clear(self, member: Member, kind: str, *, actor: str | None, ip: str | None, user_agent: str | None,
               disabled: bool) -> None:
        now = self.clock()
        with self._write(member) as (conn, events):
            self._ensure_member(conn, member.id)
            state = self._state(conn, member.id, for_update=True)
            conn.execute(update(members).where(members.c.member_id == member.id).values(
                channel=None, enrolled_at=None, totp_seed=None, totp_last_step=None, pending_channel=None,
                pending_totp_seed=None, pending_expires_at=None, backup_salt=None, backup_key_id=None,
                failures=0, consecutive_failures=0, locked_until=None, disabled_at=now if disabled else None,
                updated_at=now,
            ))
            conn.execute(delete(backup_codes).where(backup_codes.c.member_id == member.id))
            revoked = conn.execute(update(trusted_devices).where(
                trusted_devices.c.member_id == member.id, trusted_devices.c.revoked_at.is_(None)).values(revoked_at=now)
            ).rowcount
            conn.execute(update(challenges).where(
                challenges.c.member_id == member.id, challenges.c.consumed_at.is_(None),
                challenges.c.invalidated_at.is_(None)).values(
                    invalidated_at=now, message=None,  # a queued code is never sent after a reset
                    status=case((challenges.c.status == "queued", "replaced"), else_=challenges.c.status)))
            self._audit(conn, events, kind, member.id, channel=state.channel if state else None, actor=actor, ip=ip,
                        user_agent=user_agent, devices_revoked=revoked)

    def unlock(self, member: Member, *, actor: str | None = None) -> None:
        """Lift a lockout (including the hard lock after 100 consecutive failures)."""
        with self._write(member) as (conn, events):
            conn.execute(update(members).where(members.c.member_id == member.id).values(
                failures=0, consecutive_failures=0, locked_until=None, updated_at=self.clock()))
            self._audit(conn, events, audit.UNLOCKED, member.id, actor=actor)

    # -------------------------------------------------------- trusted devices

    def trust_device(self, member: Member, *, label: str = "", ip: str | None = None,
                     user_agent: str | None = None) -> str:
        """Remember this device for ``trusted_device_days``; return the token to keep in a cookie.

        Only the token's hash is stored.
        """
        days = self.settings.trusted_device_days
        if days <= 0:
            raise PolicyError("trusted devices are switched off (trusted_device_days = 0)")
        if not isinstance(label, str):
            raise TypeError("label must be a string")
        label = "".join(ch for ch in label if ch.isprintable())[:200] or "Unnamed device"
        token = new_token(32)
        now = self.clock()
        with self._write(member) as (conn, events):
            device_id = _inserted_id(conn.execute(trusted_devices.insert().values(
                member_id=member.id, token_hash=self.keys.hash("device", token), label=label, created_at=now,
                expires_at=now + timedelta(days=days))))
            self._audit(conn, events, audit.DEVICE_TRUSTED, member.id, ip=ip, user_agent=user_agent,
                        device_id=device_id, label=label)
        return token

    def is_trusted(self, member: Member, token: object) -> bool:
        """Whether ``token`` is a live trusted-device token of ``member``."""
        if not isinstance(token, str) or not token or len(token) > 200:
            return False
        now = self.clock()
        with self.db.read() as conn:
            row = conn.execute(select(trusted_devices.c.id, trusted_devices.c.last_used_at).where(
                trusted_devices.c.member_id == member.id,
                trusted_devices.c.token_hash.in_(self.keys.hashes("device", token)),
                trusted_devices.c.revoked_at.is_(None),
                trusted_devices.c.expires_at > now,
            )).first()
        if row is None:
            return False
        if row.last_used_at is None or row.last_used_at < now - timedelta(hours=1):
            with self.db.write() as conn:  # at most one write an hour per device
                conn.execute(update(trusted_devices).where(trusted_devices.c.id == row.id).values(last_used_at=now))
        return True

    def trusted_devices(self, member: Member) -> list[TrustedDevice]:
        """The member's live trusted devices, newest first."""
        now = self.clock()
        with self.db.read() as conn:
            rows = conn.execute(select(trusted_devices).where(
                trusted_devices.c.member_id == member.id, trusted_devices.c.revoked_at.is_(None),
                trusted_devices.c.expires_at > now).order_by(trusted_devices.c.id.desc())).all()
        return [TrustedDevice(r.id, r.label, r.created_at, r.expires_at, r.last_used_at) for r in rows]

    def revoke_device(self, member: Member, device_id: int, *, actor: str | None = None, ip: str | None = None,
                      user_agent: str | None = None) -> None:
        """Revoke one trusted device; :class:`NotFound` when it is not a live device of this member."""
        try:
            device_id = int(device_id)
        except (TypeError, ValueError):
            raise NotFound(f"no trusted device {device_id!r}") from None
        with self._write(member) as (conn, events):
            count = conn.execute(update(trusted_devices).where(
                trusted_devices.c.id == device_id, trusted_devices.c.member_id == member.id,
                trusted_devices.c.revoked_at.is_(None)).values(revoked_at=self.clock())).rowcount
            if count != 1:
                raise NotFound(f"no trusted device {device_id} for this member")
            self._audit(conn, events, audit.DEVICE_REVOKED, member.id, actor=actor, ip=ip, user_agent=user_agent,
                        device_id=device_id)

    # ------------------------------------------------------------ operations

    def events(self, member: Member | str | None = None, *, kinds: Iterable[str] | None = None,
               limit: int = 100) -> list[AuditEvent]:
        """Audit events, newest first, optionally for one member and some kinds."""
        from .storage.schema import audit_events

        query = select(audit_events).order_by(audit_events.c.id.desc()).limit(limit)
        if member is not None:
            query = query.where(audit_events.c.member_id == (member.id if isinstance(member, Member) else str(member)))
        if kinds is not None:
            query = query.where(audit_events.c.kind.in_(list(kinds)))
        with self.db.read() as conn:
            return [audit.from_row(r) for r in conn.execute(query)]

    def rotate_keys(self, *, actor: str | None = None) -> int:
        """Re-encrypt every TOTP seed with the current ``secret_key``; return how many were rewritten.

        Run after moving the old key to ``previous_secret_keys``; once done, the old
        key is only needed for trusted devices and backup codes made before the rotation.
        """
        count = 0
        with self._write() as (conn, events):
            rows = conn.execute(select(members.c.member_id, members.c.totp_seed, members.c.pending_totp_seed).where(
                or_(members.c.totp_seed.is_not(None), members.c.pending_totp_seed.is_not(None)))).all()
            for row in rows:
                conn.execute(update(members).where(members.c.member_id == row.member_id).values(
                    totp_seed=self.keys.rotate(row.totp_seed) if row.totp_seed else None,
                    pending_totp_seed=self.keys.rotate(row.pending_totp_seed) if row.pending_totp_seed else None))
                count += 1
            self._audit(conn, events, audit.KEYS_ROTATED, None, actor=actor, seeds=count)
        return count


__all__ = ["HARD_LOCK", "ChannelDef", "OtpPro", "normalize_code"]
