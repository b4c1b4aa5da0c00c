"""The `republish` command: thin click commands that parse arguments, call one function, format its result."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import click

from processor import db, logs
from processor.config import Config, ConfigError, config_path, load_config
from processor.urls import url_key

log = logging.getLogger("processor")


class Context:
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


@click.group()
@click.option("--config", "config_option", metavar="PATH", help="Config file (default: $REPUBLISH_CONFIG, else ./config.toml).")
@click.option("-v", "--verbose", is_flag=True, help="Log every step.")
@click.version_option(package_name="republish-processor")
@click.pass_context
def main(ctx: click.Context, config_option: str | None, verbose: bool) -> None:
    """Answer a newsroom's "republish" inbox and keep the log of who picked up which story."""
    logs.configure(verbose)
    ctx.obj = Context(config_option)


@main.command()
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=Path("demo-data"), show_default=True,
              help="Where the demo keeps its database, Maildir and outbox (recreated on every run).")
def demo(directory: Path) -> None:
    """Run the whole pipeline on sample requests: no mail server, no set-up."""
    from processor.demo import run_demo

    click.echo(run_demo(directory))


@main.group(name="db")
def db_group() -> None:
    """Database schema (Alembic migrations)."""


@db_group.command()
@click.pass_obj
def upgrade(obj: Context) -> None:
    """Migrate the configured database to the latest schema."""
    engine = db.make_engine(obj.config.database_url)
    db.upgrade(engine)
    click.echo(f"database at revision {db.current_revision(engine)}")
    engine.dispose()


@db_group.command()
@click.pass_obj
def current(obj: Context) -> None:
    """Show the database's schema revision."""
    engine = db.make_engine(obj.config.database_url)
    click.echo(db.current_revision(engine) or "empty (run: republish db upgrade)")
    engine.dispose()


@main.group()
def stories() -> None:
    """The story catalog."""


@stories.command(name="import")
@click.argument("sources", nargs=-1, required=True)
@click.pass_obj
def import_(obj: Context, sources: tuple[str, ...]) -> None:
    """Import article pages and RSS/Atom feeds, by URL (publication hosts only) or file."""
    from processor.catalog import ImportFailed, import_articles, parse_source, read_source

    config = obj.config
    engine = _ready_engine(config)
    sessions = db.make_session_factory(engine)
    failures = 0
    for source in sources:
        try:
            data, url, charset = read_source(source, publication=config.publication,
                                             timeout=config.worker.fetch_timeout, max_bytes=config.worker.fetch_max_bytes)
            articles = parse_source(data, url=url, publication=config.publication, charset=charset)
        except ImportFailed as exc:
            failures += 1
            click.echo(f"{source}: not imported: {exc}", err=True)
            continue
        with sessions() as session:
            report = import_articles(session, articles, source=source, now=datetime.now(timezone.utc))
            session.commit()
        not_free = sum(1 for a in articles if a.origin)
        click.echo(f"{source}: {len(report.created)} new, {len(report.updated)} updated"
                   f"{f', {not_free} not free to republish' if not_free else ''}"
                   f"{f', {len(report.failed)} skipped' if report.failed else ''}")
    engine.dispose()
    if failures:
        sys.exit(1)


@main.command()
@click.option("--once", is_flag=True, help="Handle everything waiting, then exit.")
@click.pass_obj
def run(obj: Context, once: bool) -> None:
    """The worker: watch the mailbox (IDLE where the server has it, else polling) and answer requests."""
    from processor.app import build_worker
    from processor.claims import AnotherWorkerRunning
    from processor.imap import MailboxError
    from processor.worker import DatabaseUnavailable

    config = obj.config
    stop = threading.Event()
    _install_signal_handlers(stop)
    engine = _ready_engine(config) if once else _wait_for_database(config, stop)
    if engine is None:
        return  # stopped while waiting for the database
    try:
        worker, _ = build_worker(config)
    except AnotherWorkerRunning as exc:
        engine.dispose()
        raise click.ClickException(str(exc)) from None
    try:
        stats = worker.run(once=once, stop=stop)
    except (MailboxError, DatabaseUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        worker.close()
        engine.dispose()
    click.echo(f"{stats.requests} request(s) handled, {stats.replies_sent} reply(ies) sent"
               + (f": {json.dumps(stats.by_outcome, sort_keys=True)}" if stats.by_outcome else ""))


@main.command()
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--outlet", help="Only this outlet (a domain, or an address for free-mail senders).")
@click.option("--story", help="Only this story (any form of its URL).")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="Only pickups requested on or after YYYY-MM-DD.")
@click.option("--decision", type=click.Choice(["granted", "declined"]))
@click.pass_obj
def pickups(obj: Context, output: str, outlet: str | None, story: str | None, since: datetime | None,
            decision: str | None) -> None:
    """The pickup log: which outlet took which story, when, and what was sent."""
    from processor.pickup_log import format_pickups
    from processor.store import list_pickups

    engine = _ready_engine(obj.config)
    sessions = db.make_session_factory(engine)
    with sessions() as session:
        rows = list_pickups(session, outlet=outlet, story_key=url_key(story) if story else None,
                            since=since.replace(tzinfo=timezone.utc) if since else None, decision=decision)
    engine.dispose()
    click.echo(format_pickups(rows, output), nl=False)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.pass_obj
def serve(obj: Context, host: str, port: int) -> None:
    """The dashboard: pickup log, charts, outlets, stories, the review queue, and the tracking pixel."""
    import uvicorn

    from processor.config import is_loopback
    from processor.web.app import build_app

    config = obj.config
    if config.web is None:
        raise click.ClickException("config table [web] is missing: see config.example.toml (republish web hash-password)")
    if config.web.trusted_user_header and not is_loopback(host):
        click.echo(f"warning: trusting {config.web.trusted_user_header} from anyone who can reach {host}:{port}; "
                   "only the login proxy must be able to", err=True)
    engine = _ready_engine(config)
    try:
        uvicorn.run(build_app(config, engine), host=host, port=port, proxy_headers=False, server_header=False,
                    log_level="info" if log.isEnabledFor(logging.INFO) else "warning")
    finally:
        engine.dispose()


@main.group()
def web() -> None:
    """The dashboard's set-up."""


@web.command(name="hash-password")
def hash_password_command() -> None:
    """Read the dashboard password (prompt or stdin) and print the [web] password_hash line for config.toml."""
    from processor.web.passwords import hash_password

    if sys.stdin.isatty():
        password = click.prompt("Dashboard password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 12:
        raise click.ClickException("use a password of at least 12 characters")
    click.echo(f'password_hash = "{hash_password(password)}"')


def _ready_engine(config: Config):
    engine = db.make_engine(config.database_url)
    try:
        current_rev = db.current_revision(engine)
    except Exception as exc:
        engine.dispose()
        from processor.worker import describe_database_error

        raise click.ClickException(f"cannot open the database ([database] url): {describe_database_error(exc)}") from None
    if current_rev != db.head_revision():
        raise click.ClickException("the database schema is not up to date: run `republish db upgrade` first")
    return engine


def _wait_for_database(config: Config, stop: threading.Event):
    """A worker started before its database (a reboot, a failover) waits for it instead of exiting."""
    from processor.backoff import Outage, retry_delay

    outage = Outage("database", log)
    while not stop.is_set():
        try:
            engine = _ready_engine(config)
        except click.ClickException as exc:
            if "schema" in exc.message:
                raise
            delay = retry_delay(outage.failures + 1, 1.0, 300.0)
            outage.failed(exc.message, delay)
            stop.wait(delay)
            continue
        outage.recovered()
        return engine
    return None


def _install_signal_handlers(stop: threading.Event) -> None:
    """First SIGTERM/SIGINT: finish the message in hand, then exit 0. Second: stop at once."""

    def handler(signum, _frame) -> None:
        if stop.is_set():
            raise SystemExit(128 + signum)
        log.info("signal %s: finishing the message in hand, then stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


if __name__ == "__main__":
    main()
