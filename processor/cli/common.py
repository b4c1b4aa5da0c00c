"""What the `republish` commands share: the config behind `--config`, a ready database, output options."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone

import click

from processor.config import Config, ConfigError, config_path, load_config


class Context:
    """The config file named on the command line, loaded the first time a command needs it."""

    def __init__(self, config_option: str | None) -> None:
        self.config_option = config_option
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(config_path(self.config_option))
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
        return self._config


output_option = click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table",
                             show_default=True)
day_type = click.DateTime(formats=["%Y-%m-%d"])


def ready_engine(config: Config):
    """An engine on the configured database, refused unless its schema is the latest."""
    from processor.records import db  # here, not at the top: --help stays quick
    engine = db.make_engine(config.database_url)
    try:
        current_rev = db.current_revision(engine)
    except Exception as exc:
        engine.dispose()
        from processor.records.errors import describe_database_error

        raise click.ClickException(f"cannot open the database ([database] url): {describe_database_error(exc)}") from None
    if current_rev != db.head_revision():
        raise click.ClickException("the database schema is not up to date: run `republish db upgrade` first")
    return engine


@contextmanager
def session_for(config: Config):
    from processor.records import db  # here, not at the top: --help stays quick
    engine = ready_engine(config)
    try:
        with db.make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def day_start(day: datetime | None) -> datetime | None:
    return day.replace(tzinfo=timezone.utc) if day else None


def now() -> datetime:
    return datetime.now(timezone.utc)
