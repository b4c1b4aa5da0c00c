"""a request may get more than one reply (an editor's own answer after the worker's), each of a kind;
requests.mailbox_sync: what the mailbox must be told of a decision taken at the desk

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('requests', sa.Column('mailbox_sync', sa.String(length=16), nullable=True))
    op.create_index(op.f('ix_requests_mailbox_sync'), 'requests', ['mailbox_sync'], unique=False)
    op.add_column('outbox', sa.Column('kind', sa.String(length=16), server_default='reply', nullable=False))
    with _rebuilding_outbox(), op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_outbox_request_id'), type_='unique')
        batch_op.create_index(batch_op.f('ix_outbox_request_id'), ['request_id'], unique=False)


def downgrade() -> None:
    # Only the first reply of each request can stay where a request has one reply at most.
    op.execute("DELETE FROM outbox_content WHERE outbox_id IN (SELECT o.id FROM outbox o WHERE EXISTS "
               "(SELECT 1 FROM outbox earlier WHERE earlier.request_id = o.request_id AND earlier.id < o.id))")
    op.execute("DELETE FROM outbox WHERE EXISTS (SELECT 1 FROM (SELECT id, request_id FROM outbox) earlier "
               "WHERE earlier.request_id = outbox.request_id AND earlier.id < outbox.id)")
    with _rebuilding_outbox(), op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_request_id'))
        batch_op.create_unique_constraint(batch_op.f('uq_outbox_request_id'), ['request_id'])
    op.drop_column('outbox', 'kind')
    op.drop_index(op.f('ix_requests_mailbox_sync'), table_name='requests')
    op.drop_column('requests', 'mailbox_sync')


@contextmanager
def _rebuilding_outbox():
    """SQLite changes a constraint by copying the table and dropping the old one, which a foreign key of
    outbox_content's forbids while it holds rows (the drop deletes their parents): those rows wait in a
    table of their own meanwhile."""
    if op.get_bind().dialect.name != "sqlite":
        yield
        return
    op.execute("CREATE TEMPORARY TABLE outbox_content_kept AS SELECT outbox_id, raw FROM outbox_content")
    op.execute("DELETE FROM outbox_content")
    yield
    op.execute("INSERT INTO outbox_content (outbox_id, raw) SELECT outbox_id, raw FROM outbox_content_kept")
    op.execute("DROP TABLE outbox_content_kept")
