"""pickups: index on last_requested_at, the order of the pickup log

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pickups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pickups_last_requested_at'), ['last_requested_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('pickups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pickups_last_requested_at'))
