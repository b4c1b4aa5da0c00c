"""The pure half of handling a message: parse it and classify it, with no database and no network.

This is where most of a message's CPU time goes (MIME parsing, quote stripping, title
candidates), so `Preparer` can run it in a process of its own while the worker records the
previous group of messages: two cores instead of one on a first run over a big mailbox. Small
groups (new mail arriving one message at a time) are prepared inline, where handing them to
another process would only add a delay. The helper is started on the first big group, in the
background (a new interpreter importing the parser takes about half a second): the worker prepares
groups itself until it is up.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from enum import Enum

from processor.classify import (StoryRefs, automation_reason, is_delivery_report, is_republish_subject,
                                question_reason, story_refs)
from processor.mailbox import RawMessage
from processor.parse import (Inbound, UnreadableMessage, clean_header, is_usable_message_id, message_key,
                             normalise_message_id, parse_message)

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
        usable = is_usable_message_id(message_id)
        return Prepared(Kind.OVERSIZED, message_id if usable else f"oversized:{rules.mailbox}:{message.ref}:{message.size}")
    try:
        inbound = parse_message(message.raw)
    except UnreadableMessage as exc:
        return Prepared(Kind.UNREADABLE, message_key("", message.raw), error=str(exc))
    except Exception as exc:  # a bug or a library surprise: the message still goes to a person, with the reason
        log.exception("message %s could not be parsed", message.ref)
        return Prepared(Kind.UNREADABLE, message_key("", message.raw),
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


def exit_with(pid: int) -> None:
    """In a helper process: end when the worker `pid` ends, however it ends.

    A worker killed outright (kill -9, out of memory) never tells its helpers to stop, and a helper
    waiting for work would wait forever."""

    def watch() -> None:
        try:
            handle = os.pidfd_open(pid)
        except (AttributeError, OSError):  # no pidfd (old kernel): look once a second instead
            while _alive(pid):
                time.sleep(1)
        else:
            select.select([handle], [], [])
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-worker", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Preparer:
    """Prepares groups of messages inline, or in `processes` helper processes (0: always inline)."""

    def __init__(self, rules: Rules, processes: int) -> None:
        self.rules = rules
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None   # set once its helpers are up
        self._starting: threading.Thread | None = None
        self._pending: list[Future] = []

    def start(self, messages: list[RawMessage]) -> Callable[[], list[Prepared]]:
        """Begin preparing; the returned call gives the results (in order), waiting for them if need be.

        When the helpers are still starting, or already have two groups each waiting, this group is
        prepared here and now: the worker would otherwise only wait for them, so both cores stay
        busy either way."""
        self._pending = [future for future in self._pending if not future.done()]
        if (self.processes < 1 or len(messages) < POOL_MIN_GROUP or not self._helpers_up()
                or len(self._pending) >= self.processes * QUEUED_PER_HELPER):
            results = prepare_all(messages, self.rules)
            return lambda: results
        try:
            future = self._pool.submit(prepare_all, messages, self.rules)
        except (BrokenProcessPool, RuntimeError, OSError) as exc:
            return self._inline_after(exc, messages)
        self._pending.append(future)
        return lambda: self._result(future, messages)

    def _result(self, future: Future, messages: list[RawMessage]) -> list[Prepared]:
        try:
            return future.result()
        except (BrokenProcessPool, OSError) as exc:  # the helper died (killed, out of memory): do it here
            return self._inline_after(exc, messages)()

    def _inline_after(self, exc: Exception, messages: list[RawMessage]) -> Callable[[], list[Prepared]]:
        log.warning("preparing messages in a helper process failed (%s: %s); preparing them here",
                    type(exc).__name__, exc)
        self.close()
        results = prepare_all(messages, self.rules)
        return lambda: results

    def _helpers_up(self) -> bool:
        """Whether the helpers run; the first call starts them, in the background."""
        if self._pool is not None:
            return True
        if self._starting is None:
            self._starting = threading.Thread(target=self._start_helpers, name="start-helpers", daemon=True)
            self._starting.start()
        return False

    def _start_helpers(self) -> None:
        # spawn, not fork: the worker may hold threads and sockets that a forked child must not share.
        # Not forkserver either: its server process would hold a third copy of the parser's modules
        # (about 12 MB more in all, against the memory cap).
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(self.processes, mp_context=context, initializer=exit_with, initargs=(os.getpid(),))
        try:
            pool.submit(os.getpid).result()  # returns once a helper is up
        except Exception as exc:  # this run prepares everything inline
            log.warning("could not start a helper process (%s: %s); preparing messages here", type(exc).__name__, exc)
            pool.shutdown(wait=False, cancel_futures=True)
            return
        self._pool = pool

    def close(self) -> None:
        starting, self._starting = self._starting, None
        if starting is not None:
            starting.join()
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
