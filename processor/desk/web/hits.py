"""Pixel hits on their way to the database: a bounded in-memory queue written in small batches.

A hit is answered at once and only queued here; a background task writes the queue every second or
every 200 hits, whichever comes first. When the queue is full (the database is slow or down during
a flood) further hits are dropped and counted, rather than slowing every response down.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from urllib.parse import urlsplit

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from models import Pickup, PixelHit, Story
from processor.records.pickup_counts import mark_viewed
from processor.records.pickups import record_live_copy

log = logging.getLogger("processor.desk.web")

BATCH_SIZE = 200
FLUSH_SECONDS = 1.0


@dataclass(frozen=True)
class Hit:
    token: str
    story_id: int | None
    hit_at: datetime
    page_url: str
    page_host: str
    counted: bool
    reason: str


class HitQueue:
    def __init__(self, max_size: int = 10_000) -> None:
        self.max_size = max_size
        self._items: deque[Hit] = deque()
        self.dropped = 0
        self.written = 0

    def put(self, hit: Hit) -> bool:
        if len(self._items) >= self.max_size:
            self.dropped += 1
            return False
        self._items.append(hit)
        return True

    def take(self, limit: int = BATCH_SIZE) -> list[Hit]:
        batch = []
        while self._items and len(batch) < limit:
            batch.append(self._items.popleft())
        return batch

    def __len__(self) -> int:
        return len(self._items)


def write_hits(session: Session, hits: list[Hit]) -> int:
    """Insert a batch in one statement; the token names the pickup (and so its story). Unknown tokens
    and story ids are kept as given, without a pickup, so a forged token cannot break the batch."""
    if not hits:
        return 0
    tokens = {h.token for h in hits if h.token}
    pickups = dict(session.execute(select(Pickup.token, Pickup.id).where(Pickup.token.in_(tokens))).all()) if tokens else {}
    story_of = dict(session.execute(select(Pickup.id, Pickup.story_id).where(Pickup.id.in_(pickups.values()))).all()) \
        if pickups else {}
    claimed = {h.story_id for h in hits if h.story_id is not None}
    stories = set(session.scalars(select(Story.id).where(Story.id.in_(claimed)))) if claimed else set()
    rows = []
    for hit in hits:
        pickup_id = pickups.get(hit.token)
        story_id = story_of[pickup_id] if pickup_id else (hit.story_id if hit.story_id in stories else None)
        rows.append({"pickup_id": pickup_id, "story_id": story_id, "token": hit.token[:64], "hit_at": hit.hit_at,
                     "page_url": hit.page_url, "page_host": hit.page_host, "counted": hit.counted,
                     "reason": hit.reason})
    session.execute(insert(PixelHit), rows)
    mark_viewed(session, {row["pickup_id"] for row in rows if row["counted"] and row["pickup_id"]})
    # A counted hit from a real page (not just a site's origin, which is all many browsers send) shows
    # where the copy went live, for `republish verify` to check.
    pages = {(row["pickup_id"], row["story_id"], row["page_url"]) for row in rows
             if row["counted"] and row["pickup_id"] and urlsplit(row["page_url"]).path.strip("/")}
    for pickup_id, story_id, page_url in pages:
        record_live_copy(session, story_id=story_id, url=page_url, source="pixel", now=hits[0].hit_at,
                         pickup_id=pickup_id)
    return len(rows)
