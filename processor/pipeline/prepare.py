"""The pure half of handling a message: parse it and classify it, with no database and no network.

This is where most of a message's CPU time goes (MIME parsing, quote stripping, title
candidates), so `Preparer` can run it in a process of its own while the worker records the
previous group of messages: two cores instead of one on a first run over a big mailbox. Small
groups (new mail arriving one message at a time) are prepared inline, where handing them to
another process would only add a delay. The helper is started on the first big group, in the
background (a new interpreter importing the parser takes about a tenth of a second): the worker
prepares groups itself until it is up.

The helper is a plain interpreter running `serve` (not a multiprocessing child, which would import
the worker's whole main module again: a third of a second and some 30 MB for nothing). Groups go to
it pickled on its stdin and come back on its stdout, in order; when the worker ends, however it ends,
the helper's stdin closes and it ends too.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import Enum
from multiprocessing.connection import Connection
from pathlib import Path

from processor.pipeline.classify import (StoryRefs, automation_reason, is_delivery_report, is_republish_subject,
                                question_reason, story_refs)
from processor.mail.mailbox import RawMessage
from processor.pipeline.parse import (Inbound, UnreadableMessage, clean_header, message_key,
                             normalise_message_id, parse_message, raw_digest_key)

log = logging.getLogger(__name__)
POOL_MIN_GROUP = 8    # fewer messages than this are prepared inline: a round trip to another process costs more
QUEUED_PER_HELPER = 2  # groups waiting for a helper before the worker prepares the next one itself


class Kind(Enum):
    REQUEST = "request"          # subject "republish": recorded, and answered or handed to a person
    REPORT = "report"            # a delivery report that may be returning one of our replies
    OTHER = "other"              # none of ours: left exactly as it is
    OVERSIZED = "oversized"      # not downloaded (over max_message_bytes)
    UNREADABLE = "unreadable"    # could not be parsed: kept for a person


@dataclass(frozen=True)
class Rules:
    """What classification needs to know about us (plain data, so it can cross to another process)."""

    allowed_hosts: tuple[str, ...]
    own_addresses: tuple[str, ...]
    loop_marker: str
    mailbox: str                 # the source's name, part of the key of a message known by nothing else


@dataclass(frozen=True)
class Prepared:
    kind: Kind
    key: str                               # what the request is recorded under (its Message-ID, else a digest)
    inbound: Inbound | None = None
    refs: StoryRefs | None = None           # requests only, and only when not automated
    automated: str | None = None           # why it must never get an automatic reply
    question: str | None = None
    error: str = ""                        # unreadable: why


def prepare(message: RawMessage, rules: Rules) -> Prepared:
    if message.raw is None:
        # Too big to download: its Message-ID alone still keys it, so it is recorded only once.
        message_id = normalise_message_id(clean_header(message.message_id))
        return Prepared(Kind.OVERSIZED, message_key(message_id, f"oversized:{rules.mailbox}:{message.ref}:{message.size}"))
    try:
        inbound = parse_message(message.raw)
    except UnreadableMessage as exc:
        return Prepared(Kind.UNREADABLE, raw_digest_key(message.raw), error=str(exc))
    except Exception as exc:  # a bug or a library surprise: the message still goes to a person, with the reason
        log.exception("message %s could not be parsed", message.ref)
        return Prepared(Kind.UNREADABLE, raw_digest_key(message.raw),
                        error=f"internal error while parsing: {type(exc).__name__}: {exc}")
    key = inbound.message_key
    if is_republish_subject(inbound.subject):
        automated = automation_reason(inbound, rules.own_addresses, rules.loop_marker)
        if automated:
            return Prepared(Kind.REQUEST, key, inbound, automated=automated)
        return Prepared(Kind.REQUEST, key, inbound, refs=story_refs(inbound, rules.allowed_hosts),
                        question=question_reason(inbound.text))
    if is_delivery_report(inbound) and inbound.embedded_message_ids:
        return Prepared(Kind.REPORT, key, inbound)
    return Prepared(Kind.OTHER, key, inbound)


def prepare_all(messages: list[RawMessage], rules: Rules) -> list[Prepared]:
    return [prepare(message, rules) for message in messages]


class HelperGone(OSError):
    """A helper process ended, or could not be started."""


READY = "ready"
_SOURCE_ROOT = str(Path(__file__).resolve().parents[2])  # where `processor` is imported from


def serve() -> None:
    """In a helper process: prepare the groups the worker sends on stdin, answer each on stdout, in
    order; end when stdin closes (the worker closed it, or ended)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the worker's to handle; it then closes our stdin
    answers = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # anything printed goes to stderr, never into the answers
    requests = Connection(os.dup(0), writable=False)
    groups: queue.SimpleQueue = queue.SimpleQueue()

    def read() -> None:  # at once, so the worker never waits to hand over a group
        try:
            while True:
                groups.put(requests.recv())
        except (EOFError, OSError):
            groups.put(None)

    threading.Thread(target=read, name="groups", daemon=True).start()
    answers.send(READY)
    while (group := groups.get()) is not None:
        messages, rules = group
        try:
            answer: list[Prepared] | str = prepare_all(messages, rules)
        except Exception as exc:  # prepare() keeps a message's own errors; this is the helper failing
            answer = f"{type(exc).__name__}: {exc}"
        try:
            answers.send(answer)
        except OSError:
            return


class _Helper:
    """One helper process: groups go in on its stdin, results come back on its stdout, in order."""

    def __init__(self) -> None:
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": _SOURCE_ROOT + (os.pathsep + path if path else "")}
        self.process = subprocess.Popen([sys.executable, "-c", "from processor.pipeline.prepare import serve; serve()"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self._to = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self._from = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.process.stdin.close()
        self.process.stdout.close()
        self._waiting: deque[Future] = deque()
        self._lock = threading.Lock()
        self._ended = False
        self.groups_sent = 0
        try:
            if self._from.recv() != READY:
                raise HelperGone("the helper process did not start")
        except (EOFError, OSError) as exc:
            self.close()
            raise HelperGone(f"the helper process did not start: {exc!r}") from None
        self._reader = threading.Thread(target=self._read, name="helper-results", daemon=True)
        self._reader.start()

    @property
    def queued(self) -> int:
        return len(self._waiting)

    @property
    def ended(self) -> bool:
        return self._ended

    def submit(self, messages: list[RawMessage], rules: Rules) -> Future:
        future: Future = Future()
        with self._lock:
            if self._ended:
                raise HelperGone("the helper process has ended")
            self._waiting.append(future)
            try:
                self._to.send((messages, rules))
            except BaseException as exc:  # never leave a future without its group: answers would shift by one
                self._waiting.pop()
                if isinstance(exc, OSError):
                    raise HelperGone(f"the helper process has ended: {exc}") from None
                raise
            self.groups_sent += 1
        return future

    def _read(self) -> None:
        try:
            while True:
                answer = self._from.recv()
                future = self._waiting.popleft()
                if isinstance(answer, list):
                    future.set_result(answer)
                else:
                    future.set_exception(HelperGone(f"the helper process failed: {answer}"))
        except Exception as exc:  # its end (EOF), or an answer that cannot be read: either way, done with it
            if not isinstance(exc, (EOFError, OSError)):
                log.warning("a helper process sent an answer that could not be read (%s: %s)", type(exc).__name__, exc)
        with self._lock:
            self._ended = True
            waiting, self._waiting = list(self._waiting), deque()
        for future in waiting:
            future.set_exception(HelperGone(f"the helper process ended (exit status {self.process.poll()})"))

    def close(self) -> None:
        with self._lock:
            self._ended = True
            self._to.close()  # end of its stdin: it finishes the group in hand and ends
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        reader = getattr(self, "_reader", None)
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=10)
        self._from.close()


@dataclass(eq=False)
class _Waiting:
    """A group handed to `Preparer.start`, until its results are taken."""

    messages: list[RawMessage]
    done: Future = field(default_factory=Future)


class Preparer:
    """Prepares groups of messages inline, or in `processes` helper processes (0: always inline).

    Each helper is kept QUEUED_PER_HELPER groups busy, oldest first; the others wait here. When the
    worker needs a group's results and they are not ready, it does not wait idle: it prepares a group
    no helper has yet itself (the one it needs, if no helper has it; else the newest), so both cores
    work and the worker parses only what the helpers would not reach in time."""

    def __init__(self, rules: Rules, processes: int) -> None:
        self.rules = rules
        self.processes = processes
        self._helpers: list[_Helper] = []   # set once they are up
        self._starting: threading.Thread | None = None
        self._unsent: deque[_Waiting] = deque()
        self._lock = threading.Lock()       # the helpers' results arrive on threads of their own

    def start(self, messages: list[RawMessage]) -> Callable[[], list[Prepared]]:
        """Begin preparing; the returned call gives the results (in order), waiting for them if need be."""
        if self.processes < 1 or len(messages) < POOL_MIN_GROUP:
            results = prepare_all(messages, self.rules)
            return lambda: results
        self._start_helpers_once()
        group = _Waiting(messages)
        with self._lock:
            self._unsent.append(group)
        self._feed()
        return lambda: self._result(group)

    def _feed(self) -> None:
        """Hand waiting groups, oldest first, to the helpers that have fewer than QUEUED_PER_HELPER."""
        sent, ended = [], []
        with self._lock:
            for helper in self._helpers:
                while self._unsent and helper.queued < QUEUED_PER_HELPER:
                    group = self._unsent.popleft()
                    try:
                        sent.append((group, helper.submit(group.messages, self.rules)))
                    except HelperGone:
                        self._unsent.appendleft(group)
                        ended.append(helper)
                        break
        for group, future in sent:  # outside the lock: a callback may run at once, and feeds again
            future.add_done_callback(lambda future, group=group: self._arrived(group, future))
        for helper in ended:
            self._drop(helper)

    def _arrived(self, group: _Waiting, future: Future) -> None:
        if future.exception() is not None:
            group.done.set_exception(future.exception())
        else:
            group.done.set_result(future.result())
        self._feed()

    def _result(self, group: _Waiting) -> list[Prepared]:
        while True:
            with self._lock:
                if group in self._unsent:  # no helper has it: do it here
                    self._unsent.remove(group)
                    mine = group
                elif group.done.done() or not self._unsent:
                    mine = None
                else:  # a helper has it and is not done: meanwhile, prepare the newest waiting group here
                    mine = self._unsent.pop()
            if mine is group:
                return prepare_all(group.messages, self.rules)
            if mine is not None:
                mine.done.set_result(prepare_all(mine.messages, self.rules))
                continue
            try:
                return group.done.result()
            except HelperGone as exc:  # the helper died (killed, out of memory): do it here
                log.warning("preparing messages in a helper process failed (%s); preparing them here", exc)
                for helper in [helper for helper in self._helpers if helper.ended]:
                    self._drop(helper)
                return prepare_all(group.messages, self.rules)

    def _drop(self, helper: _Helper) -> None:
        """Close an ended helper; with none left, the next group starts new ones."""
        with self._lock:
            if helper not in self._helpers:
                return
            self._helpers.remove(helper)
            if not self._helpers:
                self._starting = None
        helper.close()

    def _start_helpers_once(self) -> None:
        """Start the helpers in the background, unless they run or are starting."""
        if not self._helpers and self._starting is None:
            self._starting = threading.Thread(target=self._start_helpers, name="start-helpers", daemon=True)
            self._starting.start()

    def _start_helpers(self) -> None:
        helpers = []
        try:
            for _ in range(self.processes):
                helpers.append(_Helper())
        except (HelperGone, OSError) as exc:  # this run prepares everything inline
            log.warning("could not start a helper process (%s); preparing messages here", exc)
            for helper in helpers:
                helper.close()
            return
        with self._lock:
            self._helpers = helpers
        self._feed()

    def close(self) -> None:
        starting, self._starting = self._starting, None
        if starting is not None:
            starting.join()
        with self._lock:
            helpers, self._helpers = self._helpers, []
            self._unsent.clear()
        for helper in helpers:
            helper.close()
