"""an index on the audit log's address and id, for the operator console's IP filter

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

The console's audit page asks ``WHERE ip = :ip [AND id < :before] ORDER BY id DESC LIMIT 51`` and its
export the same oldest first: ``(ip, id)`` answers both from the index, where the table was walked before.
Only adds an index: instances of the release before keep running beside it.
"""

from __future__ import annotations

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # CONCURRENTLY: every sign-in writes an audit row, and a plain CREATE INDEX would hold those writes
        # back for as long as a large log takes to index. It cannot run inside a transaction.
        with op.get_context().autocommit_block():
            op.create_index('ix_otp_audit_events_ip_id', 'otp_audit_events', ['ip', 'id'], unique=False,
                            postgresql_concurrently=True)
    else:
        with op.batch_alter_table('otp_audit_events', schema=None) as batch_op:
            batch_op.create_index('ix_otp_audit_events_ip_id', ['ip', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('otp_audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_otp_audit_events_ip_id')
