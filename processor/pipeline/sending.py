"""Sending stored replies: per SMTP connection, one loop of claim -> send -> record.

A reply is claimed (its claim taken, committed "sending") only when its own SMTP transaction is
about to start, marked "handed_over" (committed) once all of it is with the server and just before
the final "." that makes the server keep it, and what the server said is committed as soon as it has
said it. So a worker that dies leaves in doubt at most one reply per SMTP connection, one whose "."
was on its way: the next worker looks for it in the Sent folder, else hands it to a person rather
than resending blindly; a reply left "sending" never reached the server and is simply sent (see
`records.outbox`).

Between two SMTP transactions a loop hands over how its reply went and gets its next reply, both in
one transaction: what the server said and the next claim are committed together. `[worker]
smtp_connections` loops run side by side, each a plain thread with a connection of its own: SMTP has
no pipelining across messages, so with a distant server parallel connections are what keeps replies
flowing. Their database work runs one transaction at a time, and the hand-overs that come in while
one is being committed go together in the next (a group commit): each loop still has at most one
reply in flight, and the SMTP transactions run in parallel.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from models import SendStatus
from processor.mail.imap import MailboxError
from processor.mail.mailbox import MailSource
from processor.mail.smtp import SendError
from processor.pipeline.backoff import Outage, retry_delay
from processor.pipeline.edges import Edges
from processor.records import outbox
from processor.records.errors import database_needed

log = logging.getLogger(__name__)
DUE_PAGE = 50        # due replies looked up per query; each is claimed when a connection is free for it
COPIES_PER_APPEND = 50  # Sent copies saved in one command (MULTIAPPEND where the server has it)


@dataclass(frozen=True)
class SentReply:
    message_id: str
    raw: bytes


@dataclass(eq=False)
class _HandOver:
    """What a loop hands over between two SMTP transactions: the reply it carried and how that went, and
    whether it wants another; answered with the next reply (None: nothing left) or the failure."""

    carried: outbox.Claimed | None = None
    error: SendError | None = None
    accepted_at: datetime | None = None
    unreachable: bool = False          # the connection could not be opened: nothing was handed over
    wants_next: bool = True
    done: bool = False
    next: outbox.Claimed | None = None
    failure: BaseException | None = None


@dataclass
class _Pass:
    """One call of `send_due`: what its loops share."""

    stop: threading.Event
    only: set[int] | None
    passed: set[int] = field(default_factory=set)   # looked at and not ours to send now
    due: list[int] = field(default_factory=list)     # due replies found by the last look, next first
    waiting: list[_HandOver] = field(default_factory=list)  # hand-overs for the next transaction
    sent: list[SentReply] = field(default_factory=list)
    copied: int = 0                                  # of `sent`, the ones whose Sent copies are saved
    loops: int = 0                                   # loops still running
    progress: threading.Condition = field(default_factory=threading.Condition)  # more sent, or a loop ended
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
        self.unreachable = ""                        # why, while it cannot be
        self._lock = threading.Lock()               # one transaction at a time; the claims and what is in flight
        self._waiting_lock = threading.Lock()
        self._in_flight: set[int] = set()

    def send_due(self, stop: threading.Event | None = None, *, only: list[int] | None = None,
                 copies_to: MailSource | None = None) -> list[SentReply]:
        """Send the replies that are due (or only those of `only` that are), until none is left or `stop`
        is set, saving their copies to the Sent folder of `copies_to` (while the others are being sent);
        the replies the server accepted."""
        if only is None and self.resume_at is not None and self.edges.clock() < self.resume_at:
            return []
        run = _Pass(stop or threading.Event(), set(only) if only is not None else None)
        run.loops = min(self.worker.smtp_connections, len(only) if only is not None else self.worker.smtp_connections)
        if run.loops <= 1:
            self._loop(run)
        else:
            threads = [threading.Thread(target=self._loop, args=(run,), name=f"smtp-{number}")
                       for number in range(run.loops)]
            for thread in threads:
                thread.start()
            try:
                if copies_to is not None:
                    self._save_copies_meanwhile(run, copies_to)
            finally:
                for thread in threads:
                    thread.join()
        if copies_to is not None:
            save_copies(copies_to, run.sent[run.copied:])
        if run.sent:
            self.outage.recovered()
            self.unreachable = ""
        if run.error is not None:
            raise run.error
        return run.sent

    def _loop(self, run: _Pass) -> None:
        context = connection = None
        step = _HandOver()
        try:
            while True:
                step.wants_next = not step.unreachable and not run.stop.is_set() and run.error is None
                if step.carried is None and not step.wants_next:
                    return
                claimed = self._hand_over(run, step)
                if claimed is None:
                    return
                step = _HandOver(claimed)
                if connection is None:
                    try:
                        context = self.edges.sender.connect()
                        connection = context.__enter__()
                    except SendError as exc:  # nothing was handed over: a retry is safe
                        context, step.error, step.unreachable = None, exc, True
                        continue  # recorded, and the server is away: no more replies from this loop this pass
                try:
                    connection.send(claimed.raw, self.edges.reply_from, claimed.recipient,
                                    before_end=lambda: self._handed_over(claimed))
                    step.accepted_at = self.edges.clock()
                except SendError as exc:
                    step.error = exc
                    if not exc.permanent:  # a 4xx or a dropped connection: the next reply on a fresh one
                        _close(context)
                        context = connection = None
        except BaseException as exc:
            run.error = run.error or exc
            if step.carried is not None and not step.done:  # left in flight: the next look settles it
                with self._lock:
                    self._give_back([step.carried.id])
        finally:
            _close(context)
            with run.progress:
                run.loops -= 1
                run.progress.notify()

    def _handed_over(self, claimed: outbox.Claimed) -> None:
        """Commit that all of the reply is with the server, before the "." that makes it keep it."""
        with self._lock, database_needed(), self.edges.sessions() as session:
            ours = outbox.record_handed_over(session, claimed.id)
            session.commit()
        if not ours:  # settled by someone else meanwhile (our claim was lost): the server keeps nothing
            raise SendError("the reply was settled elsewhere while it was being sent; not sent")

    def _save_copies_meanwhile(self, run: _Pass, source: MailSource) -> None:
        """While the loops send, save the Sent copies of what they have sent, a full command at a time (the
        thread that started them has nothing else to do; the rest is saved once they end)."""
        while True:
            with run.progress:
                run.progress.wait_for(lambda: len(run.sent) - run.copied >= COPIES_PER_APPEND or run.loops == 0)
                if run.loops == 0:
                    return
                part = run.sent[run.copied:run.copied + COPIES_PER_APPEND]
                run.copied += len(part)
            save_copies(source, part)

    def _hand_over(self, run: _Pass, step: _HandOver) -> outbox.Claimed | None:
        """Commit how the carried reply went and claim the next one, in one transaction shared with the
        hand-overs of the other loops that are waiting for it; the next reply, now "sending"."""
        with self._waiting_lock:
            run.waiting.append(step)
        with self._lock:
            if not step.done:  # not taken along by the transaction before: commit the ones waiting now
                with self._waiting_lock:
                    group, run.waiting = run.waiting, []
                self._commit(run, group)
        if step.failure is not None:
            raise step.failure
        return step.next

    def _commit(self, run: _Pass, group: list[_HandOver]) -> None:
        now = self.edges.clock()
        carried = [step.carried for step in group if step.carried is not None]
        sent = {step.carried.id: step.accepted_at for step in group if step.carried is not None and step.error is None}
        self.accepted.update(sent)  # until "sent" is committed
        taken: list[int] = []       # claims taken in this transaction
        claimed: list[outbox.Claimed] = []
        settled: list[outbox.Settled] = []
        delays: dict[int, float] = {}
        try:
            with database_needed(), self.edges.sessions() as session:
                outbox.record_sent(session, sent)
                for step in group:
                    if step.carried is not None and step.error is not None:
                        delays[step.carried.id] = self._failed(session, run, step.carried, step.error, now,
                                                               unreachable=step.unreachable)
                self._claim(session, run, sum(step.wants_next for step in group), now, taken, claimed, settled)
                session.commit()
        except BaseException as exc:
            self._give_back([reply.id for reply in carried] + taken)
            for step in group:
                step.failure, step.done = exc, True
            return
        for step in group:
            if step.carried is None:
                continue
            if step.error is None:
                self.accepted.pop(step.carried.id, None)
                run.sent.append(SentReply(step.carried.message_id, step.carried.raw))
            elif step.unreachable:
                self.resume_at = now + timedelta(seconds=delays[step.carried.id])
        if len(run.sent) - run.copied >= COPIES_PER_APPEND:
            with run.progress:
                run.progress.notify()
        for result in settled:
            self.accepted.pop(result.id, None)
            log.warning("reply %s: %s", result.message_id, result.reason)
        sending = {reply.id for reply in claimed}
        self._give_back([reply.id for reply in carried] + [outbox_id for outbox_id in taken if outbox_id not in sending])
        replies = iter(claimed)
        for step in group:
            step.next = next(replies, None) if step.wants_next else None
            step.done = True

    def _claim(self, session, run: _Pass, count: int, now: datetime, taken: list[int],
               claimed: list[outbox.Claimed], settled: list[outbox.Settled]) -> None:
        """Claim up to `count` due replies for sending (into `claimed`; their claims, and those of the ones
        settled on the way because they must not be sent, into `taken`)."""
        give_up = timedelta(hours=self.worker.retry_give_up_hours)
        while len(claimed) < count:
            if run.only is not None:
                run.due = sorted(run.only - run.passed - self._in_flight)
            elif not run.due:
                run.due = outbox.replies_due(session, now, DUE_PAGE, exclude=run.passed | self._in_flight)
            if not run.due:
                return
            wanted = count - len(claimed)
            candidates = [outbox_id for outbox_id in run.due[:wanted] if outbox_id not in self._in_flight]
            del run.due[:wanted]
            held = self.edges.claims.take_all([f"outbox:{outbox_id}" for outbox_id in candidates])
            mine = [outbox_id for outbox_id in candidates if f"outbox:{outbox_id}" in held]
            taken += mine
            run.passed.update(candidates if run.only is not None else set(candidates) - set(mine))
            for result in outbox.start_sending(session, mine, now=now, give_up_after=give_up, accepted=self.accepted):
                if isinstance(result, outbox.Claimed):
                    self._in_flight.add(result.id)
                    claimed.append(result)
                else:
                    settled.append(result)
            run.passed.update(set(mine) - self._in_flight)  # settled, or not ours to send now

    def recover_from_sent(self, source: MailSource) -> int:
        """Replies a stopped worker left "handed_over" (the server may or may not have kept them): one whose copy
        is in the Sent folder, ours or the provider's (Gmail and Microsoft 365 file what their SMTP takes),
        went out and is recorded sent; the others go the usual way, to a person. Looked up outside any
        transaction, holding each reply's claim, so one another worker is sending right now is left alone."""
        with database_needed(), self.edges.sessions() as session:
            stale = outbox.left_in_doubt(session, exclude=self._in_flight)
        if not stale:
            return 0
        with database_needed():
            held = self.edges.claims.take_all([f"outbox:{outbox_id}" for outbox_id in stale])
        try:
            mine = {outbox_id: message_id for outbox_id, message_id in stale.items() if f"outbox:{outbox_id}" in held}
            try:
                found = source.sent_copies(list(mine.values())) if mine else set()
            except MailboxError as exc:  # the usual way then: a person checks
                log.warning("could not look in Sent for %d reply(ies) left in doubt: %s", len(mine), exc)
                return 0
            ids = [outbox_id for outbox_id, message_id in mine.items() if message_id in found]
            if ids:
                with database_needed(), self.edges.sessions() as session:
                    outbox.record_found_sent(session, ids, self.edges.clock())
                    session.commit()
                log.info("%d reply(ies) left in doubt by a stopped worker were found in Sent: recorded sent", len(ids))
            return len(ids)
        finally:
            self._release(sorted(held))

    def _give_back(self, outbox_ids: list[int]) -> None:
        """Out of flight, claims given back (called holding the lock)."""
        self._in_flight.difference_update(outbox_ids)
        if outbox_ids:
            self._release([f"outbox:{outbox_id}" for outbox_id in outbox_ids])

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
            self.unreachable = str(error)
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

