"""Sending stored replies: per SMTP connection, one loop of claim -> send -> record.

A reply is claimed (its claim taken, committed "sending") only when its own SMTP transaction is
about to start, and what the server said is committed as soon as it has said it. So a worker that
dies leaves at most one reply per SMTP connection in doubt; the next worker finds it "sending" and
hands it to a person rather than resending blindly (see `records.outbox`).

`[worker] smtp_connections` loops run side by side, each a plain thread with a connection of its
own: SMTP has no pipelining across messages, so with a distant server parallel connections are
what keeps replies flowing. They share the claims (one database connection) and the choice of the
next reply under one lock; the SMTP transactions run in parallel.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models import SendStatus
from processor.mail.imap import MailboxError
from processor.mail.smtp import SendError
from processor.pipeline.backoff import Outage, retry_delay
from processor.pipeline.edges import Edges
from processor.records import outbox
from processor.records.errors import database_needed

log = logging.getLogger(__name__)
DUE_PAGE = 20        # due replies looked at per query, to claim the first one free
COPIES_PER_APPEND = 50  # Sent copies saved in one command (MULTIAPPEND where the server has it)


@dataclass(frozen=True)
class SentReply:
    message_id: str
    raw: bytes


@dataclass
class _Pass:
    """One call of `send_due`: what its loops share."""

    stop: threading.Event
    only: set[int] | None
    passed: set[int] = field(default_factory=set)   # looked at and not ours to send now
    due: list[int] = field(default_factory=list)     # due replies found by the last look, next first
    sent: list[SentReply] = field(default_factory=list)
    error: BaseException | None = None               # the first loop that failed ends the others too
    reported: bool = False


class Sending:
    def __init__(self, edges: Edges, outage: Outage | None = None) -> None:
        self.edges = edges
        self.worker = edges.config.worker
        self.outage = outage or Outage("SMTP server", log)
        # Replies the server accepted whose "sent" could not be committed (the database went away):
        # the next attempt records them as sent instead of flagging them as maybe delivered.
        self.accepted: dict[int, datetime] = {}
        self.resume_at: datetime | None = None      # the server could not be reached: not before then
        self._lock = threading.Lock()
        self._in_flight: set[int] = set()

    def send_due(self, stop: threading.Event | None = None, *, only: list[int] | None = None) -> list[SentReply]:
        """Send the replies that are due (or only those of `only` that are), until none is left or `stop`
        is set; the replies the server accepted."""
        if only is None and self.resume_at is not None and self.edges.clock() < self.resume_at:
            return []
        run = _Pass(stop or threading.Event(), set(only) if only is not None else None)
        loops = min(self.worker.smtp_connections, len(only) if only is not None else self.worker.smtp_connections)
        if loops <= 1:
            self._loop(run)
        else:
            threads = [threading.Thread(target=self._loop, args=(run,), name=f"smtp-{number}")
                       for number in range(loops)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if run.sent:
            self.outage.recovered()
        if run.error is not None:
            raise run.error
        return run.sent

    def _loop(self, run: _Pass) -> None:
        context = connection = None
        try:
            while not run.stop.is_set() and run.error is None:
                claimed = self._claim_next(run)
                if claimed is None:
                    return
                error: SendError | None = None
                unreachable = False
                if connection is None:
                    try:
                        context = self.edges.sender.connect()
                        connection = context.__enter__()
                    except SendError as exc:  # nothing was handed over: a retry is safe
                        context, error, unreachable = None, exc, True
                if not unreachable:
                    try:
                        connection.send(claimed.raw, self.edges.reply_from, claimed.recipient)
                    except SendError as exc:
                        error = exc
                        if not exc.permanent:  # a 4xx or a dropped connection: the next reply on a fresh one
                            _close(context)
                            context = connection = None
                self._record(run, claimed, error, unreachable=unreachable)
                if unreachable:
                    return  # the server is away: do not hammer it with the other replies of this pass
        except BaseException as exc:
            run.error = run.error or exc
        finally:
            _close(context)

    def _claim_next(self, run: _Pass) -> outbox.Claimed | None:
        """Claim the next reply to send and commit it "sending"; settle on the way the ones that must not be
        sent (left "sending" by a worker that stopped, or past retrying)."""
        give_up = timedelta(hours=self.worker.retry_give_up_hours)
        with self._lock:
            while True:
                with database_needed(), self.edges.sessions() as session:
                    if run.only is not None:
                        run.due = sorted(run.only - run.passed - self._in_flight)
                    elif not run.due:
                        run.due = outbox.replies_due(session, self.edges.clock(), DUE_PAGE,
                                                     exclude=run.passed | self._in_flight)
                    if not run.due:
                        return None
                    while run.due:
                        outbox_id = run.due.pop(0)
                        if outbox_id in self._in_flight:
                            continue
                        name = f"outbox:{outbox_id}"
                        taken = self.edges.claims.take(name)
                        if run.only is not None or not taken:
                            run.passed.add(outbox_id)  # looked at once (a reply sent is due no more)
                        if not taken:
                            continue  # another worker's to send
                        try:
                            result = outbox.start_sending(session, outbox_id, now=self.edges.clock(),
                                                          give_up_after=give_up,
                                                          accepted_at=self.accepted.get(outbox_id))
                            session.commit()
                        except BaseException:
                            self._release([name])
                            raise
                        if isinstance(result, outbox.Claimed):
                            self._in_flight.add(outbox_id)
                            return result
                        self._release([name])
                        run.passed.add(outbox_id)
                        self.accepted.pop(outbox_id, None)
                        if isinstance(result, outbox.Settled):
                            log.warning("reply %s: %s", result.message_id, result.reason)

    def _record(self, run: _Pass, claimed: outbox.Claimed, error: SendError | None, *, unreachable: bool) -> None:
        """Commit what the server said, then give the claim back."""
        now = self.edges.clock()
        try:
            if error is None:
                self.accepted[claimed.id] = now
            with database_needed(), self.edges.sessions() as session:
                if error is None:
                    outbox.record_sent(session, {claimed.id: now})
                else:
                    delay = self._failed(session, run, claimed, error, now, unreachable=unreachable)
                session.commit()
            if error is None:
                self.accepted.pop(claimed.id, None)
                with self._lock:
                    run.sent.append(SentReply(claimed.message_id, claimed.raw))
            elif unreachable:
                self.resume_at = now + timedelta(seconds=delay)
        finally:
            with self._lock:
                self._in_flight.discard(claimed.id)
                self._release([f"outbox:{claimed.id}"])

    def _failed(self, session, run: _Pass, claimed: outbox.Claimed, error: SendError, now: datetime, *,
                unreachable: bool) -> float:
        """Record a reply the server did not accept; the retry delay it was given."""
        if error.uncertain:  # like a crash mid-transaction: never resent blindly
            outbox.record_not_sent(session, claimed.id, f"{error}: the reply may or may not have reached "
                                   f"{claimed.recipient}; check the Sent folder before answering by hand",
                                   status=SendStatus.UNKNOWN)
            log.warning("reply %s: %s; flagged for a person", claimed.message_id, error)
            return 0.0
        if error.permanent:
            outbox.record_not_sent(session, claimed.id, f"reply refused by the mail server: {error}",
                                   status=SendStatus.FAILED)
            log.warning("reply %s refused permanently: %s", claimed.message_id, error)
            return 0.0
        delay = retry_delay(claimed.attempts, self.worker.retry_first_seconds, self.worker.retry_max_seconds,
                            self.edges.rand)
        outbox.record_not_sent(session, claimed.id, str(error), status=SendStatus.PENDING,
                               next_attempt_at=now + timedelta(seconds=delay))
        if not unreachable:
            log.warning("reply %s not accepted yet (%s); retrying in %.0f s", claimed.message_id, error, delay)
        elif not run.reported:  # one outage per pass, however many connections find it
            run.reported = True
            self.outage.failed(str(error), delay)
        return delay

    def _release(self, names: list[str]) -> None:
        try:
            with database_needed():
                self.edges.claims.release_all(names)
        except Exception as exc:  # logged, not raised: a claims connection that broke has released them
            log.warning("could not give back claims %s (%s: %s); a broken claims connection has released them",
                        ", ".join(names), type(exc).__name__, exc)


def save_copies(source, sent: list[SentReply]) -> None:
    """Keep copies of the sent replies in the mailbox's Sent folder. A copy that cannot be saved is logged,
    naming the replies: they were sent all the same."""
    for start in range(0, len(sent), COPIES_PER_APPEND):
        part = sent[start:start + COPIES_PER_APPEND]
        try:
            source.save_sent([reply.raw for reply in part])
        except MailboxError as exc:
            log.warning("replies %s sent, but their copies were not saved to Sent: %s",
                        ", ".join(reply.message_id for reply in part), exc)


def _close(context) -> None:
    if context is not None:
        context.__exit__(None, None, None)

