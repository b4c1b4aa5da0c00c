"""stories.origin_set_by / origin_set_at: an editor's ruling on where a story came from

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

The importer's reading of a page can be wrong either way (an agency story taken for ours, or ours for
an agency's); an editor's ruling is recorded with who and when, and kept across re-imports.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('stories') as batch:
        batch.add_column(sa.Column('origin_set_by', sa.String(length=320), nullable=True))
        batch.add_column(sa.Column('origin_set_at', models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('stories') as batch:
        batch.drop_column('origin_set_at')
        batch.drop_column('origin_set_by')
