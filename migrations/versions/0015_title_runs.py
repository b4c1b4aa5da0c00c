"""title_runs: every run of five words of a story's title, so that a headline typed short, or without its
first words, finds its story; replaces stories.title_prefix (the first five words only)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

RUN_WORDS = 5  # as processor/catalog/titles.py RUN_WORDS at this revision


def upgrade() -> None:
    op.create_table('title_runs',
                    sa.Column('story_id', sa.Integer(), nullable=False),
                    sa.Column('run', sa.String(length=300), nullable=False),
                    sa.ForeignKeyConstraint(['story_id'], ['stories.id'], name=op.f('fk_title_runs_story_id_stories')),
                    sa.PrimaryKeyConstraint('story_id', 'run', name=op.f('pk_title_runs')))
    op.create_index(op.f('ix_title_runs_run'), 'title_runs', ['run'], unique=False)
    stories = sa.table('stories', sa.column('id', sa.Integer), sa.column('title_key', sa.String))
    runs = sa.table('title_runs', sa.column('story_id', sa.Integer), sa.column('run', sa.String))
    connection = op.get_bind()
    rows = [{"story_id": story_id, "run": run} for story_id, key in connection.execute(
        sa.select(stories.c.id, stories.c.title_key)).all() for run in _runs(key)]
    for start in range(0, len(rows), 5000):
        connection.execute(runs.insert(), rows[start:start + 5000])
    op.drop_index('ix_stories_title_prefix', table_name='stories')
    # In place (SQLite 3.35 and later, PostgreSQL): a copy of the stories table would trip the pickups'
    # foreign keys.
    op.execute("ALTER TABLE stories DROP COLUMN title_prefix")


def downgrade() -> None:
    op.add_column('stories', sa.Column('title_prefix', sa.String(length=300), server_default='', nullable=False))
    op.create_index('ix_stories_title_prefix', 'stories', ['title_prefix'], unique=False)
    stories = sa.table('stories', sa.column('id', sa.Integer), sa.column('title_key', sa.String),
                       sa.column('title_prefix', sa.String))
    connection = op.get_bind()
    updates = [{"story_id": story_id, "prefix": _runs(key)[0]} for story_id, key in
               connection.execute(sa.select(stories.c.id, stories.c.title_key)).all() if _runs(key)]
    for start in range(0, len(updates), 5000):
        connection.execute(stories.update().where(stories.c.id == sa.bindparam("story_id"))
                           .values(title_prefix=sa.bindparam("prefix")), updates[start:start + 5000])
    op.drop_index(op.f('ix_title_runs_run'), table_name='title_runs')
    op.drop_table('title_runs')


def _runs(title_key: str) -> list[str]:
    words = (title_key or "").split()
    if len(words) <= RUN_WORDS:
        return []
    return list(dict.fromkeys(" ".join(words[start:start + RUN_WORDS])[:300]
                              for start in range(len(words) - RUN_WORDS + 1)))
