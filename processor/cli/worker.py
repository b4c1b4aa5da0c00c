"""`republish run` (the worker) and `republish demo`."""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path

import click

from processor.cli.common import Context, ready_engine
from processor.config import Config

log = logging.getLogger("processor")


@click.command()
@click.option("--dir", "directory", type=click.Path(path_type=Path), default=Path("demo-data"), show_default=True,
              help="Where the demo keeps its database, Maildir and outbox (recreated on every run).")
def demo(directory: Path) -> None:
    """Run the whole pipeline on sample requests: no mail server, no set-up."""
    from processor.demo import run_demo

    click.echo(run_demo(directory))


@click.command()
@click.option("--once", is_flag=True, help="Handle everything waiting, then exit.")
@click.pass_obj
def run(obj: Context, once: bool) -> None:
    """The worker: watch the mailbox (IDLE where the server has it, else polling) and answer requests."""
    from processor.app import build_worker
    from processor.mail.imap import MailboxError
    from processor.records.claims import AnotherWorkerRunning
    from processor.records.errors import DatabaseUnavailable

    config = obj.config
    stop = threading.Event()
    _install_signal_handlers(stop)
    engine = ready_engine(config) if once else _wait_for_database(config, stop)
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
               + (f", {stats.replies_waiting} waiting to be sent" if stats.replies_waiting else "")
               + (f": {json.dumps(stats.by_outcome, sort_keys=True)}" if stats.by_outcome else ""))
    if once and stats.send_problem and stats.replies_waiting:
        # For cron and systemd: the run did not do all it had to; the replies stay in the outbox.
        raise click.ClickException(f"{stats.replies_waiting} reply(ies) could not be sent: {stats.send_problem}")


def _wait_for_database(config: Config, stop: threading.Event):
    """A worker started before its database (a reboot, a failover) waits for it instead of exiting."""
    from processor.pipeline.backoff import Outage, retry_delay

    outage = Outage("database", log)
    while not stop.is_set():
        try:
            engine = ready_engine(config)
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
