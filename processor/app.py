"""Wiring: a validated Config -> the worker's edges (database, mailbox, sender, fetcher)."""

from __future__ import annotations

from functools import partial

from models import make_engine, make_session_factory
from processor.records.claims import claims_for
from processor.config import Config
from processor.catalog.fetch import fetch_page
from processor.mail.imap import ImapSource
from processor.mail.maildir import MaildirSource
from processor.mail.smtp import OutboxSender, SmtpSender
from processor.pipeline.worker import Edges, Worker


def build_worker(config: Config) -> tuple[Worker, object]:
    """The worker and its engine (for the caller to dispose of, after `worker.close()`).

    Raises `AnotherWorkerRunning` when the database allows only one worker and one is running.
    """
    engine = make_engine(config.database_url)
    claims = claims_for(engine)
    worker_config = config.worker
    if worker_config.source == "maildir":
        source = archive = MaildirSource(worker_config.maildir_path)
    else:
        source, archive = ImapSource(config.imap), ImapSource(config.imap)
    sender = OutboxSender(worker_config.outbox_path) if worker_config.sink == "outbox" else SmtpSender(config.smtp)
    fetch = partial(fetch_page, allowed_hosts=config.publication.allowed_hosts,
                    timeout=worker_config.fetch_timeout, max_bytes=worker_config.fetch_max_bytes)
    edges = Edges(config=config, sessions=make_session_factory(engine), source=source, sender=sender, fetch=fetch,
                  claims=claims, archive=archive)
    return Worker(edges), engine
