"""Pickups (one per outlet and story), the pickup log, and where copies went live. The caller commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import LiveCopy, Outlet, Pickup, PickupRequest, Request, Story
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


@dataclass(frozen=True)
class PickupRow:
    outlet: str
    story_url: str
    story_title: str
    decision: str
    first_requested_at: datetime
    last_requested_at: datetime
    requests: int
    reply_message_ids: tuple[str, ...]


def list_pickups(session: Session, *, outlet: str | None = None, story_key: str | None = None,
                 since: datetime | None = None, until: datetime | None = None, decision: str | None = None,
                 limit: int | None = None) -> list[PickupRow]:
    """Pickups, latest first; `since`/`until` keep those requested (first or again) within that span."""
    query = (
        select(Pickup, Outlet, Story)
        .join(Outlet, Pickup.outlet_id == Outlet.id)
        .join(Story, Pickup.story_id == Story.id)
        .order_by(Pickup.last_requested_at.desc(), Pickup.id.desc())
    )
    if outlet:
        query = query.where(Outlet.key == outlet.strip().lower())
    if story_key:
        query = query.where(Story.url_key == story_key)
    if since:
        query = query.where(Pickup.last_requested_at >= since)
    if until:
        query = query.where(Pickup.first_requested_at < until)
    if decision:
        query = query.where(Pickup.decision == decision)
    if limit:
        query = query.limit(limit)
    found = session.execute(query).all()
    # The requests behind these pickups in a few queries, not one per pickup.
    requests: dict[int, list[str | None]] = {}
    ids = [pickup.id for pickup, _, _ in found]
    for start in range(0, len(ids), 5000):
        for pickup_id, reply_id in session.execute(
                select(PickupRequest.pickup_id, Request.reply_message_id)
                .join(Request, PickupRequest.request_id == Request.id)
                .where(PickupRequest.pickup_id.in_(ids[start:start + 5000]))
                .order_by(PickupRequest.request_id)):
            requests.setdefault(pickup_id, []).append(reply_id)
    return [PickupRow(outlet_row.key, story.canonical_url, story.title, pickup.decision, pickup.first_requested_at,
                      pickup.last_requested_at, len(requests.get(pickup.id, ())),
                      tuple(reply for reply in requests.get(pickup.id, ()) if reply))
            for pickup, outlet_row, story in found]


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
