"""pickup counts kept as pickups change: per week and decision, per outlet, per story; pickups.viewed

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

pickups = sa.table('pickups', sa.column('id'), sa.column('outlet_id'), sa.column('story_id'), sa.column('decision'),
                   sa.column('first_requested_at'), sa.column('viewed', sa.Boolean()))
pixel_hits = sa.table('pixel_hits', sa.column('pickup_id'), sa.column('counted', sa.Boolean()))
pickup_weeks = sa.table('pickup_weeks', sa.column('week'), sa.column('decision'), sa.column('pickups'),
                        sa.column('unviewed'))


def upgrade() -> None:
    op.create_table('pickup_weeks',
    sa.Column('week', sa.Date(), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('pickups', sa.Integer(), nullable=False),
    sa.Column('unviewed', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('week', 'decision', name=op.f('pk_pickup_weeks'))
    )
    # Plain ALTER TABLE ADD COLUMN and CREATE INDEX, also on SQLite: a batch operation would copy the
    # whole table (and cannot drop one that others refer to).
    for table in ('outlets', 'stories'):
        op.add_column(table, sa.Column('pickup_count', sa.Integer(), server_default='0', nullable=False))
        op.create_index(op.f(f'ix_{table}_pickup_count'), table, ['pickup_count'], unique=False)
    op.add_column('pickups', sa.Column('viewed', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_index('ix_pickups_decision_viewed_first_requested_at', 'pickups',
                    ['decision', 'viewed', 'first_requested_at'], unique=False)

    _count_existing_pickups()


def _count_existing_pickups() -> None:
    """The counts of the pickups already recorded (the code keeps them from here on)."""
    op.execute(pickups.update().values(viewed=True).where(sa.exists().where(
        pixel_hits.c.pickup_id == pickups.c.id, pixel_hits.c.counted.is_(True))))
    for table in ('outlets', 'stories'):
        owner = sa.table(table, sa.column('id'), sa.column('pickup_count'))
        column = pickups.c.outlet_id if table == 'outlets' else pickups.c.story_id
        op.execute(owner.update().values(pickup_count=sa.select(sa.func.count()).where(column == owner.c.id)
                                         .scalar_subquery()))
    if op.get_bind().dialect.name == 'postgresql':
        week = sa.cast(sa.func.date_trunc('week', sa.func.timezone('UTC', pickups.c.first_requested_at)), sa.Date)
    else:  # SQLite keeps UTC text: back to the Monday on or before the day
        week = sa.func.date(pickups.c.first_requested_at, '-6 days', 'weekday 1')
    unviewed = sa.func.sum(sa.case((pickups.c.viewed.is_(True), 0), else_=1))
    op.execute(pickup_weeks.insert().from_select(
        ['week', 'decision', 'pickups', 'unviewed'],
        sa.select(week, pickups.c.decision, sa.func.count(), unviewed).group_by(week, pickups.c.decision)))


def downgrade() -> None:
    with op.batch_alter_table('stories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stories_pickup_count'))
        batch_op.drop_column('pickup_count')

    with op.batch_alter_table('pickups', schema=None) as batch_op:
        batch_op.drop_index('ix_pickups_decision_viewed_first_requested_at')
        batch_op.drop_column('viewed')

    with op.batch_alter_table('outlets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outlets_pickup_count'))
        batch_op.drop_column('pickup_count')

    op.drop_table('pickup_weeks')
