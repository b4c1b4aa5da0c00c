"""Sending stored replies: rounds handed to SMTP courier threads, settled by the worker's own thread.

The worker's thread does everything that touches the database, the claims and the mailbox: it
picks the replies that are due, claims them, commits them as "sending" (so a crash inside an SMTP
transaction is never resent blindly), hands each round to a connection with room for it, and, when
the round comes back, records what the server said and saves the copies to Sent (one commit records
the rounds that came back and marks the next ones). The courier threads only
talk SMTP, each on a connection of its own (SMTP has no pipelining across messages, so at a high
round-trip time parallel connections are what keeps replies flowing; the cap is the operator's,
`[worker] smtp_connections`, as servers limit connections per client). Meanwhile the worker's
thread goes on recording the next requests: sending and recording overlap.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from models import OutboxMessage, SendStatus
from processor.records import store
from processor.pipeline.backoff import Outage, retry_delay
from processor.records.errors import database_needed
from processor.mail.smtp import Connection, Sender, SendError

log = logging.getLogger(__name__)
REPLIES_PER_ROUND = 8   # replies handed to one connection together
ROUNDS_AHEAD = 2        # rounds handed to a connection at once: the next one waits there, not for the worker
DUE_PAGE = 200          # replies looked at (and claimed) at once
RECORDED_KEPT = 400     # replies just recorded, kept in memory to be sent without reading them back

_Ready = tuple[int, bytes, str]  # a reply to send: (outbox id, message, recipient)


@dataclass
class _Round:
    outbox_ids: list[int]
    raws: list[bytes]
    names: list[str]                      # their claims, held until the round is settled
    delivery: _Delivery
    future: Future                        # -> [SendError or None per reply]


class Outgoing:
    """Replies on their way, for one pass of the worker's loop (a `with` block)."""

    def __init__(self, edges, *, reply_from: str, accepted: dict[int, datetime], outage: Outage, stats) -> None:
        self.edges = edges
        self.worker = edges.config.worker
        self.reply_from = reply_from
        self.accepted = accepted          # replies the server took that the database has not recorded yet
        self.outage = outage
        self.stats = stats                # counts replies_sent
        connections = self.worker.smtp_connections
        self.deliveries = [_Delivery(edges.sender, f"smtp-{number}") for number in range(connections)]
        self.rounds: list[_Round] = []
        self.recorded: list[_Ready] = []
        self.reported = False
        # Copies to Sent go out on the archive's own connection, from a thread of their own, in order.
        self._archiving = ThreadPoolExecutor(1, thread_name_prefix="sent-copies")
        self._nothing_due = False

    def __enter__(self) -> Outgoing:
        return self

    def __exit__(self, *exc_info) -> None:
        """Wait for the rounds still out; what the server took is remembered in `accepted`, so the next
        pass records it as sent rather than flagging it for a person."""
        for round_ in self.rounds:
            self._collect(round_)
        self._archiving.shutdown(wait=True)
        for delivery in self.deliveries:
            delivery.stop()
        _release_quietly(self.edges.claims, [name for round_ in self.rounds for name in round_.names])
        self.rounds.clear()

    def pump(self, stop: threading.Event | None, *, finish: bool) -> None:
        """Settle the rounds that came back and start new ones on free connections; with `finish`, keep
        at it until nothing due is left and nothing is on its way."""
        self._nothing_due = False
        while True:
            self._turn([round_ for round_ in self.rounds if round_.future.done()],
                       start=not (stop is not None and stop.is_set()))
            if not finish or not self.rounds:
                return
            wait([round_.future for round_ in self.rounds], return_when=FIRST_COMPLETED)

    def add_recorded(self, replies: list[_Ready]) -> None:
        """Replies this worker has just recorded and committed, (id, message, recipient): sent first, and
        without reading them back. Past RECORDED_KEPT, the rest wait in the outbox for `replies_due`."""
        self.recorded += replies[:max(0, RECORDED_KEPT - len(self.recorded))]

    def _turn(self, done: list[_Round], *, start: bool) -> None:
        """Record how the finished rounds went and commit the next ones "sending", in one transaction."""
        if done:
            self._nothing_due = False  # a settled round may leave more due
        free = sum(ROUNDS_AHEAD - delivery.rounds for delivery in self.deliveries) + len(done)
        start = start and free > 0 and bool(self.recorded or not self._nothing_due)
        if not done and not start:
            return
        results: dict[int, SendError | None] = {}
        for round_ in done:
            results.update(self._collect(round_))
        taken: set[str] = set()  # claims taken in this turn: released below unless their reply goes out
        ready: list[_Ready] = []
        failure: BaseException | None = None
        try:
            with database_needed(), self.edges.sessions() as session:
                message_ids = self._settle(session, results)
                if start:
                    ready = self._choose(session, free * REPLIES_PER_ROUND, taken)
                # Committed before the SMTP transactions: a crash inside them leaves "sending", which is
                # then never resent blindly (see _settle_stale).
                session.commit()
        except BaseException as exc:
            _release_quietly(self.edges.claims, taken)  # else this process would never send those again
            if not results:
                raise
            # Choosing the next rounds failed: still record how the finished ones went (else they would
            # be left "sending" and flagged as unknown), then report the failure.
            failure, taken, ready = exc, set(), []
            with database_needed(), self.edges.sessions() as session:
                message_ids = self._settle(session, results)
                session.commit()
        for outbox_id in results:
            self.accepted.pop(outbox_id, None)
        for round_ in done:
            self.rounds.remove(round_)
            round_.delivery.rounds -= 1
        chosen = {f"outbox:{outbox_id}" for outbox_id, _, _ in ready}
        while ready:  # handed over before anything else can fail: they are committed "sending"
            share, ready = ready[:REPLIES_PER_ROUND], ready[REPLIES_PER_ROUND:]
            # A connection with room, a reachable one first (one refused fails its rounds at once).
            delivery = min(self.deliveries, key=lambda delivery: (delivery.rounds >= ROUNDS_AHEAD,
                                                                  delivery.unreachable, delivery.rounds))
            messages = [(raw, self.reply_from, recipients) for _, raw, recipients in share]
            self.rounds.append(_Round([outbox_id for outbox_id, _, _ in share], [raw for _, raw, _ in share],
                                      [f"outbox:{outbox_id}" for outbox_id, _, _ in share], delivery,
                                      delivery.submit(messages)))
        _release_quietly(self.edges.claims, [name for round_ in done for name in round_.names]
                         + [name for name in taken if name not in chosen])
        raws = {outbox_id: raw for round_ in done for outbox_id, raw in zip(round_.outbox_ids, round_.raws)}
        copies = [(raws[outbox_id], message_id) for outbox_id, message_id in message_ids.items()]
        if copies:
            self.outage.recovered()
            self.stats.replies_sent += len(copies)
            self._archiving.submit(self._save_copies, copies)
        if failure is not None:
            raise failure

    # -- starting ---------------------------------------------------------
    def _choose(self, session: Session, capacity: int, taken: set[str]) -> list[_Ready]:
        """Claim replies to send (the ones just recorded first, else the ones due; the claims go into
        `taken`) and mark up to `capacity` of them "sending"."""
        if self.recorded:
            batch, self.recorded = self.recorded[:capacity], self.recorded[capacity:]
            self._take([outbox_id for outbox_id, _, _ in batch], taken)
            sending = store.mark_replies_sending(session, [outbox_id for outbox_id, _, _ in batch
                                                           if f"outbox:{outbox_id}" in taken], due_by=self.edges.clock())
            return [reply for reply in batch if reply[0] in sending]
        in_flight = [outbox_id for round_ in self.rounds for outbox_id in round_.outbox_ids]
        due = store.replies_due(session, self.edges.clock(), DUE_PAGE, exclude=in_flight)
        if not due:
            self._nothing_due = True  # until something is recorded or settled: the next pump looks again
            return []
        self._take(due, taken)
        return self._mark_sending(session, [outbox_id for outbox_id in due if f"outbox:{outbox_id}" in taken], capacity)

    def _take(self, outbox_ids: list[int], taken: set[str]) -> None:
        """Add to `taken` the claims this worker could take; the others are another worker's to send."""
        with database_needed():
            taken |= self.edges.claims.take_all([f"outbox:{outbox_id}" for outbox_id in outbox_ids])

    def _mark_sending(self, session: Session, outbox_ids: list[int], capacity: int) -> list[_Ready]:
        """Mark "sending" up to `capacity` of the claimed replies that are still to send, settling any a
        stopped worker left "sending" on the way.

        Replies are looked at `capacity` at a time, and messages are read only for the chosen ones:
        a page of due replies is mostly for the next rounds."""
        chosen: list[store.OutboxState] = []
        now = self.edges.clock()
        give_up = timedelta(hours=self.worker.retry_give_up_hours)
        for start in range(0, len(outbox_ids), capacity):
            if len(chosen) >= capacity:
                break
            to_settle = []
            for state in store.outbox_states(session, outbox_ids[start:start + capacity]):
                if state.status == SendStatus.SENDING or (state.status == SendStatus.PENDING
                                                          and now - state.created_at > give_up):
                    to_settle.append(state.id)
                elif state.status != SendStatus.PENDING or (state.next_attempt_at and state.next_attempt_at > now):
                    continue  # settled or rescheduled by another worker meanwhile
                elif len(chosen) < capacity:
                    chosen.append(state)
            for row in store.outbox_rows(session, to_settle):
                self._settle_stale(session, row)
        sending = store.mark_replies_sending(session, [state.id for state in chosen], due_by=now)
        raws = store.outbox_raws(session, list(sending))
        return [(state.id, raws[state.id], state.recipients) for state in chosen if state.id in sending]

    # -- settling ---------------------------------------------------------
    def _settle(self, session: Session, results: dict[int, SendError | None]) -> dict[int, str]:
        """Record what the server said to each reply: {id: Message-ID} of the ones it accepted."""
        accepted = {outbox_id: self.accepted[outbox_id] for outbox_id, error in results.items() if error is None}
        # Accepted is the truth, whatever another worker assumed meanwhile: no need to look first.
        message_ids = store.mark_replies_sent(session, accepted)
        failed = [outbox_id for outbox_id, error in results.items() if error is not None]
        now = self.edges.clock()
        for row in store.outbox_rows(session, failed):
            if self._still_sending(session, row):
                self._send_failed(row, results[row.id], now)
        return message_ids

    def _save_copies(self, copies: list[tuple[bytes, str]]) -> None:
        archive = self.edges.archive or self.edges.source
        try:
            archive.save_sent([raw for raw, _ in copies])
        except Exception as exc:  # a missing Sent copy must not undo a sent reply
            log.warning("replies %s sent, but their copies were not saved to Sent: %s",
                        ", ".join(message_id for _, message_id in copies), exc)

    def _collect(self, round_: _Round) -> dict[int, SendError | None]:
        """What the server said to each reply of a finished round; the accepted ones are remembered at once."""
        results = dict(zip(round_.outbox_ids, round_.future.result()))
        accepted_at = self.edges.clock()
        for outbox_id, error in results.items():
            if error is None:
                self.accepted[outbox_id] = accepted_at
        return results

    @staticmethod
    def _still_sending(session: Session, row: OutboxMessage) -> bool:
        """Re-read the row under a row lock: if our claim was lost (its database connection dropped),
        another worker may have settled it meanwhile, and a failure must not put it back in the queue."""
        session.refresh(row, with_for_update=True)
        return row.status == SendStatus.SENDING

    def _send_failed(self, row: OutboxMessage, exc: SendError, now: datetime) -> None:
        if exc.uncertain:  # like a crash mid-transaction: never resent blindly
            store.mark_reply_failed(row, f"{exc}: the reply may or may not have reached {row.recipients}; check the "
                                         f"Sent folder before answering by hand", status=SendStatus.UNKNOWN)
            log.warning("reply %s: %s; flagged for a person", row.message_id, exc)
            return
        if exc.permanent:
            store.mark_reply_failed(row, f"reply refused by the mail server: {exc}")
            log.warning("reply %s refused permanently: %s", row.message_id, exc)
            return
        delay = retry_delay(row.attempts, self.worker.retry_first_seconds, self.worker.retry_max_seconds,
                            self.edges.rand)
        store.mark_reply_retry(row, str(exc), next_attempt_at=now + timedelta(seconds=delay))
        if any(delivery.unreachable for delivery in self.deliveries):
            if not self.reported:  # one outage per pass, however many replies wait
                self.reported = True
                self.outage.failed(str(exc), delay)
        else:
            log.warning("reply %s not accepted yet (%s); retrying in %.0f s", row.message_id, exc, delay)

    def _settle_stale(self, session: Session, row: OutboxMessage) -> None:
        """A claimed reply that cannot simply be sent: left "sending" (its sender stopped in the middle),
        or waiting longer than retrying is allowed to take."""
        if row.status == SendStatus.PENDING:
            store.mark_reply_failed(row, f"the mail server did not take the reply within "
                                         f"{self.worker.retry_give_up_hours:g} hours (last error: {row.last_error})")
            log.warning("reply %s given up: %s", row.message_id, row.last_error)
            return
        accepted_at = self.accepted.pop(row.id, None)
        if accepted_at is not None:  # this process saw it accepted, then could not record it
            store.mark_replies_sent(session, {row.id: accepted_at})
            return
        # Resending could give the partner a second copy; not sending could leave them without one.
        # Neither is safe to guess, so a person looks (the Sent folder tells).
        store.mark_reply_failed(row, f"the worker stopped while this reply was being sent to {row.recipients}: it "
                                     f"may or may not have arrived; check the Sent folder before answering by hand",
                                status=SendStatus.UNKNOWN)
        log.warning("reply %s was interrupted while sending; flagged for a person", row.message_id)


def _release_quietly(claims, names) -> None:
    try:
        with database_needed():
            claims.release_all(list(names))
    except Exception:
        pass  # a lost claims connection has released them anyway


class _Delivery:
    """One SMTP connection, opened on first use and reopened after a failure, with a thread of its own that
    sends the rounds handed to it one after another."""

    def __init__(self, sender: Sender, name: str) -> None:
        self.sender = sender
        self.rounds = 0                   # handed to it and not settled yet
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=name)
        self._context = None
        self._connection: Connection | None = None
        self._unreachable: SendError | None = None

    @property
    def unreachable(self) -> bool:
        return self._unreachable is not None

    def submit(self, messages: list[tuple[bytes, str, str]]) -> Future:
        self.rounds += 1
        return self._thread.submit(self.send_all, messages)

    def send_all(self, messages: list[tuple[bytes, str, str]]) -> list[SendError | None]:
        """Send each (raw, sender, recipient) in turn; the error of each one not accepted, in order."""
        errors: list[SendError | None] = []
        for message in messages:
            try:
                self.send(*message)
                errors.append(None)
            except SendError as exc:
                errors.append(exc)
        return errors

    def send(self, raw: bytes, sender: str, recipient: str) -> None:
        if self._unreachable is not None:
            raise self._unreachable  # the server was down a moment ago: do not hammer it within one pass
        if self._connection is None:
            try:
                self._context = self.sender.connect()
                self._connection = self._context.__enter__()
            except SendError as exc:
                self._context = None
                self._unreachable = exc
                raise
        try:
            self._connection.send(raw, sender, recipient)
        except SendError as exc:
            if not exc.permanent:
                self.close()  # a 4xx or a dropped connection: start the next reply on a fresh one
            raise

    def stop(self) -> None:
        """Once the rounds handed to it are done: close the connection, end the thread."""
        self._thread.shutdown(wait=True)
        self.close()

    def close(self) -> None:
        context, self._context, self._connection = self._context, None, None
        if context is not None:
            context.__exit__(None, None, None)
