"""Audit events: written in the same transaction as the change they record, then passed to listeners."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, insert

from .storage.schema import audit_events

if TYPE_CHECKING:
    from .storage.db import Database

# Event kinds. Listeners may rely on these names.
CHALLENGE_SENT = "challenge_sent"
DELIVERY_FAILED = "delivery_failed"
CHALLENGE_QUEUED = "challenge_queued"
DELIVERY_RETRIED = "delivery_retried"
DELIVERY_FALLBACK = "delivery_fallback"
VERIFY_OK = "verify_ok"
VERIFY_FAILED = "verify_failed"
LOCKED_OUT = "locked_out"
UNLOCKED = "unlocked"
BACKUP_CODE_USED = "backup_code_used"
BACKUP_CODES_GENERATED = "backup_codes_generated"
SETUP_STARTED = "setup_started"
SETUP_COMPLETED = "setup_completed"
RESET = "reset"
DISABLED = "disabled"
DEVICE_TRUSTED = "device_trusted"
DEVICE_REVOKED = "device_revoked"
PROVIDER_TEST = "provider_test"
SEND_THROTTLED = "send_throttled"
KEYS_ROTATED = "keys_rotated"
AUDIT_PRUNED = "audit_pruned"
#: An operator exported the audit log from the operator console.
AUDIT_EXPORTED = "audit_exported"
IP_LIMITED = "ip_limited"
FACTOR_REMOVED = "factor_removed"
FACTOR_RENAMED = "factor_renamed"
FACTOR_DEFAULT_CHANGED = "factor_default_changed"
#: A factor carried over from the one-channel schema bound at its first send to the address then.
FACTOR_BOUND = "factor_bound"

#: Every kind the core writes. Plugins add their own through ``OtpPro.record_event``: those are known
#: from the log itself (``otp_pro.auditlog.recorded_kinds``).
KINDS = frozenset({
    CHALLENGE_SENT, DELIVERY_FAILED, CHALLENGE_QUEUED, DELIVERY_RETRIED, DELIVERY_FALLBACK, VERIFY_OK,
    VERIFY_FAILED, LOCKED_OUT, UNLOCKED, BACKUP_CODE_USED, BACKUP_CODES_GENERATED, SETUP_STARTED,
    SETUP_COMPLETED, RESET, DISABLED, DEVICE_TRUSTED, DEVICE_REVOKED, PROVIDER_TEST, SEND_THROTTLED,
    KEYS_ROTATED, AUDIT_PRUNED, AUDIT_EXPORTED, IP_LIMITED, FACTOR_REMOVED, FACTOR_RENAMED, FACTOR_DEFAULT_CHANGED,
    FACTOR_BOUND,
})

#: Changes of a member's factors; a notification plugin tells the member about these.
FACTOR_CHANGES = frozenset(
    {SETUP_COMPLETED, FACTOR_REMOVED, RESET, DISABLED, BACKUP_CODES_GENERATED, DEVICE_TRUSTED, DEVICE_REVOKED}
)

OK, FAILED, INFO = "ok", "failed", "info"


@dataclass(frozen=True)
class AuditEvent:
    """One audit record. ``details`` holds facts (counts, provider ids, error codes), never a secret."""

    kind: str
    at: datetime
    outcome: str = INFO
    member_id: str | None = None
    channel: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    actor: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    id: int | None = None

    @property
    def factor_change(self) -> bool:
        """True when a member's factors changed and they should be told out of band."""
        return self.kind in FACTOR_CHANGES


def _clip(value: str | None, size: int) -> str | None:
    if value is None:
        return None
    return str(value)[:size]


#: The columns an event fills (``id`` is the database's).
COLUMNS = ("at", "kind", "outcome", "member_id", "channel", "ip", "user_agent", "actor", "details")
#: An event's INSERT, with one bind ``a_<column>`` per column, returning the new id. Built once: audit
#: rows are written on every hot path, through ``Database.run`` (:mod:`otp_pro.storage.fast`).
INSERT = insert(audit_events).values(
    {name: bindparam(f"a_{name}", type_=audit_events.c[name].type) for name in COLUMNS}
).returning(audit_events.c.id)


def write(db: Database, conn: Connection, event: AuditEvent) -> AuditEvent:
    """Insert ``event`` on ``conn`` (inside the caller's transaction); return it with its id."""
    event_id = db.run(conn, INSERT, params(event)).one()[0]
    return AuditEvent(**{**event.__dict__, "id": event_id})


#: Details as sorted JSON, anything not JSON as its str(); one encoder, not one per row (json.dumps builds
#: a new one whenever it is given options).
_DETAILS_JSON = json.JSONEncoder(default=str, sort_keys=True)


def params(event: AuditEvent) -> dict[str, Any]:
    """The bind values (``a_<column>``) of ``event``'s row in ``otp_audit_events`` (details as sorted JSON)."""
    return {
        "a_at": event.at,
        "a_kind": event.kind,
        "a_outcome": event.outcome,
        "a_member_id": event.member_id,
        "a_channel": event.channel,
        "a_ip": _clip(event.ip, 64),
        "a_user_agent": _clip(event.user_agent, 512),
        "a_actor": _clip(event.actor, 255),
        "a_details": _DETAILS_JSON.encode(dict(event.details)),
    }


def from_row(row: Any) -> AuditEvent:
    """Build an :class:`AuditEvent` from a row of ``otp_audit_events``."""
    m = row._mapping
    return AuditEvent(
        kind=m["kind"],
        at=m["at"],
        outcome=m["outcome"],
        member_id=m["member_id"],
        channel=m["channel"],
        ip=m["ip"],
        user_agent=m["user_agent"],
        actor=m["actor"],
        details=json.loads(m["details"] or "{}"),
        id=m["id"],
    )
