"""The `republish` command: thin click commands that parse arguments, call one function, format its result."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from processor import logs
from processor.records import db
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


@main.group(invoke_without_command=True)
@click.option("--search", metavar="TEXT", help="Only stories whose title or URL contains TEXT.")
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.pass_context
def stories(ctx: click.Context, search: str | None, output: str) -> None:
    """The story catalog, with how often each story was granted and declined."""
    if ctx.invoked_subcommand is not None:
        return
    from processor.desk.listings import format_stories
    from processor.desk.story_stats import story_counts

    with _session(ctx.obj.config) as session:
        rows = story_counts(session, search=search)
    click.echo(format_stories(rows, output), nl=False)


@stories.command(name="import")
@click.argument("sources", nargs=-1, required=True)
@click.pass_obj
def import_(obj: Context, sources: tuple[str, ...]) -> None:
    """Import article pages and RSS/Atom feeds, by URL (publication hosts only) or file."""
    from processor.catalog.stories import ImportFailed, import_articles, parse_source, read_source

    config = obj.config
    engine = _ready_engine(config)
    sessions = db.make_session_factory(engine)
    failures = 0
    for source in _with_progress(sources, "importing"):
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
    from processor.records.claims import AnotherWorkerRunning
    from processor.mail.imap import MailboxError
    from processor.records.errors import DatabaseUnavailable

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
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), help="Only pickups requested on or before YYYY-MM-DD.")
@click.option("--decision", type=click.Choice(["granted", "declined"]))
@click.option("--limit", type=click.IntRange(min=0), help="At most this many, latest first (default: 100 for the "
              "table, all for csv and json; 0: all).")
@click.pass_obj
def pickups(obj: Context, output: str, outlet: str | None, story: str | None, since: datetime | None,
            until: datetime | None, decision: str | None, limit: int | None) -> None:
    """The pickup log: which outlet took which story, when, and what was sent."""
    from processor.desk.pickup_log import format_pickups
    from processor.records.pickups import list_pickups

    engine = _ready_engine(obj.config)
    sessions = db.make_session_factory(engine)
    with sessions() as session:
        if limit is None:
            limit = 100 if output == "table" else 0  # a screenful to read; exports are whole
        rows = list_pickups(session, outlet=outlet, story_key=url_key(story) if story else None,
                            since=_day_start(since), until=_day_after(until), decision=decision, limit=limit or None)
    engine.dispose()
    click.echo(format_pickups(rows, output), nl=False)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.pass_obj
def serve(obj: Context, host: str, port: int) -> None:
    """The dashboard: pickup log, charts, outlets, stories, the review queue, and the tracking pixel."""
    import uvicorn

    from processor.app import reply_sender
    from processor.config import is_loopback
    from processor.desk.web.app import build_app

    config = obj.config
    if config.web is None:
        raise click.ClickException("config table [web] is missing: see config.example.toml (republish web hash-password)")
    if config.web.trusted_user_header and not is_loopback(host):
        click.echo(f"warning: trusting {config.web.trusted_user_header} from anyone who can reach {host}:{port}; "
                   "only the login proxy must be able to", err=True)
    engine = _ready_engine(config)
    try:
        uvicorn.run(build_app(config, engine, send_reply=reply_sender(config)), host=host, port=port, proxy_headers=False, server_header=False,
                    log_level="info" if log.isEnabledFor(logging.INFO) else "warning")
    finally:
        engine.dispose()


@main.group(invoke_without_command=True)
@click.pass_context
def outlets(ctx: click.Context) -> None:
    """Partner outlets: pickups per outlet, blocked ones marked; rename, merge, block, unblock."""
    if ctx.invoked_subcommand is not None:
        return
    from processor.desk.listings import format_outlets
    from processor.desk.outlets import list_outlets

    with _session(ctx.obj.config) as session:
        rows = list_outlets(session)
    click.echo(format_outlets(rows, "table"), nl=False)


@outlets.command(name="rename")
@click.argument("key")
@click.argument("display_name")
@click.pass_obj
def outlets_rename(obj: Context, key: str, display_name: str) -> None:
    """Show outlet KEY as DISPLAY_NAME."""
    from processor.desk.outlets import rename

    click.echo(_outlet_change(obj.config, rename, key, display_name))


@outlets.command(name="merge")
@click.argument("from_key")
@click.argument("into_key")
@click.pass_obj
def outlets_merge(obj: Context, from_key: str, into_key: str) -> None:
    """Move FROM_KEY's pickups and requests to INTO_KEY; FROM_KEY's later requests count for INTO_KEY."""
    from processor.desk.outlets import merge

    click.echo(_outlet_change(obj.config, merge, from_key, into_key))


@outlets.command(name="block")
@click.argument("key")
@click.option("--reason", required=True, help="Why; every later request from this outlet is flagged with it.")
@click.pass_obj
def outlets_block(obj: Context, key: str, reason: str) -> None:
    """Send every later request from KEY to a person instead of answering it."""
    from processor.desk.outlets import block

    click.echo(_outlet_change(obj.config, block, key, reason))


@outlets.command(name="unblock")
@click.argument("key")
@click.pass_obj
def outlets_unblock(obj: Context, key: str) -> None:
    """Answer KEY's requests automatically again."""
    from processor.desk.outlets import unblock

    click.echo(_outlet_change(obj.config, unblock, key))


def _outlet_change(config: Config, change, *args: str) -> str:
    from processor.desk.outlets import OutletError

    with _session(config) as session:
        try:
            summary = change(session, *args)
        except OutletError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    return summary


@main.group(invoke_without_command=True)
@click.option("--outcome", type=click.Choice(["answered", "needs_person", "backfilled", "ignored", "pending"]))
@click.option("--outlet", help="Only requests from this outlet.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), help="Only requests handled on or after YYYY-MM-DD.")
@click.option("--format", "output", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.pass_context
def requests(ctx: click.Context, outcome: str | None, outlet: str | None, since: datetime | None, output: str) -> None:
    """The inbound log: every request, its outcome and why; `requests show ID` for one in full."""
    if ctx.invoked_subcommand is not None:
        return
    from processor.desk.inbound_log import list_requests
    from processor.desk.listings import format_requests

    with _session(ctx.obj.config) as session:
        rows = list_requests(session, outcome=outcome, outlet=outlet, since=_day_start(since))
    click.echo(format_requests(rows, output), nl=False)


@requests.command(name="show")
@click.argument("request_id", type=int)
@click.pass_obj
def requests_show(obj: Context, request_id: int) -> None:
    """One request: its headers, outcome, reason, pickups and the reply exactly as sent."""
    from processor.desk.inbound_log import request_detail
    from processor.desk.listings import format_request_detail

    with _session(obj.config) as session:
        detail = request_detail(session, request_id)
    if detail is None:
        raise click.ClickException(f"there is no request {request_id}")
    click.echo(format_request_detail(detail), nl=False)


@main.group(invoke_without_command=True)
@click.pass_context
def review(ctx: click.Context) -> None:
    """Requests waiting for a person, oldest first; grant, decline or dismiss them."""
    if ctx.invoked_subcommand is not None:
        return
    from processor.desk.listings import format_review_queue
    from processor.desk.review import review_queue

    with _session(ctx.obj.config) as session:
        items = review_queue(session)
    click.echo(format_review_queue(items), nl=False)


_editor_option = click.option("--editor", default=lambda: os.environ.get("USER", ""), show_default="$USER",
                              help="Who decided (recorded with the resolution).")
_story_option = click.option("--story", "story_urls", multiple=True, metavar="URL",
                             help="The story meant (repeatable); default: the stories the request named.")


@review.command(name="grant")
@click.argument("request_id", type=int)
@_story_option
@_editor_option
@click.pass_obj
def review_grant(obj: Context, request_id: int, story_urls: tuple[str, ...], editor: str) -> None:
    """Grant the request: the reply with the snippets is sent now."""
    _resolve(obj.config, request_id, "grant", editor, story_urls)


@review.command(name="decline")
@click.argument("request_id", type=int)
@_story_option
@_editor_option
@click.pass_obj
def review_decline(obj: Context, request_id: int, story_urls: tuple[str, ...], editor: str) -> None:
    """Decline the request: a polite no is sent now."""
    _resolve(obj.config, request_id, "decline", editor, story_urls)


@review.command(name="dismiss")
@click.argument("request_id", type=int)
@_editor_option
@click.pass_obj
def review_dismiss(obj: Context, request_id: int, editor: str) -> None:
    """Take the request off the queue without sending anything (answered by hand, or not a request)."""
    _resolve(obj.config, request_id, "dismiss", editor, ())


def _resolve(config: Config, request_id: int, action: str, editor: str, story_urls: tuple[str, ...]) -> None:
    from processor.app import reply_sender
    from processor.desk.review import ReviewError, resolve, send_now

    if not editor:
        raise click.ClickException("say who decides with --editor NAME ($USER is not set)")
    with _session(config) as session:
        try:
            summary = resolve(session, request_id, action, editor=editor, config=config,
                              now=datetime.now(timezone.utc), story_urls=story_urls)
        except ReviewError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(summary)
    if action == "dismiss":
        return
    engine = _ready_engine(config)
    try:
        click.echo(send_now(db.make_session_factory(engine), request_id, reply_sender(config)))
    finally:
        engine.dispose()


@main.command()
@click.argument("pickup_id", type=int, required=False)
@click.option("--all", "check_all", is_flag=True, help="Every known live copy.")
@click.option("--url", help="A live copy's address, given by an editor (with --story).")
@click.option("--story", "story_url", metavar="URL", help="The story the --url page republishes.")
@click.pass_obj
def verify(obj: Context, pickup_id: int | None, check_all: bool, url: str | None, story_url: str | None) -> None:
    """Check republished copies against the guidelines; copies with violations go to the review queue."""
    from functools import partial

    from processor.catalog.fetch import FetchError
    from processor.desk.live_fetch import fetch_live
    from processor.desk.listings import format_verified
    from processor.desk.verify import copies_to_verify, copy_for_url, verify_copy

    if sum((pickup_id is not None, check_all, url is not None)) != 1 or bool(url) != bool(story_url):
        raise click.UsageError("give one of: PICKUP_ID, --all, or --url URL --story URL")
    config = obj.config
    fetch = partial(fetch_live, timeout=config.worker.fetch_timeout, max_bytes=config.worker.fetch_max_bytes)
    results = []
    with _session(config) as session:
        now = datetime.now(timezone.utc)
        try:
            copies = [copy_for_url(session, url, story_url, now)] if url else copies_to_verify(session, pickup_id=pickup_id)
        except FetchError as exc:
            raise click.ClickException(str(exc)) from None
        for copy in copies:
            results.append(verify_copy(session, copy, config.publication, fetch, now))
            session.commit()
    click.echo(format_verified(results), nl=False)


@contextmanager
def _session(config: Config):
    engine = _ready_engine(config)
    try:
        with db.make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


@main.group()
def web() -> None:
    """The dashboard's set-up."""


@web.command(name="hash-password")
def hash_password_command() -> None:
    """Read the dashboard password (prompt or stdin) and print the [web] password_hash line for config.toml."""
    from processor.passwords import hash_password

    if sys.stdin.isatty():
        password = click.prompt("Dashboard password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 12:
        raise click.ClickException("use a password of at least 12 characters")
    click.echo(f'password_hash = "{hash_password(password)}"')


def _day_start(day: datetime | None) -> datetime | None:
    return day.replace(tzinfo=timezone.utc) if day else None


def _day_after(day: datetime | None) -> datetime | None:
    """The end of an inclusive YYYY-MM-DD: midnight of the next day."""
    return day.replace(tzinfo=timezone.utc) + timedelta(days=1) if day else None


def _with_progress(items: tuple[str, ...], label: str):
    """The items, with a progress bar on stderr while there is more than one."""
    if len(items) < 2:
        yield from items
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("", total=len(items))
        for item in items:
            progress.update(task, description=item[-60:])
            yield item
            progress.advance(task)


def _ready_engine(config: Config):
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


def _wait_for_database(config: Config, stop: threading.Event):
    """A worker started before its database (a reboot, a failover) waits for it instead of exiting."""
    from processor.pipeline.backoff import Outage, retry_delay

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
