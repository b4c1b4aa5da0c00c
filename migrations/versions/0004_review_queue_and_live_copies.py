"""review queue, outlet admin, pixel hits, live copies

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('live_copies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('story_id', sa.Integer(), nullable=False),
    sa.Column('pickup_id', sa.Integer(), nullable=True),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('url_key', sa.String(length=2048), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('first_seen_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('checked_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('problems', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['pickup_id'], ['pickups.id'], name=op.f('fk_live_copies_pickup_id_pickups')),
    sa.ForeignKeyConstraint(['story_id'], ['stories.id'], name=op.f('fk_live_copies_story_id_stories')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_live_copies')),
    sa.UniqueConstraint('story_id', 'url_key', name=op.f('uq_live_copies_story_id'))
    )
    with op.batch_alter_table('live_copies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_live_copies_pickup_id'), ['pickup_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_live_copies_story_id'), ['story_id'], unique=False)

    op.create_table('pixel_hits',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pickup_id', sa.Integer(), nullable=True),
    sa.Column('story_id', sa.Integer(), nullable=True),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('hit_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('page_url', sa.Text(), nullable=False),
    sa.Column('page_host', sa.String(length=255), nullable=False),
    sa.Column('counted', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['pickup_id'], ['pickups.id'], name=op.f('fk_pixel_hits_pickup_id_pickups')),
    sa.ForeignKeyConstraint(['story_id'], ['stories.id'], name=op.f('fk_pixel_hits_story_id_stories')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pixel_hits'))
    )
    with op.batch_alter_table('pixel_hits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pixel_hits_hit_at'), ['hit_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_pixel_hits_page_host'), ['page_host'], unique=False)
        batch_op.create_index('ix_pixel_hits_pickup_id_hit_at', ['pickup_id', 'hit_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_pixel_hits_story_id'), ['story_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pixel_hits_token'), ['token'], unique=False)

    with op.batch_alter_table('outlets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('blocked', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('blocked_reason', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('merged_into_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_outlets_merged_into_id_outlets'), 'outlets', ['merged_into_id'], ['id'])

    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolution', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolved_by', sa.String(length=320), server_default='', nullable=False))
        batch_op.create_index(batch_op.f('ix_requests_resolved_at'), ['resolved_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_requests_resolved_at'))
        batch_op.drop_column('resolved_by')
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('resolution')

    with op.batch_alter_table('outlets', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outlets_merged_into_id_outlets'), type_='foreignkey')
        batch_op.drop_column('merged_into_id')
        batch_op.drop_column('blocked_reason')
        batch_op.drop_column('blocked')

    with op.batch_alter_table('pixel_hits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pixel_hits_token'))
        batch_op.drop_index(batch_op.f('ix_pixel_hits_story_id'))
        batch_op.drop_index('ix_pixel_hits_pickup_id_hit_at')
        batch_op.drop_index(batch_op.f('ix_pixel_hits_page_host'))
        batch_op.drop_index(batch_op.f('ix_pixel_hits_hit_at'))

    op.drop_table('pixel_hits')
    with op.batch_alter_table('live_copies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_live_copies_story_id'))
        batch_op.drop_index(batch_op.f('ix_live_copies_pickup_id'))

    op.drop_table('live_copies')
