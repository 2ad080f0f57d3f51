"""What every operation shares: settings, clock, keys, plugins, providers, channels and the database.

One :class:`Runtime` per :class:`~otp_pro.OtpPro`, built by
:mod:`~otp_pro._engine.assembly` and read by every other module of the engine;
the facade's public attributes (``otp.settings``, ``otp.db``...) are views of it.
It also reads a member's row (:meth:`Runtime.state`), which almost every
operation starts from.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Connection

from .. import policy
from ..crypto import KeyRing
from ..dispatch import Dispatcher, InlineDispatcher
from ..factor_types import FactorType
from ..plugins import PluginHost
from ..settings import Settings
from ..storage import statements
from ..storage.db import Database
from ..storage.schema import members
from ..transports import Payload, ProviderConfig, Transport

if TYPE_CHECKING:
    from ..core import OtpPro


#: How many sets of roles :meth:`Runtime.requirement` keeps the policy's answer for.
REQUIREMENTS_KEPT = 1024


def utcnow() -> datetime:
    """The default clock: the current time, aware, in UTC."""
    return datetime.now(timezone.utc)


class FactorRow(NamedTuple):
    """One of a member's factors as a state read returns it (``otp_factors``; the seed still sealed).

    The columns a verification or a send decides from (storage.statements.STATE_FACTOR_COLUMNS, same
    order); the label and the times are read where the factors are listed.
    """

    id: int
    kind: str
    is_default: bool
    secret: str | None
    last_step: int | None
    recipient_hash: str | None
    recipient_hint: str | None


def _by_id(factor: FactorRow) -> int:
    return factor.id


#: Where the factor's columns start in a row of each statement's result type.
_FACTOR_START: dict[type, int] = {}
_FACTOR_WIDTH = len(FactorRow._fields)


class MemberState:
    """A member's row of ``otp_members`` and their factors, as :meth:`Runtime.state` returns them (read-only).

    The member's columns are read as attributes (``state.failures``); ``factors``
    holds the factors in the order they were added.
    """

    __slots__ = ("_row", "factors")

    member_id: str
    enrolled_at: datetime | None
    disabled_at: datetime | None
    required_since: datetime | None
    failures: int
    consecutive_failures: int
    locked_until: datetime | None
    pending_channel: str | None
    pending_secret: str | None
    pending_expires_at: datetime | None
    pending_binding_hash: str | None
    pending_label: str | None
    pending_recipient: str | None
    pending_factor_id: int | None
    backup_salt: str | None
    backup_key_id: str | None

    def __init__(self, rows: Sequence[Any]) -> None:
        first = self._row = rows[0]
        if first.f_id is None:  # the outer join's one row of a member without factors
            self.factors: tuple[FactorRow, ...] = ()
            return
        start = _FACTOR_START.get(type(first))
        if start is None:
            start = _FACTOR_START[type(first)] = first._fields.index("f_id")
        end = start + _FACTOR_WIDTH
        if len(rows) == 1:
            self.factors = (FactorRow._make(first[start:end]),)
        else:  # the state reads are unordered: the order the factors were added in is their ids'
            self.factors = tuple(sorted((FactorRow._make(row[start:end]) for row in rows), key=_by_id))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)

    @property
    def default_factor(self) -> FactorRow | None:
        """The factor marked default (the first one added if, by a race, none is)."""
        for factor in self.factors:
            if factor.is_default:
                return factor
        return self.factors[0] if self.factors else None

    @property
    def channel(self) -> str | None:
        """The default factor's channel: what a refusal or an event is recorded on when no factor is named."""
        default = self.default_factor
        return default.kind if default is not None else None

    def factor(self, factor_id: int | None) -> FactorRow | None:
        """The member's factor ``factor_id``, or None."""
        for factor in self.factors:
            if factor.id == factor_id:
                return factor
        return None


def state_of(rows: Sequence[Any]) -> MemberState | None:
    """The :class:`MemberState` of a state read's ``rows`` (None when the member has no row)."""
    return MemberState(rows) if rows else None


@dataclass(frozen=True)
class ChannelDef:
    """A channel: a transport with a payload (a delivered factor), or a factor type's own (``totp``)."""

    name: str
    label: str
    transport: Transport | None
    payload: Payload | None
    #: The factor type a member enrols on this channel (None: no registered type covers it).
    factor_type: FactorType | None = None


class Runtime:
    """The state one :class:`~otp_pro.OtpPro` holds, shared by the engine's operations.

    ``otp`` is the facade: hooks and providers receive it. The providers, the
    channels and the dispatcher are filled in by
    :func:`~otp_pro._engine.assembly.start`, which opens the database last.
    """

    def __init__(self, otp: OtpPro, settings: Settings, clock: Callable[[], datetime], host: PluginHost) -> None:
        self.otp = otp
        self.settings = settings
        self.clock = clock
        self.keys = KeyRing(settings.all_secret_keys)
        self.host = host
        self.transports: dict[str, Transport] = {}
        self.payloads: dict[str, Payload] = {}
        #: Validated ``providers.<name>`` sections declared through ``otp_pro_register_settings``.
        self.plugin_settings: dict[str, ProviderConfig] = {}
        #: Until assembly starts the dispatcher the settings name.
        self.dispatcher: Dispatcher = InlineDispatcher(otp)
        self.channels: dict[str, ChannelDef] = {}
        self.factor_types: dict[str, FactorType] = {}
        #: The function the ``member_lookup`` setting names, imported by assembly; None without the setting.
        self.member_lookup: Callable[[str], Any] | None = None
        #: Per thread: the events being passed to listeners (:func:`~otp_pro._engine.auditing.emit`).
        self.emitting = threading.local()
        self._db: Database | None = None
        self._insert_member: Any = None
        #: The policy's answers by set of roles (:meth:`requirement`).
        self._requirements: dict[tuple[str, ...], policy.Requirement] = {}
        #: Whether a channel's factor type is answered with something other than a typed code (a passkey's
        #: assertion): only then does a verify of input that is no code look further. Set with the database.
        self.answer_types = False

    @property
    def db(self) -> Database:
        """The database, once assembly has opened it (providers are started before it is)."""
        if self._db is None:
            raise RuntimeError("the database is opened after the providers start: use it from a send, not __init__")
        return self._db

    def open_database(self, db: Database) -> None:
        self._db = db
        self.answer_types = any(c.factor_type is not None and not c.factor_type.answer_is_code
                                for c in self.channels.values())
        # The two supported dialects' insert() return different classes with the same on_conflict_do_nothing().
        dialect_insert: Any
        if db.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        self._insert_member = dialect_insert(members).on_conflict_do_nothing(index_elements=["member_id"])

    def state(self, conn: Connection, member_id: str, *, for_update: bool = False) -> MemberState | None:
        """The member's row and factors, or None before the member's first write.

        With ``for_update`` on PostgreSQL the member's row is locked first, by a statement of
        its own, and the state read after it: the factors are then as they are under the lock.
        (SQLite's write transaction already holds the whole database.)
        """
        params = {"b_member": member_id}
        if for_update and self.db.is_postgresql:
            self.db.run(conn, statements.LOCK_MEMBER, params)
        return state_of(self.db.run(conn, statements.STATE, params).rows)

    def ensure_member(self, conn: Connection, member_id: str) -> None:
        """Insert the member's row if it is missing (rows of ``otp_members`` are never deleted)."""
        now = self.clock()
        conn.execute(self._insert_member, {"member_id": member_id, "created_at": now, "updated_at": now,
                                           "failures": 0, "consecutive_failures": 0})

    def requirement(self, roles: tuple[str, ...]) -> policy.Requirement:
        """The policy's answer for a member with ``roles``, resolved once per set of roles.

        Every verification and send asks; the answer depends only on the settings and the
        channels, which are fixed once assembly has finished (it opens the database last):
        an answer given before then is not kept. Bounded: a site with more distinct sets of
        roles than :data:`REQUIREMENTS_KEPT` resolves the others each time.
        """
        found = self._requirements.get(roles)
        if found is None:
            found = policy.resolve(self.settings, roles, self.registered_channels)
            if self._db is not None and len(self._requirements) < REQUIREMENTS_KEPT:
                self._requirements[roles] = found
        return found

    @property
    def registered_channels(self) -> tuple[str, ...]:
        """Channels offered site-wide when ``channels`` is not set (see :attr:`OtpPro.registered_channels`)."""
        return tuple(
            name
            for name, c in self.channels.items()
            if c.transport is None or (c.transport.offered_by_default and c.transport.configured)
        )
