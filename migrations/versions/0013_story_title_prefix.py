"""stories.title_prefix: a title's first five words, so a headline typed short finds its story

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

PREFIX_WORDS = 5  # as processor/catalog/titles.py PREFIX_WORDS at this revision


def upgrade() -> None:
    op.add_column('stories', sa.Column('title_prefix', sa.String(length=300), server_default='', nullable=False))
    op.create_index(op.f('ix_stories_title_prefix'), 'stories', ['title_prefix'], unique=False)
    stories = sa.table('stories', sa.column('id', sa.Integer), sa.column('title_key', sa.String),
                       sa.column('title_prefix', sa.String))
    connection = op.get_bind()
    rows = connection.execute(sa.select(stories.c.id, stories.c.title_key)).all()
    updates = [{"story_id": story_id, "prefix": _prefix(key)} for story_id, key in rows if _prefix(key)]
    for start in range(0, len(updates), 5000):
        connection.execute(stories.update().where(stories.c.id == sa.bindparam("story_id"))
                           .values(title_prefix=sa.bindparam("prefix")), updates[start:start + 5000])


def _prefix(title_key: str) -> str:
    words = (title_key or "").split()
    return " ".join(words[:PREFIX_WORDS])[:300] if len(words) > PREFIX_WORDS else ""


def downgrade() -> None:
    op.drop_index(op.f('ix_stories_title_prefix'), table_name='stories')
    op.drop_column('stories', 'title_prefix')
