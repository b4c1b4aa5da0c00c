"""Database set-up at the edge: engine, sessions and Alembic migrations to head.

Alembic is imported only where a migration runs: a read command checks the schema's revision with one
query and the migration files' names, and starts in a fraction of the time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

import migrations
from models import make_engine, make_session_factory

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS_DIR = Path(migrations.__file__).parent
_REVISION_FILE = re.compile(r"^(\d{4})_\w+\.py$")  # migrations/versions/0015_title_runs.py is revision "0015"


def alembic_config(url: str) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Run every migration up to head on this engine's database."""
    from alembic import command

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def head_revision() -> str | None:
    """The newest migration this code ships: revisions are numbered in order, as their files are named
    (tests/test_migrations.py checks this against Alembic's own reading of the chain)."""
    numbers = [match.group(1) for path in (MIGRATIONS_DIR / "versions").iterdir()
               if (match := _REVISION_FILE.match(path.name))]
    return max(numbers, default=None)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty one)."""
    with engine.connect() as connection:
        try:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except (OperationalError, ProgrammingError):  # no such table: nothing was ever migrated
            return None


__all__ = ["alembic_config", "current_revision", "head_revision", "make_engine", "make_session_factory", "upgrade"]
