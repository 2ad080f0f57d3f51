"""a factor's public handle (a passkey's credential id), unique among factors of its kind; challenges for no member

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Only adds a column and an index, and lets a challenge have no member (a first factor's, whose answer names
the member): instances of the release before keep running beside it (they write members' challenges only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('otp_factors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('handle', sa.Text(), nullable=True))
        batch_op.create_index('uq_otp_factors_kind_handle', ['kind', 'handle'], unique=True)
    with op.batch_alter_table('otp_challenges', schema=None) as batch_op:
        batch_op.alter_column('member_id', existing_type=sa.String(length=255), nullable=True)


def downgrade() -> None:
    # A first factor's challenges have no member and live minutes: dropped, so the column takes NOT NULL again.
    op.execute("DELETE FROM otp_challenges WHERE member_id IS NULL")
    with op.batch_alter_table('otp_challenges', schema=None) as batch_op:
        batch_op.alter_column('member_id', existing_type=sa.String(length=255), nullable=False)
    with op.batch_alter_table('otp_factors', schema=None) as batch_op:
        batch_op.drop_index('uq_otp_factors_kind_handle')
        batch_op.drop_column('handle')
