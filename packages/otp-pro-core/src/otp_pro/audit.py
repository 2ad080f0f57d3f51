"""Audit events: written in the same transaction as the change they record, then passed to listeners."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert

from .storage.schema import audit_events

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

#: Changes of a member's factors; a notification plugin tells the member about these.
FACTOR_CHANGES = frozenset(
    {SETUP_COMPLETED, RESET, DISABLED, BACKUP_CODES_GENERATED, DEVICE_TRUSTED, DEVICE_REVOKED}
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


_INSERT = insert(audit_events)  # built once: audit rows are written on every hot path


def write(conn: Connection, event: AuditEvent) -> AuditEvent:
    """Insert ``event`` on ``conn`` (inside the caller's transaction); return it with its id."""
    result = conn.execute(_INSERT, row(event))
    pk = result.inserted_primary_key
    return AuditEvent(**{**event.__dict__, "id": pk[0] if pk else None})


def row(event: AuditEvent) -> dict[str, Any]:
    """The column values of ``event``'s row in ``otp_audit_events`` (details as sorted JSON)."""
    return {
        "at": event.at,
        "kind": event.kind,
        "outcome": event.outcome,
        "member_id": event.member_id,
        "channel": event.channel,
        "ip": _clip(event.ip, 64),
        "user_agent": _clip(event.user_agent, 512),
        "actor": _clip(event.actor, 255),
        "details": json.dumps(dict(event.details), default=str, sort_keys=True),
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
