"""the binding a pending setup was begun with

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('otp_members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_binding_hash', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('otp_members', schema=None) as batch_op:
        batch_op.drop_column('pending_binding_hash')
