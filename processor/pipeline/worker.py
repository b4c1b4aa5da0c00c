"""Runs the pipeline top to bottom: fetch -> parse -> classify -> decide -> record -> reply -> mark.

Network, database and clock are the edges handed in (`Edges`); everything in between is the
pure steps. The order of the last three is what makes "never twice, never lost" hold: a reply
is stored in the outbox in the same transaction as the request it answers, sent after the
commit (retried with backoff while the SMTP server refuses), and the message is marked in the
mailbox only once its reply was accepted. Requests are keyed by Message-ID, so a restart, a
reconnect or a copy of the message finds the stored request and never redoes it; `claims`
keep several workers off the same message and reply. A message that breaks a step is
recorded and flagged for a person; the worker itself never dies on one.

One pass, in one thread (only the SMTP loops run side by side, see `sending`): for each fetched
batch, its messages are prepared and recorded a group at a time, then the replies due are sent
and their copies saved to Sent; at the end of the pass the handled messages are marked.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from models import MailboxSync, Outcome, SendStatus
from processor.mail.imap import MailboxError
from processor.mail.mailbox import Mark, Position, RawMessage
from processor.pipeline import corrections
from processor.pipeline.backoff import Outage, retry_delay
from processor.pipeline.edges import Edges
from processor.pipeline.links import LinkImports
from processor.pipeline.prepare import Kind, Prepared, Rules, prepare
from processor.pipeline.recording import Handled, Item, Recorder
from processor.pipeline.sending import Sending
from processor.records import ledger, outbox, requests
from processor.records.errors import DatabaseUnavailable, database_needed, describe_database_error, unavailable

log = logging.getLogger(__name__)
RECONNECT_FIRST_DELAY = 1.0
RECONNECT_MAX_DELAY = 300.0
GROUP_SIZE = 80           # messages recorded in one transaction, with a few queries for the whole group
CONFLICT_ATTEMPTS = 3
MIN_WAIT = 2.0           # seconds: a reply due sooner is not worth a busier loop

_Step = Callable[[Session, list[Item]], list[Handled]]  # records a group in the session, commits, says what to mark


@dataclass
class RunStats:
    seen: int = 0
    requests: int = 0
    replies_sent: int = 0
    by_outcome: dict[str, int] = field(default_factory=dict)
    groups_failed: int = 0    # groups that could not be recorded together (then recorded one by one)
    replies_waiting: int = 0  # at the end of the run: replies still to send (a retry due later)
    send_problem: str = ""    # at the end of the run: why the SMTP server could not be reached, if it could not
    errors: int = 0           # unexpected exceptions, each logged with its traceback

    def add(self, handled: Handled) -> None:
        if handled.outcome:
            self.requests += 1
            self.by_outcome[handled.outcome] = self.by_outcome.get(handled.outcome, 0) + 1


class Worker:
    def __init__(self, edges: Edges) -> None:
        self.edges = edges
        self.config = edges.config
        publication = self.config.publication
        self.reply_from = edges.reply_from
        own_addresses = tuple({self.reply_from.lower(), publication.contact_email.lower()})
        self.rules = Rules(publication.allowed_hosts, own_addresses, self.reply_from, edges.source.name)
        self.recorder = Recorder(edges)
        self.links = LinkImports(edges)
        self.sending = Sending(edges)
        self._catalog_due: datetime | None = None  # the next poll of [catalog] feeds (None: at the first pass)

    def close(self) -> None:
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
                self.drain(total, stop)
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
                    total.errors += 1
                    log.exception("unexpected error; retrying in %.0f s", delay)
                self.edges.source.close()
                stop.wait(delay)
        try:
            with database_needed(), self.edges.sessions() as session:
                total.replies_waiting = outbox.waiting_count(session)
        except DatabaseUnavailable as exc:  # at the end of a run: the summary goes without that figure
            log.warning("could not count the replies still waiting: %s", exc)
        total.send_problem = self.sending.unreachable
        return total

    def _wait_seconds(self) -> float:
        with database_needed(), self.edges.sessions() as session:
            due = outbox.next_attempt_at(session)
        if self.sending.resume_at is not None:
            due = max(due, self.sending.resume_at) if due is not None else None
        wait = self.config.worker.poll_seconds
        if due is not None:
            wait = min(wait, (due - self.edges.clock()).total_seconds())
        return max(MIN_WAIT, wait)

    def drain(self, stats: RunStats, stop: threading.Event) -> None:
        """One pass: what was left due first (retries, a reply queued by an editor); then each fetched batch
        recorded a group at a time and its replies sent; then the marks, on the reading connection."""
        worker = self.config.worker
        handled: list[Handled] = []
        source = self.edges.source
        self.sending.recover_from_sent(source)
        self._poll_catalog()
        self.send_due(stats, stop)
        with database_needed(), self.edges.sessions() as session:
            position = ledger.load(session, source.name)
        after = Position(*position) if position is not None else None
        for batch in source.batches(worker.batch_size, worker.max_message_bytes, after):
            for start in range(0, len(batch), GROUP_SIZE):
                if stop.is_set():  # asked to stop: what is recorded already is still marked
                    break
                messages = batch[start:start + GROUP_SIZE]
                handled += self.handle_group(messages, [prepare(message, self.rules) for message in messages], stats)
            self.send_due(stats, stop)
            if stop.is_set():
                break
        finished = self._mark(handled)
        self._remember_position(finished)
        self._follow_desk()

    def _follow_desk(self) -> None:
        """The flags follow what editors decided since the last pass: a resolved request's message is
        unflagged and marked done, a reopened one flagged again."""
        source = self.edges.source
        with database_needed(), self.edges.sessions() as session:
            decisions = requests.desk_decisions(session, source.name)
        told: list[tuple[int, str]] = []
        for sync in (MailboxSync.RESOLVED, MailboxSync.REOPENED):
            chosen = [(request_id, message_id) for request_id, message_id, wanted in decisions if wanted == sync]
            if chosen and source.follow_desk([message_id for _, message_id in chosen],
                                             for_person=sync == MailboxSync.REOPENED) is not None:
                told += [(request_id, sync) for request_id, _ in chosen]
        if told:
            with database_needed(), self.edges.sessions() as session:
                requests.desk_decisions_told(session, told)
                session.commit()
            log.info("mailbox told of %d decision(s) taken at the desk", len(told))

    def _poll_catalog(self) -> None:
        """Every [catalog] poll_minutes: the feeds read (a conditional GET each), new stories imported, and
        outlets told of stories that changed (their notices are sent with the replies right after)."""
        now = self.edges.clock()
        if not self.config.catalog.feeds or (self._catalog_due is not None and now < self._catalog_due):
            return
        self._catalog_due = now + timedelta(minutes=self.config.catalog.poll_minutes)
        try:
            with database_needed():
                corrections.sync_catalog(self.edges.sessions, self.config, fetch=self.edges.fetch, now=now,
                                         new_message_id=self.edges.new_message_id)
        except DatabaseUnavailable:
            raise
        except Exception:  # a surprise from a feed must not stop the mail: logged, tried at the next poll
            log.exception("polling the catalog's feeds failed; trying again in %g minutes",
                          self.config.catalog.poll_minutes)

    def _remember_position(self, finished: list[str]) -> None:
        """Where this pass leaves the folder, so that the next one asks only for what is new (and for what
        it left waiting). Only downloads depend on it: requests are keyed by Message-ID."""
        seen = self.edges.source.position(finished)
        if seen is None:
            return
        position = ledger.Position(seen.uidvalidity, seen.next_uid, seen.waiting)
        for attempt in (1, 2):
            try:
                with database_needed(), self.edges.sessions() as session:
                    ledger.save(session, self.edges.source.name, position, frozenset(int(ref) for ref in finished),
                                self.edges.clock())
                    session.commit()
                return
            except IntegrityError:  # another worker wrote the folder's first row meanwhile: merge into it
                if attempt == 2:
                    raise

    def send_due(self, stats: RunStats, stop: threading.Event | None = None) -> None:
        """Send every stored reply whose time has come (until asked to stop), saving their Sent copies meanwhile."""
        stats.replies_sent += len(self.sending.send_due(stop, copies_to=self.edges.source))

    def _mark(self, handled: list[Handled]) -> list[str]:
        """Mark the messages whose work is finished, a command per kind of mark (UID sets); their refs. One
        whose reply waits for a retry is left as it is: the next pass finds it again."""
        with database_needed(), self.edges.sessions() as session:
            states = outbox.reply_states(session, [h.outbox_id for h in handled if h.outbox_id])
        by_mark: dict[Mark, list[str]] = {}
        for item in handled:
            mark = item.mark
            if item.outbox_id:
                status, needs_person = states.get(item.outbox_id, (SendStatus.PENDING, False))
                mark = _mark_after_reply(status, needs_person)
            if mark is not None:
                by_mark.setdefault(mark, []).append(item.ref)
        for mark, refs in by_mark.items():
            self.edges.source.mark(refs, mark)
        return [ref for refs in by_mark.values() for ref in refs]

    # -- groups of messages -------------------------------------------------
    def handle_group(self, messages: list[RawMessage], prepared: list[Prepared], stats: RunStats) -> list[Handled]:
        by_kind: dict[Kind, list[Item]] = {}
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
            results += self._claimed([(message, ready)],
                                     lambda items, reason=reason: [self._park(items[0][0], reason, key=items[0][1].key)])
        reports = by_kind.pop(Kind.REPORT, [])
        if reports:
            results += self._claimed(reports, lambda mine: self._recorded(mine, self.recorder.reports, stats))
        asked = by_kind.pop(Kind.REQUEST, [])
        if asked:
            results += self._claimed(asked, lambda mine: self._recorded(
                mine, self._requests_step(mine, stats), stats))
        for item in results:
            stats.add(item)
        return results

    def _requests_step(self, items: list[Item], stats: RunStats) -> _Step:
        """Import the unknown links first, outside the group's transaction and once for the group, however
        often the group is then tried."""
        try:
            imported = self.links.import_unknown([ready for _, ready in items])
        except DatabaseUnavailable:
            raise
        except Exception:  # the requests are still recorded: a story not imported goes to a person
            stats.errors += 1
            log.exception("the links of %d messages could not be imported", len(items))
            imported = {}
        return lambda session, group: self.recorder.requests(session, group, imported)

    def _claimed(self, items: list[Item], work: Callable[[list[Item]], list[Handled]]) -> list[Handled]:
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

    def _recorded(self, items: list[Item], step: _Step, stats: RunStats) -> list[Handled]:
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
                    stats.groups_failed += 1
                    level = logging.WARNING if isinstance(exc, IntegrityError) else logging.ERROR
                    log.log(level, "a group of %d messages could not be recorded together (%s); recording them "
                            "one by one", len(first), describe_database_error(exc), exc_info=True)
            results += [self._guarded(item, step, stats) for item in first]
        return results

    def _guarded(self, item: Item, step: _Step, stats: RunStats) -> Handled:
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
                stats.errors += 1
                log.exception("message %s could not be handled", message.ref)
                return self._park(message, f"internal error while handling: {type(exc).__name__}: {exc}",
                                  key=ready.key)
        raise AssertionError("unreachable")

    def _park(self, message: RawMessage, reason: str, *, key: str) -> Handled:
        """Keep the message for a person, with the reason logged and recorded; never drop it."""
        log.warning("message %s needs a person: %s", message.ref, reason)
        try:
            with self.edges.sessions() as session:
                if requests.find_request(session, key) is None:
                    requests.record_unreadable(session, message_key=key, mailbox=self.edges.source.name,
                                               size=message.size, reason=reason, now=self.edges.clock())
                    session.commit()
        except SQLAlchemyError as exc:
            if unavailable(exc):
                raise DatabaseUnavailable("database unavailable: " + describe_database_error(exc)) from None
            log.exception("could not record message %s; it stays in the mailbox for the next run", message.ref)
            return Handled(message.ref, None)
        return Handled(message.ref, Mark.PERSON, outcome=str(Outcome.NEEDS_PERSON))


def _mark_after_reply(status: str, needs_person: bool) -> Mark | None:
    if status in (SendStatus.PENDING, SendStatus.SENDING, SendStatus.HANDED_OVER):
        return None
    if status == SendStatus.SENT and not needs_person:
        return Mark.DONE
    return Mark.PERSON
