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


# Plain ADD COLUMN, which SQLite does in place: a batch (copy, drop, rename) would have to drop `stories`,
# which the pickups' foreign keys forbid once there are any.
def upgrade() -> None:
    op.add_column('stories', sa.Column('origin_set_by', sa.String(length=320), nullable=True))
    op.add_column('stories', sa.Column('origin_set_at', models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('stories', 'origin_set_at')
    op.drop_column('stories', 'origin_set_by')
