"""Runs the pipeline top to bottom: fetch -> parse -> classify -> decide -> record -> reply -> mark.

Network, database and clock are the edges handed in (`Edges`); everything in between is the
pure steps. The order of the last three is what makes "never twice, never lost" hold: a reply
is stored in the outbox in the same transaction as the request it answers, sent after the
commit, and the message is marked in the mailbox only once its reply was accepted. A message
that breaks a step is recorded and flagged for a person; the worker itself never dies on one.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.policy import SMTP as SMTP_POLICY
from email.utils import make_msgid

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from models import Decision, OutboxMessage, Outcome, Request
from processor import catalog, store
from processor.classify import automation_reason, is_republish_subject, outlet_key, question_reason, story_refs
from processor.config import Config
from processor.decide import Facts, Plan, decide
from processor.fetch import FetchError, FetchedPage
from processor.imap import MailboxError
from processor.mailbox import MailSource, Mark, RawMessage
from processor.parse import Inbound, UnreadableMessage, message_key, parse_message
from processor.reply import ReplyContext, build_reply, reply_address
from processor.snippet import build_snippet
from processor.transport import Sender, SendError
from processor.urls import url_key

log = logging.getLogger(__name__)
MAX_FETCHES_PER_MESSAGE = 5
MAX_STORIES_BY_TITLE = 5
RECONNECT_FIRST_DELAY = 1.0
RECONNECT_MAX_DELAY = 300.0


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Edges:
    """Everything the worker touches outside itself."""

    config: Config
    sessions: sessionmaker
    source: MailSource
    sender: Sender
    fetch: Callable[[str], FetchedPage]
    clock: Callable[[], datetime] = utc_now
    new_token: Callable[[], str] = lambda: secrets.token_urlsafe(16)
    new_message_id: Callable[[str], str] = lambda domain: make_msgid(domain=domain).strip("<>")


@dataclass
class Handled:
    ref: str
    mark: Mark | None          # None: leave the message as it is (not a request, or retry later)
    outbox_id: int | None = None
    outcome: str = ""


@dataclass
class RunStats:
    seen: int = 0
    requests: int = 0
    replies_sent: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)

    def add(self, handled: Handled) -> None:
        if handled.outcome:
            self.requests += 1
            self.by_outcome[handled.outcome] = self.by_outcome.get(handled.outcome, 0) + 1


class Worker:
    def __init__(self, edges: Edges) -> None:
        self.edges = edges
        self.config = edges.config
        publication = self.config.publication
        self.reply_from = self.config.smtp.from_address if self.config.smtp else publication.contact_email
        self.own_addresses = tuple({self.reply_from.lower(), publication.contact_email.lower()})

    # -- the loop ---------------------------------------------------------
    def run(self, *, once: bool, stop: threading.Event | None = None) -> RunStats:
        """Handle everything waiting; unless `once`, then wait for more until `stop` is set."""
        stop = stop or threading.Event()
        total = RunStats()
        delay = RECONNECT_FIRST_DELAY
        while not stop.is_set():
            try:
                self.drain(total, stop)
                if once:
                    break
                self.edges.source.wait(self.config.worker.poll_seconds, stop)
                delay = RECONNECT_FIRST_DELAY
            except MailboxError as exc:
                if once:
                    raise
                # The mailbox went away (server restart, dropped connection): nothing was marked
                # that was not done, so reconnecting and searching again loses and repeats nothing.
                log.warning("%s; reconnecting in %.0f s", exc, delay)
                self.edges.source.close()
                stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY)
        return total

    def drain(self, stats: RunStats, stop: threading.Event) -> None:
        worker = self.config.worker
        for batch in self.edges.source.batches(worker.batch_size, worker.max_message_bytes):
            self.process_batch(batch, stats)
            if stop.is_set():
                return

    def process_batch(self, batch: list[RawMessage], stats: RunStats) -> None:
        results = []
        for message in batch:
            stats.seen += 1
            handled = self.handle(message)
            stats.add(handled)
            results.append(handled)
        delivery = self.send_replies([h.outbox_id for h in results if h.outbox_id])
        stats.replies_sent += sum(1 for status in delivery.values() if status == "sent")
        for handled in results:
            mark = handled.mark
            if handled.outbox_id:
                status = delivery.get(handled.outbox_id, "retry")
                if status == "retry":
                    continue  # stays unmarked: the next run sends the stored reply
                if status == "failed":
                    mark = Mark.PERSON
            if mark is not None:
                self.edges.source.mark(handled.ref, mark)

    # -- one message ------------------------------------------------------
    def handle(self, message: RawMessage) -> Handled:
        source = self.edges.source
        if message.raw is None:
            return self._park(message, f"message of {message.size} bytes is over the "
                                       f"{self.config.worker.max_message_bytes}-byte limit: not downloaded",
                              key=f"oversized:{source.name}:{message.ref}:{message.size}")
        try:
            inbound = parse_message(message.raw)
        except UnreadableMessage as exc:
            return self._park(message, str(exc), key=message_key("", message.raw))
        if not is_republish_subject(inbound.subject):
            source.skip(message.ref)
            return Handled(message.ref, None)
        try:
            with self.edges.sessions() as session:
                return self._handle_request(session, message, inbound)
        except Exception as exc:  # the worker never dies on a message: park it for a person instead
            log.exception("message %s could not be handled", message.ref)
            return self._park(message, f"internal error while handling: {type(exc).__name__}: {exc}",
                              key=inbound.message_key)

    def _handle_request(self, session: Session, message: RawMessage, inbound: Inbound) -> Handled:
        existing = store.find_request(session, inbound.message_key)
        if existing is not None:
            return self._already_handled(message, existing)
        now = self.edges.clock()
        publication = self.config.publication
        automated = automation_reason(inbound, self.own_addresses, self.reply_from)
        stories, unmatched = ((), ()) if automated else self._stories(session, inbound, now)
        recipient = reply_address(inbound)
        plan = decide(Facts(
            automated=automated,
            sent_at=inbound.date,
            stories=stories,
            unmatched_links=unmatched,
            question=question_reason(inbound.text),
            recipient=recipient,
            now=now,
            max_age=timedelta(days=self.config.worker.max_age_days),
        ))
        outlet = None
        if not automated and inbound.from_address:
            outlet = store.outlet_for(session, outlet_key(inbound.from_address), inbound.from_name, now)
        request = store.record_request(session, inbound, plan, outlet=outlet, mailbox=self.edges.source.name, now=now)
        pickups = store.record_pickups(session, request, outlet, plan, now=now, new_token=self.edges.new_token) if outlet else {}
        outbox_id = None
        if plan.reply:
            snippets = {
                d.story.id: build_snippet(d.story, publication, outlet_id=outlet.id, token=pickups[d.story.id].token)
                for d in plan.stories if d.decision == Decision.GRANTED
            }
            message_id = self.edges.new_message_id(self.reply_from.rsplit("@", 1)[-1])
            reply = build_reply(plan, inbound, snippets, ReplyContext(publication, self.reply_from, message_id, now))
            outbox = store.queue_reply(session, request, raw=reply.as_bytes(policy=SMTP_POLICY), message_id=message_id,
                                       recipient=recipient, now=now)
            outbox_id = outbox.id
        session.commit()
        log.info("request %s from %r: %s (%s)", message.ref, inbound.from_address, plan.outcome, plan.reason)
        return Handled(message.ref, _mark_for(plan), outbox_id, str(plan.outcome))

    def _already_handled(self, message: RawMessage, request: Request) -> Handled:
        """Seen before (a restart, a copy in another folder): finish what is left, never redo it."""
        outbox = request.outbox
        if outbox is not None and outbox.status == "pending":
            return Handled(message.ref, Mark.PERSON if request.needs_person else Mark.DONE, outbox.id)
        log.info("message %s was already handled as request %s (%s)", message.ref, request.id, request.outcome)
        if request.outcome == Outcome.IGNORED:
            return Handled(message.ref, Mark.IGNORED)
        return Handled(message.ref, Mark.PERSON if request.needs_person else Mark.DONE)

    def _stories(self, session: Session, inbound: Inbound, now: datetime) -> tuple[tuple, tuple[str, ...]]:
        publication = self.config.publication
        refs = story_refs(inbound, publication.allowed_hosts)
        found = catalog.stories_by_url_keys(session, refs.own_keys)
        unmatched = []
        fetches = 0
        for link in refs.own_links:
            key = url_key(link)
            if key in found:
                continue
            story = None
            if fetches < MAX_FETCHES_PER_MESSAGE:
                fetches += 1
                story = self._import_linked_page(session, link, now)
            if story is not None:
                found[key] = story
            else:
                unmatched.append(link)
        by_id = {story.id: story for story in found.values()}
        for story in catalog.stories_by_title_keys(session, refs.title_keys)[:MAX_STORIES_BY_TITLE]:
            by_id.setdefault(story.id, story)
        return tuple(by_id.values()), tuple(unmatched)

    def _import_linked_page(self, session: Session, link: str, now: datetime):
        """A link on our own site that is not in the catalog yet: fetch it, import it, match it."""
        publication = self.config.publication
        try:
            page = self.edges.fetch(link)
            articles = catalog.parse_source(page.content, url=page.url, publication=publication, charset=page.charset)
        except (FetchError, catalog.ImportFailed) as exc:
            log.info("link %r could not be imported: %s", link[:200], exc)
            return None
        report = catalog.import_articles(session, articles[:1], source=link, now=now)
        if not (report.created or report.updated):
            return None
        imported = catalog.stories_by_url_keys(session, (url_key(articles[0].canonical_url),))
        return next(iter(imported.values()), None)

    def _park(self, message: RawMessage, reason: str, *, key: str) -> Handled:
        """Keep the message for a person, with the reason logged and recorded; never drop it."""
        log.warning("message %s needs a person: %s", message.ref, reason)
        try:
            with self.edges.sessions() as session:
                existing = store.find_request(session, key)
                if existing is None:
                    store.record_unreadable(session, message_key=key, mailbox=self.edges.source.name,
                                            size=message.size, reason=reason, now=self.edges.clock())
                    session.commit()
        except SQLAlchemyError:
            log.exception("could not record message %s; it stays in the mailbox for the next run", message.ref)
            return Handled(message.ref, None)
        return Handled(message.ref, Mark.PERSON, outcome=str(Outcome.NEEDS_PERSON))

    # -- sending ----------------------------------------------------------
    def send_replies(self, outbox_ids: list[int]) -> dict[int, str]:
        """Send the stored replies over one connection: {outbox id: sent | failed | retry}."""
        if not outbox_ids:
            return {}
        status: dict[int, str] = {}
        with self.edges.sessions() as session:
            rows = session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(outbox_ids))).all()
            pending = []
            for row in rows:
                if row.status == "pending":
                    pending.append(row)
                else:
                    status[row.id] = "sent" if row.status == "sent" else "failed"
            if not pending:
                return status
            try:
                with self.edges.sender.connect() as connection:
                    for row in pending:
                        status[row.id] = self._send_one(session, connection, row)
            except SendError as exc:
                log.warning("replies not sent, will retry on the next run: %s", exc)
        return status

    def _send_one(self, session: Session, connection, row: OutboxMessage) -> str:
        try:
            connection.send(row.raw, self.reply_from, row.recipients)
        except SendError as exc:
            store.mark_reply_failed(row, str(exc), permanent=exc.permanent)
            session.commit()
            log.warning("reply %s %s: %s", row.message_id, "refused permanently" if exc.permanent else "not sent yet", exc)
            return "failed" if exc.permanent else "retry"
        store.mark_reply_sent(row, self.edges.clock())
        session.commit()
        try:
            self.edges.source.save_sent(row.raw)
        except Exception as exc:  # a missing Sent copy must not undo a sent reply
            log.warning("reply %s sent, but its copy was not saved to Sent: %s", row.message_id, exc)
        return "sent"


def _mark_for(plan: Plan) -> Mark:
    if plan.outcome == Outcome.IGNORED:
        return Mark.IGNORED
    return Mark.PERSON if plan.needs_person else Mark.DONE
