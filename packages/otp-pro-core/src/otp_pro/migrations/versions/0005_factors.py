"""factors: several proven authenticators per member

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

Each member's enrolled channel becomes one factor, marked default, with its
TOTP seed and time step. A delivered factor is bound to the address its setup
confirmed: the keyed hash of that address is taken from the member's latest
consumed setup challenge on that channel (the same keyed hash, so no key is
needed here). Where none is left, the factor is bound at its first send after
the upgrade (audited as ``factor_bound``). Challenges still pending are tied to
the member's factor, so a code sent just before the upgrade still verifies.
``pending_totp_seed`` becomes ``pending_secret``: any factor type's setup state.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('otp_factors',
    sa.Column('id', _BIG_ID, autoincrement=True, nullable=False),
    sa.Column('member_id', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=100), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=True),
    sa.Column('is_default', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('secret', sa.Text(), nullable=True),
    sa.Column('last_step', sa.BigInteger(), nullable=True),
    sa.Column('recipient', sa.Text(), nullable=True),
    sa.Column('recipient_hash', sa.String(length=64), nullable=True),
    sa.Column('recipient_hint', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_otp_factors'))
    )
    with op.batch_alter_table('otp_factors', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_otp_factors_member_id'), ['member_id'], unique=False)
    with op.batch_alter_table('otp_challenges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('factor_id', sa.BigInteger(), nullable=True))
    with op.batch_alter_table('otp_members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_label', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('pending_recipient', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('pending_factor_id', sa.BigInteger(), nullable=True))

    # The setup's confirmed address: the latest consumed setup challenge of the member on that channel.
    op.execute("""
        INSERT INTO otp_factors (member_id, kind, label, is_default, secret, last_step, recipient_hash, created_at)
        SELECT m.member_id, m.channel, NULL, TRUE, m.totp_seed, m.totp_last_step,
               (SELECT c.recipient_hash FROM otp_challenges c
                 WHERE c.member_id = m.member_id AND c.channel = m.channel AND c.purpose = 'setup'
                   AND c.consumed_at IS NOT NULL AND c.recipient_hash IS NOT NULL
                 ORDER BY c.consumed_at DESC, c.id DESC LIMIT 1),
               COALESCE(m.enrolled_at, m.updated_at)
          FROM otp_members m
         WHERE m.channel IS NOT NULL
    """)
    op.execute("""
        UPDATE otp_challenges SET factor_id = (
            SELECT f.id FROM otp_factors f WHERE f.member_id = otp_challenges.member_id
               AND f.kind = otp_challenges.channel)
         WHERE purpose = 'verify' AND consumed_at IS NULL AND invalidated_at IS NULL
    """)
    with op.batch_alter_table('otp_members', schema=None) as batch_op:
        batch_op.drop_column('channel')
        batch_op.drop_column('totp_seed')
        batch_op.drop_column('totp_last_step')
        # A pending setup's secret is any factor type's now (a TOTP seed, a passkey's registration state).
        batch_op.alter_column('pending_totp_seed', new_column_name='pending_secret')


def downgrade() -> None:
    with op.batch_alter_table('otp_members', schema=None) as batch_op:
        batch_op.alter_column('pending_secret', new_column_name='pending_totp_seed')
        batch_op.add_column(sa.Column('channel', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('totp_seed', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('totp_last_step', sa.BigInteger(), nullable=True))
    # One channel per member before this revision: the default factor's survives.
    op.execute("""
        UPDATE otp_members SET
            channel = (SELECT f.kind FROM otp_factors f WHERE f.member_id = otp_members.member_id AND f.is_default),
            totp_seed = (SELECT f.secret FROM otp_factors f WHERE f.member_id = otp_members.member_id
                           AND f.is_default),
            totp_last_step = (SELECT f.last_step FROM otp_factors f WHERE f.member_id = otp_members.member_id
                                AND f.is_default)
    """)
    with op.batch_alter_table('otp_members', schema=None) as batch_op:
        batch_op.drop_column('pending_factor_id')
        batch_op.drop_column('pending_recipient')
        batch_op.drop_column('pending_label')
    with op.batch_alter_table('otp_challenges', schema=None) as batch_op:
        batch_op.drop_column('factor_id')
    with op.batch_alter_table('otp_factors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_otp_factors_member_id'))
    op.drop_table('otp_factors')
