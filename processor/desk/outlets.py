"""Outlet administration: list, rename, merge, block. The caller owns the session and commits.

A merge is for one newsroom writing from two domains: the pickups and requests of FROM move to
the target (two pickups of the same story become one), and FROM stays behind as an alias, so
its later requests count for the target (`records.requests.outlet_for` follows `merged_into_id`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from models import CorrectionNotice, LiveCopy, Outlet, Pickup, PickupRequest, PixelHit, Request
from processor.records.pickup_counts import PickupCounts
from processor.records.requests import merge_target


class OutletError(Exception):
    """The outlet change cannot be made; the message says why, for the editor."""


@dataclass(frozen=True)
class OutletRow:
    key: str
    display_name: str
    pickups: int
    requests: int
    blocked: bool
    blocked_reason: str
    merged_into: str  # the key this one is an alias of, or ""
    id: int = 0


def list_outlets(session: Session) -> list[OutletRow]:
    pickups = (select(Pickup.outlet_id, func.count().label("n")).group_by(Pickup.outlet_id).subquery())
    requests = (select(Request.outlet_id, func.count().label("n")).group_by(Request.outlet_id).subquery())
    targets = {outlet.id: outlet.key for outlet in session.scalars(select(Outlet))}
    rows = session.execute(
        select(Outlet, func.coalesce(pickups.c.n, 0), func.coalesce(requests.c.n, 0))
        .outerjoin(pickups, pickups.c.outlet_id == Outlet.id)
        .outerjoin(requests, requests.c.outlet_id == Outlet.id)
        .order_by(Outlet.key)
    ).all()
    return [OutletRow(outlet.key, outlet.display_name, n_pickups, n_requests, outlet.blocked, outlet.blocked_reason,
                      targets.get(outlet.merged_into_id, ""), outlet.id) for outlet, n_pickups, n_requests in rows]


def find_outlet(session: Session, key: str) -> Outlet:
    outlet = session.scalars(select(Outlet).where(Outlet.key == key.strip().lower())).first()
    if outlet is None:
        raise OutletError(f"there is no outlet {key!r} (see `republish outlets`)")
    return outlet


def rename(session: Session, key: str, display_name: str) -> str:
    outlet = find_outlet(session, key)
    outlet.display_name = display_name.strip()[:320]
    session.flush()
    return f"{outlet.key} is now shown as {outlet.display_name!r}"


def block(session: Session, key: str, reason: str) -> str:
    outlet = find_outlet(session, key)
    if not reason.strip():
        raise OutletError("say why with --reason: it goes into every flagged request from this outlet")
    outlet.blocked, outlet.blocked_reason = True, reason.strip()
    session.flush()
    note = f" (an alias of {merge_target(session, outlet).key}, whose block decides)" if outlet.merged_into_id else ""
    return f"{outlet.key} blocked: its requests now go to a person{note}"


def unblock(session: Session, key: str) -> str:
    outlet = find_outlet(session, key)
    if not outlet.blocked:
        return f"{outlet.key} was not blocked"
    outlet.blocked, outlet.blocked_reason = False, ""
    session.flush()
    return f"{outlet.key} unblocked: its requests are answered automatically again"


def merge(session: Session, from_key: str, into_key: str) -> str:
    source = find_outlet(session, from_key)
    target = merge_target(session, find_outlet(session, into_key))
    if target.id == source.id:
        raise OutletError(f"{into_key} is {from_key} (or an alias of it): nothing to merge")
    if source.merged_into_id == target.id:
        raise OutletError(f"{source.key} is already an alias of {target.key}")
    moved = combined = 0
    counts = PickupCounts()
    for pickup in list(session.scalars(select(Pickup).where(Pickup.outlet_id == source.id))):
        twin = session.scalars(select(Pickup).where(Pickup.outlet_id == target.id,
                                                    Pickup.story_id == pickup.story_id)).first()
        counts.remove(pickup)
        if twin is None:
            pickup.outlet_id = target.id
            counts.add(pickup)
            moved += 1
        else:
            counts.remove(twin)
            _combine(session, pickup, into=twin)
            counts.add(twin)
            combined += 1
    session.flush()
    counts.write(session)
    requests = session.execute(update(Request).where(Request.outlet_id == source.id)
                               .values(outlet_id=target.id)).rowcount
    # Aliases of the merged outlet become aliases of the target, so no chain is ever longer than one.
    session.execute(update(Outlet).where(Outlet.merged_into_id == source.id).values(merged_into_id=target.id))
    source.merged_into_id = target.id
    session.flush()
    session.expire_all()
    return (f"{source.key} merged into {target.key}: {moved} pickup(s) moved, {combined} combined with the "
            f"target's pickup of the same story, {requests} request(s) moved; {source.key} is now an alias")


def _combine(session: Session, pickup: Pickup, *, into: Pickup) -> None:
    """Two pickups of one story become the target's: its requests, its dates, the latest decision."""
    already = set(session.scalars(select(PickupRequest.request_id).where(PickupRequest.pickup_id == into.id)))
    links = session.execute(select(PickupRequest.request_id, PickupRequest.decision)
                            .where(PickupRequest.pickup_id == pickup.id)).all()
    session.execute(delete(PickupRequest).where(PickupRequest.pickup_id == pickup.id))
    session.add_all(PickupRequest(pickup_id=into.id, request_id=request_id, decision=decision)
                    for request_id, decision in links if request_id not in already)
    if pickup.last_requested_at > into.last_requested_at:
        into.decision, into.reason = pickup.decision, pickup.reason
    into.first_requested_at = min(into.first_requested_at, pickup.first_requested_at)
    into.last_requested_at = max(into.last_requested_at, pickup.last_requested_at)
    # The pixel and live copies recorded under the old pickup's token stay counted, now for the target.
    session.execute(update(PixelHit).where(PixelHit.pickup_id == pickup.id).values(pickup_id=into.id))
    into.viewed = into.viewed or pickup.viewed
    session.execute(update(LiveCopy).where(LiveCopy.pickup_id == pickup.id).values(pickup_id=into.id))
    # Correction notices follow too; where both were told of one revision, the target's record stands.
    told = set(session.scalars(select(CorrectionNotice.revision_id).where(CorrectionNotice.pickup_id == into.id)))
    session.execute(update(CorrectionNotice).where(CorrectionNotice.pickup_id == pickup.id,
                                                   CorrectionNotice.revision_id.not_in(told))
                    .values(pickup_id=into.id))
    session.execute(delete(CorrectionNotice).where(CorrectionNotice.pickup_id == pickup.id))
    session.flush()
    session.expire(pickup, ["requests"])
    session.delete(pickup)
    session.flush()
