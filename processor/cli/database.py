"""`republish db`: the database schema (Alembic migrations)."""

from __future__ import annotations

import click

from processor.cli.common import Context


@click.group(name="db")
def db_group() -> None:
    """Database schema (Alembic migrations)."""


@db_group.command()
@click.pass_obj
def upgrade(obj: Context) -> None:
    """Migrate the configured database to the latest schema."""
    from processor.records import db  # here, not at the top: --help stays quick
    engine = db.make_engine(obj.config.database_url)
    db.upgrade(engine)
    click.echo(f"database at revision {db.current_revision(engine)}")
    engine.dispose()


@db_group.command()
@click.pass_obj
def current(obj: Context) -> None:
    """Show the database's schema revision."""
    from processor.records import db  # here, not at the top: --help stays quick
    engine = db.make_engine(obj.config.database_url)
    click.echo(db.current_revision(engine) or "empty (run: republish db upgrade)")
    engine.dispose()
