"""corrections: the feeds the catalog polls (feed_states), a story's revisions (story_revisions) and the
outlets told of them (correction_notices, one per revision and pickup); stories.reading, how a story's
text was read (page or feed)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # In place: a copy of the stories table would trip the pickups' foreign keys on SQLite.
    op.add_column('stories', sa.Column('reading', sa.String(length=8), server_default='', nullable=False))
    op.create_table('feed_states',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('etag', sa.String(length=512), nullable=False),
    sa.Column('last_modified', sa.String(length=128), nullable=False),
    sa.Column('items', sa.Integer(), nullable=False),
    sa.Column('checked_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('problem', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feed_states')),
    sa.UniqueConstraint('url', name=op.f('uq_feed_states_url'))
    )
    op.create_table('story_revisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('story_id', sa.Integer(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('changes', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['story_id'], ['stories.id'], name=op.f('fk_story_revisions_story_id_stories')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_story_revisions'))
    )
    with op.batch_alter_table('story_revisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_story_revisions_story_id'), ['story_id'], unique=False)

    op.create_table('correction_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('revision_id', sa.Integer(), nullable=False),
    sa.Column('pickup_id', sa.Integer(), nullable=False),
    sa.Column('outbox_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=320), nullable=False),
    sa.Column('decided_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], name=op.f('fk_correction_notices_outbox_id_outbox')),
    sa.ForeignKeyConstraint(['pickup_id'], ['pickups.id'], name=op.f('fk_correction_notices_pickup_id_pickups')),
    sa.ForeignKeyConstraint(['revision_id'], ['story_revisions.id'], name=op.f('fk_correction_notices_revision_id_story_revisions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_correction_notices')),
    sa.UniqueConstraint('revision_id', 'pickup_id', name=op.f('uq_correction_notices_revision_id'))
    )
    with op.batch_alter_table('correction_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_correction_notices_pickup_id'), ['pickup_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_correction_notices_revision_id'), ['revision_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_correction_notices_state'), ['state'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('correction_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_correction_notices_state'))
        batch_op.drop_index(batch_op.f('ix_correction_notices_revision_id'))
        batch_op.drop_index(batch_op.f('ix_correction_notices_pickup_id'))

    op.drop_table('correction_notices')
    with op.batch_alter_table('story_revisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_story_revisions_story_id'))

    op.drop_table('story_revisions')
    op.drop_table('feed_states')
    op.execute("ALTER TABLE stories DROP COLUMN reading")
