"""Pickups (one per outlet and story) as the worker records them, and where copies went live. The caller commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import LiveCopy, Pickup
from processor.records.pickup_counts import PickupCounts
from processor.urls import url_key

@dataclass
class PickupState:
    """A pickup as plain data while a group of requests is recorded (`id` is None until it is written)."""

    outlet_id: int
    story_id: int
    token: str
    decision: str
    reason: str
    first_requested_at: datetime
    last_requested_at: datetime
    id: int | None = None
    changed: bool = False
    viewed: bool = False


def uncounted(session: Session, pickups: list[PickupState]) -> PickupCounts:
    """Counts with the stored pickups taken out as the database has them (and their `viewed`, which only
    the pixel writer sets), read just before this transaction changes them: on PostgreSQL `pickups_for`
    locked these rows; on SQLite the worker's new requests, written first, hold the one write lock."""
    counts = PickupCounts()
    stored = {pickup.id: pickup for pickup in pickups if pickup.id is not None}
    for part in _chunks(list(stored)):
        for row in session.execute(select(Pickup.id, Pickup.outlet_id, Pickup.story_id, Pickup.first_requested_at,
                                          Pickup.decision, Pickup.viewed).where(Pickup.id.in_(part))):
            counts.remove(row)
            stored[row.id].viewed = row.viewed
    return counts


def pickup_values(pickup: PickupState) -> dict:
    return {"outlet_id": pickup.outlet_id, "story_id": pickup.story_id, "token": pickup.token,
            "decision": pickup.decision, "reason": pickup.reason, "first_requested_at": pickup.first_requested_at,
            "last_requested_at": pickup.last_requested_at}


def pickups_for(session: Session, pairs) -> dict[tuple[int, int], PickupState]:
    """{(outlet id, story id): pickup} for the pairs that have one, locked until the transaction ends."""
    wanted = set(pairs)
    outlets = sorted({outlet_id for outlet_id, _ in wanted})
    stories = sorted({story_id for _, story_id in wanted})
    columns = (Pickup.outlet_id, Pickup.story_id, Pickup.token, Pickup.decision, Pickup.reason,
               Pickup.first_requested_at, Pickup.last_requested_at, Pickup.id)
    found = {}
    for part in _chunks(outlets):
        query = (select(*columns).where(Pickup.outlet_id.in_(part), Pickup.story_id.in_(stories))
                 .order_by(Pickup.id).with_for_update())
        for row in session.execute(query):
            if (row.outlet_id, row.story_id) in wanted:
                found[row.outlet_id, row.story_id] = PickupState(*row)
    return found


def record_live_copy(session: Session, *, story_id: int, url: str, source: str, now: datetime,
                     pickup_id: int | None = None) -> LiveCopy | None:
    """Where a copy of the story went live (one row per story and page, whoever told us first)."""
    key = url_key(url)
    if not key:
        return None
    copy = session.scalars(select(LiveCopy).where(LiveCopy.story_id == story_id, LiveCopy.url_key == key[:2048])).first()
    if copy is None:
        copy = LiveCopy(story_id=story_id, url=url[:2048], url_key=key[:2048], source=source, first_seen_at=now,
                        status="unchecked", problems="")
        session.add(copy)
    if copy.pickup_id is None:
        copy.pickup_id = pickup_id
    session.flush()
    return copy


def _chunks(items: list, size: int = 5000):
    """Slices short enough for one IN list on every database (SQLite allows 32,766 parameters)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]
