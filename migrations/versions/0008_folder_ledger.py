"""folder_ledger: how far each mailbox folder was handled (a pass asks only for new UIDs)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Servers that keep no IMAP keywords (Exchange Online) cannot be told which messages were handled:
without a record of our own, every pass downloaded every request the folder ever held.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('folder_ledger',
    sa.Column('mailbox', sa.String(length=1024), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('next_uid', sa.BigInteger(), nullable=False),
    sa.Column('waiting', sa.Text(), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('mailbox', name=op.f('pk_folder_ledger'))
    )


def downgrade() -> None:
    op.drop_table('folder_ledger')
