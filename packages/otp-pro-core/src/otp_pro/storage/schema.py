"""The tables. SQLAlchemy Core (not the ORM): the hot paths are single statements.

Times are stored as naive UTC and returned as aware UTC datetimes. Nothing
secret is stored in clear: codes, backup codes, device and link tokens are keyed
hashes; TOTP seeds and the addresses a factor was confirmed at are encrypted.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")
#: The largest value a ``BigId`` column holds (SQLite's INTEGER and PostgreSQL's BIGINT are both signed 64-bit).
MAX_BIG_ID = 2**63 - 1


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, naive UTC in the column, aware UTC out."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("otp-pro stores aware datetimes only")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


members = Table(
    "otp_members",
    metadata,
    Column("member_id", String(255), primary_key=True),
    # Set while the member has at least one factor (otp_factors): the hot statements' "enrolled".
    Column("enrolled_at", UTCDateTime(), nullable=True),
    Column("disabled_at", UTCDateTime(), nullable=True),
    Column("required_since", UTCDateTime(), nullable=True),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("locked_until", UTCDateTime(), nullable=True),
    # The setup in progress: its channel, its factor type's secret (a TOTP seed; encrypted), the label the
    # member gave it, the address a delivered channel's confirmation went to (encrypted), and the factor
    # it re-confirms.
    Column("pending_channel", String(100), nullable=True),
    Column("pending_secret", Text, nullable=True),
    Column("pending_expires_at", UTCDateTime(), nullable=True),
    # Keyed hash of the binding the pending setup was begun with: only the same binding may complete it.
    Column("pending_binding_hash", String(64), nullable=True),
    Column("pending_label", String(100), nullable=True),
    Column("pending_recipient", Text, nullable=True),
    Column("pending_factor_id", BigInteger, nullable=True),
    Column("backup_salt", String(64), nullable=True),
    Column("backup_key_id", String(32), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# A member's factors: each one proven at enrolment. A TOTP factor keeps its seed (``secret``, encrypted)
# and the last time step it accepted; a delivered one (email:code, sms_twilio:code...) the address it
# was confirmed at (``recipient``, encrypted; ``recipient_hash``, keyed, to compare with the member
# record's address now) and its masked hint for the pages. A label of None shows the channel's label.
factors = Table(
    "otp_factors",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("member_id", String(255), nullable=False, index=True),
    Column("kind", String(100), nullable=False),
    Column("label", String(100), nullable=True),
    Column("is_default", Boolean, nullable=False, server_default=false()),
    Column("secret", Text, nullable=True),
    Column("last_step", BigInteger, nullable=True),
    Column("recipient", Text, nullable=True),
    Column("recipient_hash", String(64), nullable=True),
    Column("recipient_hint", String(100), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    # A TOTP factor's last use; a delivered factor's is its latest consumed challenge (factor_id).
    Column("last_used_at", UTCDateTime(), nullable=True),
    # A public handle its type names (a passkey's credential id): one factor of a kind holds it, so it names
    # its member. Not secret (the browser is sent it), so kept as it is, not sealed.
    Column("handle", Text, nullable=True),
    Index("uq_otp_factors_kind_handle", "kind", "handle", unique=True),
)

challenges = Table(
    "otp_challenges",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    # None for a first factor's challenge (a passkey sign-in without a password): the answer names the member.
    Column("member_id", String(255), nullable=True),
    Column("channel", String(100), nullable=False),
    # The factor a sign-in challenge was sent to (None for a setup's confirmation).
    Column("factor_id", BigInteger, nullable=True),
    Column("payload", String(50), nullable=False),
    Column("purpose", String(20), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("recipient_hash", String(64), nullable=True),
    Column("binding_hash", String(64), nullable=True),
    Column("status", String(20), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("sent_at", UTCDateTime(), nullable=True),
    Column("consumed_at", UTCDateTime(), nullable=True),
    Column("invalidated_at", UTCDateTime(), nullable=True),
    Column("provider_message_id", String(128), nullable=True),
    Column("error_code", String(64), nullable=True),
    # Queued delivery (a task-queue dispatcher): the rendered message, encrypted with the
    # secret_key's Fernet key, kept only until the worker has sent it; and the send attempts made.
    Column("message", Text, nullable=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Index("ix_otp_challenges_member_created", "member_id", "created_at"),
    Index("ix_otp_challenges_secret_hash", "secret_hash"),
    Index("ix_otp_challenges_recipient_created", "recipient_hash", "created_at"),
)

backup_codes = Table(
    "otp_backup_codes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("member_id", String(255), nullable=False, index=True),
    Column("code_hash", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
)

trusted_devices = Table(
    "otp_trusted_devices",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("member_id", String(255), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("label", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

# Per-IP counters shared by every instance: how many of one ``kind`` of event (an unknown sign-in link) an
# address caused in the window that began at ``window_start``. The address is kept as a keyed hash only.
ip_counters = Table(
    "otp_ip_counters",
    metadata,
    Column("ip_hash", String(64), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("window_start", UTCDateTime(), nullable=False),
    Column("count", Integer, nullable=False),
)

audit_events = Table(
    "otp_audit_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False, index=True),
    Column("kind", String(50), nullable=False, index=True),
    Column("member_id", String(255), nullable=True, index=True),
    Column("channel", String(100), nullable=True),
    Column("outcome", String(20), nullable=False),
    Column("ip", String(64), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Column("actor", String(255), nullable=True),
    Column("details", Text, nullable=False, server_default="{}"),
    # The console's IP filter, newest first and paged by id (``WHERE ip = ? AND id < ? ORDER BY id DESC``).
    Index("ix_otp_audit_events_ip_id", "ip", "id"),
)

__all__ = [
    "MAX_BIG_ID", "audit_events", "backup_codes", "challenges", "factors", "ip_counters", "members", "metadata",
    "trusted_devices",
]
