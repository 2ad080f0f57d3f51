"""a factor's public handle (a passkey's credential id), unique among factors of its kind

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Only adds a column and an index: instances of the release before keep running beside it.
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


def downgrade() -> None:
    with op.batch_alter_table('otp_factors', schema=None) as batch_op:
        batch_op.drop_index('uq_otp_factors_kind_handle')
        batch_op.drop_column('handle')
