"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outlets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=320), nullable=False),
    sa.Column('display_name', sa.String(length=320), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outlets')),
    sa.UniqueConstraint('key', name=op.f('uq_outlets_key'))
    )
    op.create_table('stories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('canonical_url', sa.String(length=2048), nullable=False),
    sa.Column('url_key', sa.String(length=2048), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('title_key', sa.String(length=1024), nullable=False),
    sa.Column('slug', sa.String(length=200), nullable=False),
    sa.Column('byline', sa.Text(), nullable=False),
    sa.Column('published_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('language', sa.String(length=35), nullable=False),
    sa.Column('body_html', sa.Text(), nullable=False),
    sa.Column('origin', sa.String(length=200), nullable=True),
    sa.Column('origin_evidence', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stories')),
    sa.UniqueConstraint('canonical_url', name=op.f('uq_stories_canonical_url')),
    sa.UniqueConstraint('url_key', name=op.f('uq_stories_url_key'))
    )
    with op.batch_alter_table('stories', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stories_title_key'), ['title_key'], unique=False)

    op.create_table('pickups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('outlet_id', sa.Integer(), nullable=False),
    sa.Column('story_id', sa.Integer(), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('first_requested_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_requested_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['outlet_id'], ['outlets.id'], name=op.f('fk_pickups_outlet_id_outlets')),
    sa.ForeignKeyConstraint(['story_id'], ['stories.id'], name=op.f('fk_pickups_story_id_stories')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pickups')),
    sa.UniqueConstraint('outlet_id', 'story_id', name=op.f('uq_pickups_outlet_id')),
    sa.UniqueConstraint('token', name=op.f('uq_pickups_token'))
    )
    with op.batch_alter_table('pickups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pickups_first_requested_at'), ['first_requested_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_pickups_outlet_id'), ['outlet_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_pickups_story_id'), ['story_id'], unique=False)

    op.create_table('requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_key', sa.String(length=255), nullable=False),
    sa.Column('message_id', sa.Text(), nullable=False),
    sa.Column('mailbox', sa.String(length=255), nullable=False),
    sa.Column('outlet_id', sa.Integer(), nullable=True),
    sa.Column('from_address', sa.String(length=320), nullable=False),
    sa.Column('reply_to', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('sent_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('processed_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('needs_person', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('reply_message_id', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['outlet_id'], ['outlets.id'], name=op.f('fk_requests_outlet_id_outlets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_requests')),
    sa.UniqueConstraint('message_key', name=op.f('uq_requests_message_key'))
    )
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_requests_needs_person'), ['needs_person'], unique=False)
        batch_op.create_index(batch_op.f('ix_requests_outcome'), ['outcome'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('recipients', sa.Text(), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('created_at', models.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', models.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_outbox_request_id_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('message_id', name=op.f('uq_outbox_message_id')),
    sa.UniqueConstraint('request_id', name=op.f('uq_outbox_request_id'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_status'), ['status'], unique=False)

    op.create_table('pickup_requests',
    sa.Column('pickup_id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['pickup_id'], ['pickups.id'], name=op.f('fk_pickup_requests_pickup_id_pickups')),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_pickup_requests_request_id_requests')),
    sa.PrimaryKeyConstraint('pickup_id', 'request_id', name=op.f('pk_pickup_requests'))
    )


def downgrade() -> None:
    op.drop_table('pickup_requests')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_status'))

    op.drop_table('outbox')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_requests_outcome'))
        batch_op.drop_index(batch_op.f('ix_requests_needs_person'))

    op.drop_table('requests')
    with op.batch_alter_table('pickups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pickups_story_id'))
        batch_op.drop_index(batch_op.f('ix_pickups_outlet_id'))
        batch_op.drop_index(batch_op.f('ix_pickups_first_requested_at'))

    op.drop_table('pickups')
    with op.batch_alter_table('stories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stories_title_key'))

    op.drop_table('stories')
    op.drop_table('outlets')
