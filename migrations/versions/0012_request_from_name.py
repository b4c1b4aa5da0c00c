"""requests.from_name: the sender's display name, so a reply from the review desk greets them by it

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('requests', sa.Column('from_name', sa.String(length=320), server_default='', nullable=False))


def downgrade() -> None:
    op.drop_column('requests', 'from_name')
