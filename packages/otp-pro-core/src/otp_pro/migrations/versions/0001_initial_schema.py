"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('otp_audit_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('member_id', sa.String(length=255), nullable=True),
    sa.Column('channel', sa.String(length=100), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=512), nullable=True),
    sa.Column('actor', sa.String(length=255), nullable=True),
    sa.Column('details', sa.Text(), server_default='{}', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_otp_audit_events'))
    )
    with op.batch_alter_table('otp_audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_otp_audit_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_otp_audit_events_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_otp_audit_events_member_id'), ['member_id'], unique=False)

    op.create_table('otp_backup_codes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('member_id', sa.String(length=255), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_otp_backup_codes'))
    )
    with op.batch_alter_table('otp_backup_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_otp_backup_codes_member_id'), ['member_id'], unique=False)

    op.create_table('otp_challenges',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('member_id', sa.String(length=255), nullable=False),
    sa.Column('channel', sa.String(length=100), nullable=False),
    sa.Column('payload', sa.String(length=50), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('recipient_hash', sa.String(length=64), nullable=True),
    sa.Column('binding_hash', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.Column('consumed_at', sa.DateTime(), nullable=True),
    sa.Column('invalidated_at', sa.DateTime(), nullable=True),
    sa.Column('provider_message_id', sa.String(length=128), nullable=True),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_otp_challenges'))
    )
    with op.batch_alter_table('otp_challenges', schema=None) as batch_op:
        batch_op.create_index('ix_otp_challenges_member_created', ['member_id', 'created_at'], unique=False)
        batch_op.create_index('ix_otp_challenges_recipient_created', ['recipient_hash', 'created_at'], unique=False)
        batch_op.create_index('ix_otp_challenges_secret_hash', ['secret_hash'], unique=False)

    op.create_table('otp_members',
    sa.Column('member_id', sa.String(length=255), nullable=False),
    sa.Column('channel', sa.String(length=100), nullable=True),
    sa.Column('enrolled_at', sa.DateTime(), nullable=True),
    sa.Column('disabled_at', sa.DateTime(), nullable=True),
    sa.Column('required_since', sa.DateTime(), nullable=True),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('consecutive_failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('locked_until', sa.DateTime(), nullable=True),
    sa.Column('totp_seed', sa.Text(), nullable=True),
    sa.Column('totp_last_step', sa.BigInteger(), nullable=True),
    sa.Column('pending_channel', sa.String(length=100), nullable=True),
    sa.Column('pending_totp_seed', sa.Text(), nullable=True),
    sa.Column('pending_expires_at', sa.DateTime(), nullable=True),
    sa.Column('backup_salt', sa.String(length=64), nullable=True),
    sa.Column('backup_key_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('member_id', name=op.f('pk_otp_members'))
    )
    op.create_table('otp_trusted_devices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('member_id', sa.String(length=255), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(), nullable=True),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_otp_trusted_devices')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_otp_trusted_devices_token_hash'))
    )
    with op.batch_alter_table('otp_trusted_devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_otp_trusted_devices_member_id'), ['member_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('otp_trusted_devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_otp_trusted_devices_member_id'))

    op.drop_table('otp_trusted_devices')
    op.drop_table('otp_members')
    with op.batch_alter_table('otp_challenges', schema=None) as batch_op:
        batch_op.drop_index('ix_otp_challenges_secret_hash')
        batch_op.drop_index('ix_otp_challenges_recipient_created')
        batch_op.drop_index('ix_otp_challenges_member_created')

    op.drop_table('otp_challenges')
    with op.batch_alter_table('otp_backup_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_otp_backup_codes_member_id'))

    op.drop_table('otp_backup_codes')
    with op.batch_alter_table('otp_audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_otp_audit_events_member_id'))
        batch_op.drop_index(batch_op.f('ix_otp_audit_events_kind'))
        batch_op.drop_index(batch_op.f('ix_otp_audit_events_at'))

    op.drop_table('otp_audit_events')

