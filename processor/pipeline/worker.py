"""Runs the pipeline top to bottom: fetch -> parse -> classify -> decide -> record -> reply -> mark.

Network, database and clock are the edges handed in (`Edges`); everything in between is the
pure steps. The order of the last three is what makes "never twice, never lost" hold: a reply
is stored in the outbox in the same transaction as the request it answers, sent after the
commit (retried with backoff while the SMTP server refuses), and the message is marked in the
mailbox only once its reply was accepted. Requests are keyed by Message-ID, so a restart, a
reconnect or a copy of the message finds the stored request and never redoes it; `claims`
keep several workers off the same message and reply. A message that breaks a step is
recorded and flagged for a person; the worker itself never dies on one.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from email.utils import make_msgid

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from models import Decision, Outcome, Outlet, Request, SendStatus
from processor.catalog import stories as catalog
from processor.records import store
from processor.pipeline.authres import sender_check
from processor.pipeline.backoff import Outage, retry_delay
from processor.records.claims import Claims
from processor.pipeline.classify import StoryRefs, live_copy_links, outlet_key
from processor.config import Config
from processor.pipeline.decide import Facts, Plan, decide, decide_report
from processor.records.errors import DatabaseUnavailable, database_needed, describe_database_error, unavailable
from processor.catalog.fetch import FetchError, FetchedPage
from processor.mail.imap import MailboxError
from processor.mail.mailbox import MailSource, Mark, RawMessage
from processor.pipeline.parse import Inbound
from processor.pipeline.prepare import Kind, Prepared, Preparer, Rules
from processor.pipeline.reply import ReplyContext, build_reply, reply_address
from processor.pipeline.snippet import build_snippet
from processor.pipeline.sending import Outgoing
from processor.mail.smtp import Sender
from processor.urls import url_key

log = logging.getLogger(__name__)
MAX_FETCHES_PER_MESSAGE = 5
MAX_STORIES_BY_TITLE = 5
RECONNECT_FIRST_DELAY = 1.0
RECONNECT_MAX_DELAY = 300.0
GROUP_SIZE = 80           # messages recorded in one transaction, with a few queries for the whole group
GROUPS_AHEAD = 4          # groups being prepared while one is recorded (bounds the memory they hold)
CONFLICT_ATTEMPTS = 3
MARK_EVERY = 2000         # messages handled between marks in the mailbox (each mark a round trip per kind)
MIN_WAIT = 2.0           # seconds: a reply due sooner is not worth a busier loop


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
    claims: Claims
    # Where copies of sent replies go (a Sent folder): its own connection, used by a thread of its own.
    archive: MailSource | None = None
    clock: Callable[[], datetime] = utc_now
    new_token: Callable[[], str] = lambda: secrets.token_urlsafe(16)
    new_message_id: Callable[[str], str] = lambda domain: make_msgid(domain=domain).strip("<>")
    rand: Callable[[], float] = random.random


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


_Item = tuple[RawMessage, Prepared]
_Step = Callable[[Session, list[_Item]], list[Handled]]  # records a group in the session, commits, says what to mark


@dataclass
class _Group:
    """Messages of one fetched batch, handled together; `last` closes the batch (send, then mark)."""

    messages: list[RawMessage]
    prepared: Callable[[], list[Prepared]]
    handled: list[Handled]
    last: bool


@dataclass
class _GroupFacts:
    stories: dict[str, tuple[tuple, tuple[str, ...]]]   # {message key: (stories named, own links not found)}
    outlets: dict[str, Outlet]
    recipients: dict[str, str | None]                  # {message key: where its reply would go}
    pickups: dict[tuple[int, int], store.PickupState]
    replies_today: dict[str, int]


class Worker:
    def __init__(self, edges: Edges) -> None:
        self.edges = edges
        self.config = edges.config
        publication = self.config.publication
        self.reply_from = self.config.smtp.from_address if self.config.smtp else publication.contact_email
        self.own_addresses = tuple({self.reply_from.lower(), publication.contact_email.lower()})
        self.preparer = Preparer(Rules(publication.allowed_hosts, self.own_addresses, self.reply_from,
                                       edges.source.name), self.config.worker.prepare_processes)
        self._smtp = Outage("SMTP server", log)
        self._accepted: dict[int, datetime] = {}  # replies the SMTP server took but the database has not recorded yet
        self._unmarked: list[Handled] = []        # handled messages whose reply is still on its way
        self._recorded_replies: list[tuple[int, bytes, str]] = []  # committed since the last hand-over to sending

    def close(self) -> None:
        self.preparer.close()
        if self.edges.archive is not None:
            self.edges.archive.close()
        self.edges.source.close()
        self.edges.claims.close()

    # -- the loop ---------------------------------------------------------
    def run(self, *, once: bool, stop: threading.Event | None = None) -> RunStats:
        """Handle everything waiting; unless `once`, then wait for more until `stop` is set."""
        stop = stop or threading.Event()
        total = RunStats()
        outages = {MailboxError: Outage("mailbox", log), DatabaseUnavailable: Outage("database", log)}
        failures = 0
        while not stop.is_set():
            try:
                with self._outgoing(total) as outgoing:
                    outgoing.pump(stop, finish=True)  # what was left due (retries, a reply queued by an editor)
                    self.drain(total, stop, outgoing)
                for outage in outages.values():
                    outage.recovered()
                failures = 0
                if once:
                    break
                self.edges.source.wait(self._wait_seconds(), stop)
            except Exception as exc:
                if once:
                    raise
                # Nothing was marked that was not done and every reply is in the outbox, so
                # reconnecting and searching again loses and repeats nothing.
                failures += 1
                delay = retry_delay(failures, RECONNECT_FIRST_DELAY, RECONNECT_MAX_DELAY, self.edges.rand)
                if isinstance(exc, (MailboxError, DatabaseUnavailable)):
                    outages[type(exc)].failed(str(exc), delay)
                else:  # a bug or a surprise from a library: the worker still must not die of it
                    log.exception("unexpected error; retrying in %.0f s", delay)
                self.edges.source.close()
                stop.wait(delay)
        return total

    def _mark_ready(self, *, final: bool) -> None:
        """Mark the messages whose work is finished. One whose reply is on its way waits for a later call;
        at the `final` call, one whose reply waits for a retry is left as it is (found again next round)."""
        results, self._unmarked = self._unmarked, []
        with database_needed(), self.edges.sessions() as session:
            states = store.reply_states(session, [h.outbox_id for h in results if h.outbox_id])
        by_mark: dict[Mark, list[str]] = {}
        for handled in results:
            mark = handled.mark
            if handled.outbox_id:
                status, needs_person = states.get(handled.outbox_id, (SendStatus.PENDING, False))
                mark = _mark_after_reply(status, needs_person)
                if mark is None and not final:
                    self._unmarked.append(handled)
            if mark is not None:
                by_mark.setdefault(mark, []).append(handled.ref)
        for mark, refs in by_mark.items():
            self.edges.source.mark(refs, mark)
        if final:
            self.edges.source.marked()

    def _wait_seconds(self) -> float:
        with database_needed(), self.edges.sessions() as session:
            due = store.next_attempt_at(session)
        wait = self.config.worker.poll_seconds
        if due is not None:
            wait = min(wait, (due - self.edges.clock()).total_seconds())
        return max(MIN_WAIT, wait)

    # -- groups of messages -------------------------------------------------
    def send_due(self, stats: RunStats, stop: threading.Event | None = None) -> None:
        """Send every stored reply whose time has come (until asked to stop)."""
        with self._outgoing(stats) as outgoing:
            outgoing.pump(stop, finish=True)

    def _outgoing(self, stats: RunStats) -> Outgoing:
        return Outgoing(self.edges, reply_from=self.reply_from, accepted=self._accepted, outage=self._smtp, stats=stats)

    def drain(self, stats: RunStats, stop: threading.Event, outgoing: Outgoing) -> None:
        """Handle everything waiting, a fetched batch at a time, in groups: while one group is recorded,
        the next ones are being prepared (parsed and classified) by the helper process, and the replies
        recorded so far are being sent."""
        worker = self.config.worker
        waiting: deque[_Group] = deque()
        self._unmarked = []
        self._recorded_replies = []  # an aborted pass may have left some: they are due in the outbox anyway
        for batch in self.edges.source.batches(worker.batch_size, worker.max_message_bytes):
            handled: list[Handled] = []
            groups = [batch[start:start + GROUP_SIZE] for start in range(0, len(batch), GROUP_SIZE)]
            for index, messages in enumerate(groups):
                waiting.append(_Group(messages, self.preparer.start(messages), handled, last=index == len(groups) - 1))
                while len(waiting) > GROUPS_AHEAD:
                    self._finish(waiting.popleft(), stats, stop, outgoing)
            if stop.is_set():
                break
        while waiting:
            self._finish(waiting.popleft(), stats, stop, outgoing)
        outgoing.pump(stop, finish=True)
        self._mark_ready(final=True)

    def _finish(self, group: _Group, stats: RunStats, stop: threading.Event, outgoing: Outgoing) -> None:
        if stop.is_set():  # asked to stop: what is recorded already is still sent and marked
            outgoing.pump(stop, finish=False)
        else:
            prepared = group.prepared()
            # While replies are on their way, a group is recorded in halves: the connections that
            # finished their round are given the next one sooner (rounds start only between transactions).
            size = GROUP_SIZE // 2 if outgoing.rounds else GROUP_SIZE
            for start in range(0, len(prepared), size):
                group.handled += self.handle_group(group.messages[start:start + size], prepared[start:start + size],
                                                   stats)
                outgoing.add_recorded(self._recorded_replies)
                self._recorded_replies = []
                outgoing.pump(stop, finish=False)  # start sending what was just recorded; settle what came back
        if group.last:  # a whole fetched batch is recorded: mark what is finished every few batches
            self._unmarked += group.handled
            if len(self._unmarked) >= MARK_EVERY:
                self._mark_ready(final=False)

    def handle_group(self, messages: list[RawMessage], prepared: list[Prepared], stats: RunStats) -> list[Handled]:
        by_kind: dict[Kind, list[_Item]] = {}
        for message, ready in zip(messages, prepared):
            stats.seen += 1
            by_kind.setdefault(ready.kind, []).append((message, ready))
        results = []
        for message, _ in by_kind.pop(Kind.OTHER, []):
            self.edges.source.skip(message.ref)
            results.append(Handled(message.ref, None))
        for message, ready in by_kind.pop(Kind.OVERSIZED, []) + by_kind.pop(Kind.UNREADABLE, []):
            reason = ready.error or (f"message of {message.size} bytes is over the "
                                     f"{self.config.worker.max_message_bytes}-byte limit: not downloaded")
            results += self._claimed([(message, ready)], lambda items: [self._park(items[0][0], reason, key=ready.key)])
        steps = {Kind.REQUEST: self._record_requests, Kind.REPORT: self._record_reports}
        for kind, items in by_kind.items():
            results += self._claimed(items, lambda mine: self._recorded(mine, steps[kind]))
        for handled in results:
            stats.add(handled)
        return results

    def _claimed(self, items: list[_Item], work: Callable[[list[_Item]], list[Handled]]) -> list[Handled]:
        """Run `work` on the items no other worker is on right now; the others are left for later."""
        names = {id(ready): "request:" + ready.key for _, ready in items}
        with database_needed():
            taken = self.edges.claims.take_all(list(names.values()))
        mine = [(message, ready) for message, ready in items if names[id(ready)] in taken]
        results = []
        for message, ready in items:
            if names[id(ready)] not in taken:
                log.info("message %s is being handled by another worker", message.ref)
                results.append(Handled(message.ref, None))
        try:
            return results + (work(mine) if mine else [])
        finally:
            with database_needed():
                self.edges.claims.release_all(list(taken))

    def _recorded(self, items: list[_Item], step: _Step) -> list[Handled]:
        """Record a group in one transaction. Copies of one message go in a later transaction (they find
        the first one recorded); if the group fails as a whole, its messages are recorded one by one."""
        results = []
        while items:
            first, later, keys = [], [], set()
            for item in items:
                (later if item[1].key in keys else first).append(item)
                keys.add(item[1].key)
            items = later
            if len(first) > 1:
                try:
                    with database_needed(), self.edges.sessions() as session:
                        results += step(session, first)
                    continue
                except DatabaseUnavailable:
                    raise
                except Exception as exc:  # a conflict with another worker, or one message the steps choke on
                    log.info("a group of %d messages could not be recorded together (%s); recording them one "
                             "by one", len(first), describe_database_error(exc))
            results += [self._guarded(item, step) for item in first]
        return results

    def _guarded(self, item: _Item, step: _Step) -> Handled:
        message, ready = item
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                with self.edges.sessions() as session:
                    return step(session, [item])[0]
            except IntegrityError as exc:
                # Another worker inserted the same request, outlet, pickup or story between our look
                # and our insert. Theirs stands; looking again in a fresh transaction finds it.
                log.info("message %s: concurrent insert (%s); trying again", message.ref, describe_database_error(exc))
                if attempt == CONFLICT_ATTEMPTS:
                    return self._park(message, "could not record the request: " + describe_database_error(exc),
                                      key=ready.key)
            except Exception as exc:  # the worker never dies on a message: park it for a person instead
                if isinstance(exc, SQLAlchemyError) and unavailable(exc):
                    raise DatabaseUnavailable("database unavailable: " + describe_database_error(exc)) from None
                log.exception("message %s could not be handled", message.ref)
                return self._park(message, f"internal error while handling: {type(exc).__name__}: {exc}",
                                  key=ready.key)
        raise AssertionError("unreachable")

    def _unseen(self, session: Session, items: list[_Item]) -> tuple[list[_Item], list[Handled]]:
        """The items not recorded before, and what is left to do for the others (never redone)."""
        keys = [key for _, ready in items for key in (ready.inbound.message_key, ready.inbound.digest_key)]
        existing = store.requests_by_keys(session, keys)
        fresh, done = [], []
        for message, ready in items:
            inbound = ready.inbound
            request = existing.get(inbound.message_key)
            if request is not None and request.content_digest not in ("", inbound.content_digest):
                # A different message reusing a Message-ID: it is a request of its own.
                ready = replace(ready, inbound=replace(inbound, message_key=inbound.digest_key))
                request = existing.get(inbound.digest_key)
            if request is None:
                fresh.append((message, ready))
            else:
                done.append(self._already_handled(message, request))
        return fresh, done

    def _record_requests(self, session: Session, items: list[_Item]) -> list[Handled]:
        now = self.edges.clock()
        fresh, results = self._unseen(session, items)
        facts = self._group_facts(session, fresh, now)
        rows = store.NewRows(facts.pickups)
        recorded = [(message, ready, *self._record_request(rows, ready, facts, now)) for message, ready in fresh]
        rows.write(session)
        for _, ready, _, pickups, _ in recorded:
            self._record_live_copy(session, ready.inbound, pickups, now)
        session.commit()
        self._recorded_replies += [(reply.id, reply.raw, reply.values["recipients"])
                                   for _, _, _, _, reply in recorded if reply is not None]
        for message, ready, plan, _, reply in recorded:
            log.info("request %s from %r: %s (%s)", message.ref, ready.inbound.from_address, plan.outcome, plan.reason)
            results.append(Handled(message.ref, _mark_for(plan), reply.id if reply else None, str(plan.outcome)))
        return results

    def _group_facts(self, session: Session, items: list[_Item], now: datetime) -> _GroupFacts:
        """What deciding on a group of requests needs from the database, in a few queries for the group."""
        answerable = [ready for _, ready in items if not ready.automated]
        named = catalog.stories_named(session, [key for ready in answerable for key in ready.refs.own_keys],
                                      [key for ready in answerable for key in ready.refs.title_keys])
        stories = {ready.key: self._stories(session, ready.refs, named, now) for ready in answerable}
        senders: dict[str, str] = {}
        for ready in answerable:
            if ready.inbound.from_address:
                senders.setdefault(outlet_key(ready.inbound.from_address), ready.inbound.from_name)
        outlets = store.outlets_for(session, senders, now) if senders else {}
        pairs = [(outlets[outlet_key(ready.inbound.from_address)].id, story.id) for ready in answerable
                 if ready.inbound.from_address for story in stories[ready.key][0]]
        recipients = {ready.key: reply_address(ready.inbound) for _, ready in items}
        wanted = {address for address in recipients.values() if address}
        return _GroupFacts(
            stories=stories,
            outlets=outlets,
            recipients=recipients,
            pickups=store.pickups_for(session, pairs) if pairs else {},
            replies_today=store.replies_to_recipients_since(session, wanted, now - timedelta(days=1)) if wanted else {},
        )

    def _record_request(self, rows: store.NewRows, ready: Prepared, facts: _GroupFacts,
                        now: datetime) -> tuple[Plan, dict[int, store.PickupState], store.ReplyRow | None]:
        publication = self.config.publication
        worker = self.config.worker
        inbound = ready.inbound
        stories, unmatched = facts.stories.get(ready.key, ((), ()))
        recipient = facts.recipients[ready.key]
        outlet = facts.outlets.get(outlet_key(inbound.from_address)) if inbound.from_address else None
        plan = decide(Facts(
            automated=ready.automated,
            sent_at=inbound.date,
            stories=stories,
            unmatched_links=unmatched,
            question=ready.question,
            recipient=recipient,
            now=now,
            max_age=timedelta(days=worker.max_age_days),
            unauthenticated=(sender_check(inbound.headers, worker.authserv_id, inbound.from_address)
                             if worker.require_authenticated_sender else None),
            replies_to_recipient_today=facts.replies_today.get(recipient, 0) if recipient else 0,
            max_replies_per_day=worker.max_replies_per_sender_per_day,
            max_stories=worker.max_stories_per_request,
            blocked=(f"outlet {outlet.key} is blocked: {outlet.blocked_reason or 'no reason given'}"
                     if outlet is not None and outlet.blocked else None),
        ))
        request = rows.add_request(store.request_values(inbound, plan, outlet_id=outlet.id if outlet else None,
                                                        mailbox=self.edges.source.name, now=now))
        pickups = (rows.add_pickups(request, outlet.id, plan, when=inbound.date or now, new_token=self.edges.new_token)
                   if outlet else {})
        if not plan.reply:
            return plan, pickups, None
        facts.replies_today[recipient] = facts.replies_today.get(recipient, 0) + 1
        snippets = {
            d.story.id: build_snippet(d.story, publication, outlet_id=outlet.id, token=pickups[d.story.id].token)
            for d in plan.stories if d.decision == Decision.GRANTED
        }
        message_id = self.edges.new_message_id(self.reply_from.rsplit("@", 1)[-1])
        reply = build_reply(plan, inbound, snippets, ReplyContext(publication, self.reply_from, message_id, now))
        return plan, pickups, rows.add_reply(request, raw=reply, message_id=message_id,
                                             recipient=recipient, now=now)

    def _record_live_copy(self, session: Session, inbound: Inbound, pickups: dict[int, store.PickupState],
                          now: datetime) -> None:
        """With one story named, a link to the outlet's own site is where it went live."""
        if len(pickups) != 1:
            return
        (story_id, pickup), = pickups.items()
        outlet = session.get(Outlet, pickup.outlet_id)
        for link in live_copy_links(inbound, outlet.key, self.config.publication.allowed_hosts):
            store.record_live_copy(session, story_id=story_id, url=link, source="email", now=now, pickup_id=pickup.id)

    def _record_reports(self, session: Session, items: list[_Item]) -> list[Handled]:
        """Bounces and delay notices: one that returns one of our replies means that reply failed; a person is told."""
        fresh, results = self._unseen(session, items)
        rows = store.NewRows({})
        reports = []
        for message, ready in fresh:
            inbound = ready.inbound
            outbox = store.outbox_by_message_ids(session, (*inbound.embedded_message_ids, inbound.in_reply_to,
                                                           *inbound.references))
            if outbox is None:
                self.edges.source.skip(message.ref)  # someone else's bounce: not ours to touch
                results.append(Handled(message.ref, None))
                continue
            plan = decide_report(outbox.message_id, outbox.recipients, inbound.report_diagnostic)
            rows.add_request(store.request_values(inbound, plan, outlet_id=None, mailbox=self.edges.source.name,
                                                  now=self.edges.clock()))
            if plan.needs_person and outbox.status == SendStatus.SENT:
                store.mark_reply_failed(outbox, f"the reply bounced: {inbound.report_diagnostic or 'no diagnostic given'}",
                                        status=SendStatus.BOUNCED)
            reports.append((message, plan))
        rows.write(session)
        session.commit()
        for message, plan in reports:
            log.warning("message %s: %s", message.ref, plan.reason)
            results.append(Handled(message.ref, _mark_for(plan), outcome=str(plan.outcome)))
        return results

    def _already_handled(self, message: RawMessage, request: Request) -> Handled:
        """Seen before (a restart, a copy in another folder): finish what is left, never redo it."""
        if request.outbox is not None:
            return Handled(message.ref, None, request.outbox.id)  # marked once its reply is sent
        log.info("message %s was already handled as request %s (%s)", message.ref, request.id, request.outcome)
        if request.needs_person:
            return Handled(message.ref, Mark.PERSON)
        return Handled(message.ref, Mark.IGNORED if request.outcome == Outcome.IGNORED else Mark.DONE)

    def _stories(self, session: Session, refs: StoryRefs, named: catalog.Named,
                 now: datetime) -> tuple[tuple, tuple[str, ...]]:
        found, by_title = named.for_refs(refs.own_keys, refs.title_keys)
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
        for story in by_title[:MAX_STORIES_BY_TITLE]:
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
        except SQLAlchemyError as exc:
            if unavailable(exc):
                raise DatabaseUnavailable("database unavailable: " + describe_database_error(exc)) from None
            log.exception("could not record message %s; it stays in the mailbox for the next run", message.ref)
            return Handled(message.ref, None)
        return Handled(message.ref, Mark.PERSON, outcome=str(Outcome.NEEDS_PERSON))


def _mark_for(plan: Plan) -> Mark:
    if plan.needs_person:
        return Mark.PERSON
    return Mark.IGNORED if plan.outcome == Outcome.IGNORED else Mark.DONE


def _mark_after_reply(status: str, needs_person: bool) -> Mark | None:
    if status in (SendStatus.PENDING, SendStatus.SENDING):
        return None
    if status == SendStatus.SENT and not needs_person:
        return Mark.DONE
    return Mark.PERSON

