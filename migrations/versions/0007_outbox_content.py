"""the reply's bytes move from outbox.raw to a table of their own, outbox_content

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25

On SQLite an UPDATE rewrites the whole row, and each send updates the outbox row two or three
times: with the message inside it, every status change rewrote some 15 KB.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox_content',
    sa.Column('outbox_id', sa.Integer(), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], name=op.f('fk_outbox_content_outbox_id_outbox')),
    sa.PrimaryKeyConstraint('outbox_id', name=op.f('pk_outbox_content'))
    )
    op.execute('INSERT INTO outbox_content (outbox_id, raw) SELECT id, raw FROM outbox')
    # A plain ALTER TABLE DROP COLUMN (SQLite 3.35+ has it): a batch operation would copy the table,
    # which other tables refer to.
    op.drop_column('outbox', 'raw')


def downgrade() -> None:
    op.add_column('outbox', sa.Column('raw', sa.LargeBinary(), nullable=True))
    op.execute('UPDATE outbox SET raw = (SELECT raw FROM outbox_content WHERE outbox_content.outbox_id = outbox.id)')
    op.drop_table('outbox_content')
