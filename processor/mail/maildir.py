"""A local Maildir as the mailbox (Python's `mailbox` module): the demo, and servers that deliver to Maildir.

New mail is what the delivery agent put in `new/`. Once handled, a message moves to `cur/` with
the Maildir flag R (answered), S (logged without a reply) or F (needs a person); automated mail moves
with no flag.
"""

from __future__ import annotations

import logging
import mailbox
import threading
from collections.abc import Iterator
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

from processor.mail.mailbox import BATCH_BYTES, Mark, Position, RawMessage

log = logging.getLogger(__name__)
HEADER_BYTES = 64 * 1024  # read of each message to find it by its Message-ID
# R (replied) only for what was answered: a backfilled request was logged, not replied to (S, seen).
_FLAGS = {Mark.DONE: "R", Mark.LOGGED: "S", Mark.PERSON: "F", Mark.IGNORED: ""}


class MaildirSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"maildir:{path}"
        self.maildir = mailbox.Maildir(path, factory=None, create=True)
        self._skipped: set[str] = set()

    def batches(self, batch_size: int, max_bytes: int, after: Position | None = None) -> Iterator[list[RawMessage]]:
        new_dir = self.path / "new"
        keys = []
        for entry in sorted(new_dir.iterdir(), key=lambda p: p.name) if new_dir.is_dir() else []:
            key = entry.name.split(":")[0]
            if key not in self._skipped and not entry.name.startswith("."):
                keys.append((key, entry))
        batch: list[RawMessage] = []
        held = 0
        for key, entry in keys:
            try:
                size = entry.stat().st_size
                if batch and (len(batch) >= batch_size or held + min(size, max_bytes) > BATCH_BYTES):
                    yield batch
                    batch, held = [], 0
                raw = entry.read_bytes() if size <= max_bytes else None
            except FileNotFoundError:
                continue
            batch.append(RawMessage(key, raw, size))
            held += len(raw or b"")
        if batch:
            yield batch

    def position(self, finished: list[str]) -> Position | None:
        return None  # what was handled leaves new/, so there is nothing to remember

    def skip(self, ref: str) -> None:
        self._skipped.add(ref)

    def mark(self, refs: list[str], mark: Mark) -> None:
        for ref in refs:
            try:
                message = self.maildir.get_message(ref)
            except KeyError:  # moved or deleted by someone else meanwhile; the database has the outcome
                log.warning("Maildir message %s is gone: not marked", ref)
                continue
            message.set_subdir("cur")
            if _FLAGS[mark]:
                message.add_flag(_FLAGS[mark])
            self.maildir[ref] = message

    def follow_desk(self, message_ids: list[str], *, for_person: bool) -> int | None:
        """F (flagged) again for a reopened request; for a resolved one F goes and S comes. Only handled
        messages (in cur/) are touched: one still in new/ waits for the worker, whatever it resembles; and a
        message with no Message-ID is never matched (every such message would be)."""
        wanted = {message_id for message_id in message_ids if message_id}
        changed = 0
        for key in self.maildir.iterkeys() if wanted else ():
            try:
                with self.maildir.get_file(key) as file:
                    headers = BytesHeaderParser(policy=compat32).parsebytes(file.read(HEADER_BYTES))
            except (KeyError, FileNotFoundError):
                continue
            if str(headers.get("Message-ID", "")).strip().strip("<>") not in wanted:
                continue
            message = self.maildir.get_message(key)
            if message.get_subdir() != "cur":
                continue
            if for_person:
                message.add_flag("F")
            else:
                message.remove_flag("F")
                message.add_flag("S")
            message.set_subdir("cur")
            self.maildir[key] = message
            changed += 1
        return changed

    def save_sent(self, raws: list[bytes]) -> None:
        return None  # the outbox folder (or the SMTP server) keeps the copy

    def sent_copies(self, message_ids: list[str]) -> set[str]:
        return set()  # no Sent folder here: a reply left in doubt goes to a person

    def wait(self, seconds: float, stop: threading.Event) -> None:
        stop.wait(seconds)

    def close(self) -> None:
        self.maildir.close()
