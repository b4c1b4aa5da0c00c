"""What every mail source gives the worker: raw messages in batches, and marks on them afterwards."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Protocol


BATCH_BYTES = 16 * 1024 * 1024  # read per batch at most (a single larger message still comes, alone)


class Mark(Enum):
    DONE = "done"          # answered
    LOGGED = "logged"      # logged without a reply (a past pickup, backfilled): done, but nobody was answered
    PERSON = "person"      # flagged for a person, left in the inbox
    IGNORED = "ignored"    # automated mail: never answered


@dataclass(frozen=True)
class Position:
    """How far a folder was handled: every UID below `next_uid` under `uidvalidity` was looked at and is
    finished, except those `waiting`. A source that has no such numbering (a Maildir) has no position."""

    uidvalidity: int
    next_uid: int
    waiting: frozenset[int] = frozenset()


@dataclass(frozen=True)
class RawMessage:
    ref: str              # the source's own handle: an IMAP UID, a Maildir key
    raw: bytes | None     # None when the message is over the size limit and was not downloaded
    size: int
    message_id: str = ""  # of a message not downloaded, read from its header alone where possible


class MailSource(Protocol):
    name: str

    def batches(self, batch_size: int, max_bytes: int, after: Position | None = None) -> Iterator[list[RawMessage]]:
        """The messages to look at, in batches: with `after`, only those past it or waiting there."""

    def position(self, finished: list[str]) -> Position | None:
        """Where the last `batches` leaves the folder, given the refs now `finished` (marked or skipped)."""

    def skip(self, ref: str) -> None:
        """Not a request: leave it exactly as it is and do not fetch it again."""

    def mark(self, refs: list[str], mark: Mark) -> None:
        """Mark these messages, all at once (a command per few thousand messages)."""

    def follow_desk(self, message_ids: list[str], *, for_person: bool) -> int | None:
        """What an editor decided, told to the messages with these Message-IDs: unflagged and marked done
        (`for_person` False), or flagged again; how many changed, None if it should be tried again."""

    def save_sent(self, raws: list[bytes]) -> None:
        """Keep copies of sent replies in the mailbox's Sent folder, all at once where the server allows."""

    def sent_copies(self, message_ids: list[str]) -> set[str]:
        """Which of these replies have a copy in the Sent folder."""

    def wait(self, seconds: float, stop: threading.Event) -> None: ...

    def close(self) -> None: ...
