"""Wiring: a validated Config -> the pipeline's edges (database, mailbox, sender, fetcher)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from sqlalchemy import Engine

from models import make_engine, make_session_factory
from processor.catalog.fetch import FetchedPage, fetch_page
from processor.config import Config
from processor.mail.imap import ImapSource
from processor.mail.maildir import MaildirSource
from processor.mail.smtp import OutboxSender, SmtpSender
from processor.pipeline.edges import Edges
from processor.pipeline.sending import Sending
from processor.pipeline.worker import Worker
from processor.records.claims import AnotherWorkerRunning, claims_for

log = logging.getLogger(__name__)


def build_edges(config: Config, engine: Engine) -> Edges:
    """Raises `AnotherWorkerRunning` when the database allows only one worker and one is running."""
    worker_config = config.worker
    _read_secrets(config)
    claims = claims_for(engine)
    if worker_config.source == "maildir":
        source = MaildirSource(worker_config.maildir_path)
    else:
        source = ImapSource(config.imap)
    sender = OutboxSender(worker_config.outbox_path) if worker_config.sink == "outbox" else SmtpSender(config.smtp)
    return Edges(config=config, sessions=make_session_factory(engine), source=source, sender=sender,
                 fetch=site_fetcher(config), claims=claims)


def site_fetcher(config: Config) -> Callable[..., FetchedPage]:
    """fetch(url, etag=..., last_modified=...): a page or feed on the publication's own hosts, within the
    configured time and size limits."""
    return partial(fetch_page, allowed_hosts=config.publication.allowed_hosts, timeout=config.worker.fetch_timeout,
                   max_bytes=config.worker.fetch_max_bytes)


def _read_secrets(config: Config) -> None:
    """Read now the secrets the mail connections will use, so that a missing one stops start-up with the
    key's name instead of surfacing as a failed connection later."""
    servers = ([config.imap] if config.worker.source == "imap" else []) + \
              ([config.smtp] if config.worker.sink == "smtp" else [])
    for server in servers:
        for secret in (server.password, server.oauth2 and server.oauth2.refresh_token,
                       server.oauth2 and server.oauth2.client_secret):
            if secret:
                secret.reveal()


def build_worker(config: Config) -> tuple[Worker, Engine]:
    """The worker and its engine (for the caller to dispose of, after `worker.close()`).

    Raises `AnotherWorkerRunning` when the database allows only one worker and one is running.
    """
    engine = make_engine(config.database_url)
    try:
        return Worker(build_edges(config, engine)), engine
    except BaseException:
        engine.dispose()
        raise


def run_once(config: Config):
    """`republish run --once` in this process: one pass over the mailbox; its statistics."""
    worker, engine = build_worker(config)
    try:
        return worker.run(once=True)
    finally:
        worker.close()
        engine.dispose()


def reply_sender(config: Config) -> Callable[[int], bool | None]:
    """What the review desk sends one reply with: outbox id -> True when the server accepted it now, False when
    it was not sent (it waits in the outbox, with the reason), None when a worker holding the SQLite database
    sends it on its next round."""

    def send(outbox_id: int) -> bool | None:
        sent = send_from_outbox(config, [outbox_id])
        return None if sent is None else bool(sent)

    return send


def send_from_outbox(config: Config, outbox_ids: list[int]) -> int | None:
    """Send these queued messages now, on one set of connections: how many the server accepted; None when a
    worker holding the SQLite database sends them on its next round."""
    if not outbox_ids:
        return 0
    engine = make_engine(config.database_url)
    try:
        edges = build_edges(config, engine)
    except AnotherWorkerRunning:
        engine.dispose()
        log.info("a worker is running on this database: it sends %d queued message(s)", len(outbox_ids))
        return None
    try:
        return len(Sending(edges).send_due(only=outbox_ids, copies_to=edges.source))
    finally:
        edges.source.close()
        edges.claims.close()
        engine.dispose()


def sync_catalog(config: Config, engine: Engine):
    """`republish catalog sync`: the feeds polled and outlets told, with no mail connection (the notices wait
    in the outbox for `send_from_outbox` or the worker)."""
    from processor.pipeline import corrections
    from processor.pipeline.edges import new_message_id, utc_now

    return corrections.sync_catalog(make_session_factory(engine), config, fetch=site_fetcher(config), now=utc_now(),
                                    new_message_id=new_message_id)
