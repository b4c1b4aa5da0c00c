"""Migrations that move data: what was stored before comes out the same after, both ways."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import command

from processor.records import db

REPLY = b"From: republish@riversideledger.example\r\nSubject: Re: republish\r\n\r\n" + b"x" * 20_000


def _filler(column: sa.Column):
    """A value for a required column of a reflected table."""
    if isinstance(column.type, (sa.Integer, sa.Numeric)):
        return 0
    if isinstance(column.type, sa.Boolean):
        return False
    if isinstance(column.type, (sa.DateTime, sa.Date)) or "_at" in column.name:
        return datetime(2026, 11, 1, tzinfo=timezone.utc)
    if isinstance(column.type, sa.LargeBinary):
        return b""
    return "x"


def _insert(connection, name: str, **values) -> int:
    table = sa.Table(name, sa.MetaData(), autoload_with=connection)
    row = {column.name: _filler(column) for column in table.columns
           if not column.nullable and not column.primary_key and column.server_default is None}
    row.update(values)
    return connection.execute(table.insert().values(**row).returning(table.c.id)).scalar()


def _migrator(engine):
    """step(config, revision) on the engine's database, in one transaction: migrate(command.upgrade, "0006")."""
    config = db.alembic_config(engine.url.render_as_string(hide_password=False))

    def migrate(step, revision):
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            step(config, revision)

    return migrate


def test_the_replies_already_stored_move_to_outbox_content_and_back(database_url):
    engine = db.make_engine(database_url)
    migrate = _migrator(engine)
    migrate(command.upgrade, "0006")
    with engine.begin() as connection:
        request_id = _insert(connection, "requests", message_key="m1@x.example")
        outbox_id = _insert(connection, "outbox", request_id=request_id, message_id="r1@x.example", raw=REPLY,
                            status="sent")
    migrate(command.upgrade, "head")
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT outbox_id, raw FROM outbox_content")).all() == [(outbox_id, REPLY)]
        assert "raw" not in {column["name"] for column in sa.inspect(connection).get_columns("outbox")}
    migrate(command.downgrade, "0006")
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT id, raw FROM outbox")).all() == [(outbox_id, REPLY)]
        assert not sa.inspect(connection).has_table("outbox_content")
    engine.dispose()


def test_the_revision_read_commands_expect_is_alembics_head():
    """Read commands take the newest revision from the migration files' names, without Alembic."""
    from alembic.script import ScriptDirectory

    assert db.head_revision() == ScriptDirectory(str(db.MIGRATIONS_DIR)).get_current_head()


def test_a_request_gets_a_second_reply_and_a_downgrade_keeps_the_first(database_url):
    engine = db.make_engine(database_url)
    migrate = _migrator(engine)
    migrate(command.upgrade, "0013")
    with engine.begin() as connection:
        request_id = _insert(connection, "requests", message_key="m1@x.example")
        first = _insert(connection, "outbox", request_id=request_id, message_id="r1@x.example", status="sent")
        connection.execute(sa.text("INSERT INTO outbox_content (outbox_id, raw) VALUES (:i, :r)"), {"i": first, "r": REPLY})
    migrate(command.upgrade, "head")
    with engine.begin() as connection:
        assert connection.execute(sa.text("SELECT kind FROM outbox")).scalar() == "reply"
        second = _insert(connection, "outbox", request_id=request_id, message_id="r2@x.example", status="sent",
                         kind="answer")
        connection.execute(sa.text("INSERT INTO outbox_content (outbox_id, raw) VALUES (:i, :r)"), {"i": second, "r": b"x"})
    migrate(command.downgrade, "0013")
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT id FROM outbox")).all() == [(first,)]
        assert connection.execute(sa.text("SELECT outbox_id, raw FROM outbox_content")).all() == [(first, REPLY)]
    engine.dispose()
