"""stories.summary_only: only a feed's summary is known, so the story is never sent as it is

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

Feeds that carry summaries only ("Continue reading...") made teasers go out as whole stories.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('stories', sa.Column('summary_only', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    op.drop_column('stories', 'summary_only')
