"""The folder ledger: how far each mailbox folder was handled. The caller owns the session and commits.

Several workers may write it (PostgreSQL): the row is locked while it is merged, the high-water mark
only ever moves up, and a UID one worker left waiting stays waiting until a worker that looked at it
found it finished. So a merge can make a pass look at a message again, never skip one.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import FolderLedger

MAX_WAITING = 10_000  # UIDs kept as waiting; past that the mark is not moved (a full search finds the rest)


class Position(NamedTuple):
    """Every UID below `next_uid` under `uidvalidity` was looked at and is finished, except `waiting`."""

    uidvalidity: int
    next_uid: int
    waiting: frozenset[int]


def load(session: Session, mailbox: str) -> Position | None:
    row = session.get(FolderLedger, mailbox)
    return None if row is None else Position(row.uidvalidity, row.next_uid, _uids(row.waiting))


def save(session: Session, mailbox: str, seen: Position, finished: frozenset[int], now: datetime) -> Position:
    """Merge what one pass saw (`seen`: the mark it searched up to, the UIDs it left waiting) and the UIDs it
    found `finished` into the folder's row; the position now recorded."""
    row = session.scalars(select(FolderLedger).where(FolderLedger.mailbox == mailbox).with_for_update()).first()
    if row is None or row.uidvalidity != seen.uidvalidity:  # a renumbered folder: the old UIDs mean nothing
        merged = seen
    else:
        waiting = (seen.waiting | _uids(row.waiting)) - finished
        merged = Position(seen.uidvalidity, max(seen.next_uid, row.next_uid), frozenset(waiting))
    if len(merged.waiting) > MAX_WAITING:  # something keeps most messages waiting: do not pretend to track it
        return merged if row is None else load(session, mailbox)
    text = ",".join(str(uid) for uid in sorted(merged.waiting))
    if row is None:
        session.add(FolderLedger(mailbox=mailbox, uidvalidity=merged.uidvalidity, next_uid=merged.next_uid,
                                 waiting=text, updated_at=now))
    else:
        row.uidvalidity, row.next_uid, row.waiting, row.updated_at = (merged.uidvalidity, merged.next_uid, text, now)
    session.flush()
    return merged


def _uids(text: str) -> frozenset[int]:
    return frozenset(int(part) for part in text.split(",") if part.strip().isdigit())
