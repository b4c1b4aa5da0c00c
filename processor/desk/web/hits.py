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

from models import Outlet, Pickup, PixelHit, Story
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
        self.dropped = 0     # the queue was full, or the database away
        self.limited = 0     # over a per-client or per-token limit: never queued
        self.unknown = 0     # naming no pickup or story: counted here, never stored
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


def write_hits(session: Session, hits: list[Hit]) -> tuple[int, int]:
    """Insert a batch in one statement; the token names the pickup (and so its story). A hit naming no
    pickup and no story is not stored, only counted: made-up tokens cannot fill the table. (hits
    written, hits unknown)."""
    if not hits:
        return 0, 0
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
        if story_id is None:
            continue
        rows.append({"pickup_id": pickup_id, "story_id": story_id, "token": hit.token[:64], "hit_at": hit.hit_at,
                     "page_url": hit.page_url, "page_host": hit.page_host, "counted": hit.counted,
                     "reason": hit.reason})
    if rows:
        session.execute(insert(PixelHit), rows)
    mark_viewed(session, {row["pickup_id"] for row in rows if row["counted"] and row["pickup_id"]})
    # A counted hit from a real page (not just a site's origin, which is all many browsers send) on the
    # outlet's own site shows where the copy went live, for `republish verify` to check. Anyone holding
    # a token can send any Referer: a page elsewhere is not taken for the outlet's copy.
    outlets = dict(session.execute(select(Pickup.id, Outlet.key).join(Outlet, Pickup.outlet_id == Outlet.id)
                                   .where(Pickup.id.in_({row["pickup_id"] for row in rows if row["pickup_id"]})))
                   .all()) if pickups else {}
    pages = {(row["pickup_id"], row["story_id"], row["page_url"]) for row in rows
             if row["counted"] and row["pickup_id"] and urlsplit(row["page_url"]).path.strip("/")
             and _outlets_host(row["page_host"], outlets.get(row["pickup_id"], ""))}
    for pickup_id, story_id, page_url in pages:
        record_live_copy(session, story_id=story_id, url=page_url, source="pixel", now=hits[0].hit_at,
                         pickup_id=pickup_id)
    return len(rows), len(hits) - len(rows)


def _outlets_host(host: str, outlet_key: str) -> bool:
    """The host is the outlet's own (its domain or under it); a free-mail outlet has no site we know."""
    return bool(host) and "@" not in outlet_key and (host == outlet_key or host.endswith("." + outlet_key))
