"""requests.words: what the partner wrote, for the editor who answers it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

The review queue gave headers and a reason ("asks about print, payment"), never the question itself.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('requests', sa.Column('words', sa.Text(), server_default='', nullable=False))


def downgrade() -> None:
    op.drop_column('requests', 'words')
