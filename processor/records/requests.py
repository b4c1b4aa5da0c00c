"""Requests, the outlets they come from, and the rows a group of requests adds, written in a few bulk
statements. Takes plain data (row values, story decisions); the caller owns the session and commits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from models import OutboxContent, OutboxMessage, Outcome, Outlet, Pickup, PickupRequest, ReplyKind, Request
from processor.records import outbox
from processor.records.pickups import PickupState, pickup_values, uncounted

def outlet_for(session: Session, key: str, display_name: str, now: datetime) -> Outlet:
    """The outlet a sender's key counts for: its own, or the one it was merged into."""
    return outlets_for(session, {key: display_name}, now)[key]


def outlets_for(session: Session, names: dict[str, str], now: datetime) -> dict[str, Outlet]:
    """{sender key: the outlet it counts for}, given {key: display name}: one query, new ones added in one flush."""
    outlets = {outlet.key: outlet for part in _chunks(list(names))
               for outlet in session.scalars(select(Outlet).where(Outlet.key.in_(part)))}
    created = [Outlet(key=key, display_name=name[:320], created_at=now) for key, name in names.items() if key not in outlets]
    if created:
        session.add_all(created)
        session.flush()
        outlets.update((outlet.key, outlet) for outlet in created)
    for key, outlet in outlets.items():
        outlet = outlets[key] = merge_target(session, outlet)
        if names[key] and not outlet.display_name:
            outlet.display_name = names[key][:320]
    return outlets


def merge_target(session: Session, outlet: Outlet) -> Outlet:
    """Follow merged_into_id to the outlet that stands; a cycle (never made by `merge`) stops where it closes."""
    seen = {outlet.id}
    while outlet.merged_into_id is not None and outlet.merged_into_id not in seen:
        seen.add(outlet.merged_into_id)
        outlet = session.get(Outlet, outlet.merged_into_id)
    return outlet


def find_request(session: Session, message_key: str) -> Request | None:
    return session.scalars(select(Request).where(Request.message_key == message_key)).first()


def requests_by_keys(session: Session, message_keys) -> dict[str, Request]:
    return {request.message_key: request for part in _chunks(list(dict.fromkeys(message_keys)))
            for request in session.scalars(select(Request).where(Request.message_key.in_(part)))}


def record_unreadable(session: Session, *, message_key: str, mailbox: str, size: int, reason: str,
                      now: datetime) -> Request:
    request = Request(message_key=message_key, mailbox=mailbox[:255], processed_at=now, outcome=Outcome.NEEDS_PERSON,
                      needs_person=True, reason=reason, size=size)
    session.add(request)
    session.flush()
    return request


@dataclass
class RequestRef:
    """A request of the group: new (its row is `values`, its id comes with `write`) or already stored."""

    values: dict | None
    id: int | None = None


@dataclass
class ReplyRow:
    request: RequestRef
    values: dict
    raw: bytes             # written to outbox_content
    id: int | None = None


class NewRows:
    """What a group of requests adds to the log, kept as plain rows and written in a few bulk
    statements (`write`): one INSERT per table for the whole group rather than one per object."""

    def __init__(self, known_pickups: dict[tuple[int, int], PickupState]) -> None:
        self.pickups = known_pickups   # by (outlet id, story id); new ones are added as they come
        self.requests: list[RequestRef] = []
        self.links: list[tuple[RequestRef, PickupState, str]] = []
        self.replies: list[ReplyRow] = []

    def add_request(self, values: dict) -> RequestRef:
        ref = RequestRef(values)
        self.requests.append(ref)
        return ref

    def add_pickups(self, request: RequestRef, outlet_id: int, decisions: list[tuple[int, str, str]], *,
                    when: datetime, new_token: Callable[[], str]) -> dict[int, PickupState]:
        """One pickup per (outlet, story), given (story id, decision, reason) for each story; a repeat request
        adds itself to the existing pickup. {story id: pickup}"""
        pickups = {}
        for story_id, decision, reason in decisions:
            pickup = self.pickups.get((outlet_id, story_id))
            if pickup is None:
                pickup = self.pickups[outlet_id, story_id] = PickupState(
                    outlet_id, story_id, new_token(), decision, reason, when, when)
            pickup.decision, pickup.reason, pickup.changed = decision, reason, True
            pickup.first_requested_at = min(pickup.first_requested_at, when)
            pickup.last_requested_at = max(pickup.last_requested_at, when)
            self.links.append((request, pickup, decision))
            pickups[story_id] = pickup
        return pickups

    def add_reply(self, request: RequestRef, *, raw: bytes, message_id: str, recipient: str, now: datetime,
                  kind: str = ReplyKind.REPLY) -> ReplyRow:
        reply = ReplyRow(request, outbox.new_reply(message_id=message_id, recipient=recipient, now=now, kind=kind), raw)
        if request.values is not None:
            request.values["reply_message_id"] = message_id
        self.replies.append(reply)
        return reply

    def write(self, session: Session) -> None:
        _insert_returning_ids(session, Request, [(ref, ref.values) for ref in self.requests if ref.id is None])
        changed = [pickup for pickup in self.pickups.values() if pickup.changed]
        counts = uncounted(session, changed)
        _insert_returning_ids(session, Pickup, [(pickup, pickup_values(pickup)) for pickup in changed if pickup.id is None])
        stored = [{"pickup_id": pickup.id, **pickup_values(pickup)} for pickup in changed if pickup.id is not None]
        if stored:
            table = Pickup.__table__
            session.execute(update(table).where(table.c.id == bindparam("pickup_id")), stored)
        for pickup in changed:
            counts.add(pickup)
        counts.write(session)
        if self.links:
            session.execute(insert(PickupRequest.__table__), [{"pickup_id": pickup.id, "request_id": request.id,
                                                     "decision": decision} for request, pickup, decision in self.links])
        _insert_returning_ids(session, OutboxMessage, [(reply, {**reply.values, "request_id": reply.request.id})
                                                       for reply in self.replies])
        if self.replies:
            session.execute(insert(OutboxContent.__table__), [{"outbox_id": reply.id, "raw": reply.raw} for reply in self.replies])
        for pickup in changed:
            pickup.changed = False
        self.links.clear()


def _insert_returning_ids(session: Session, model, rows: list[tuple[object, dict]]) -> None:
    """INSERT the rows in one statement (batched by the driver) and give each owner its new id.

    On the table, not the mapped class: the ORM's bulk layer would only add time to plain rows."""
    if not rows:
        return
    table = model.__table__
    ids = session.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                          [values for _, values in rows]).scalars()
    for (owner, _), new_id in zip(rows, ids, strict=True):
        owner.id = new_id


def _chunks(items: list, size: int = 5000):
    """Slices short enough for one IN list on every database (SQLite allows 32,766 parameters)."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


def addresses_used(session: Session, outlet_ids: list[int]) -> dict[int, set[str]]:
    """{outlet id: the From addresses its requests came from}."""
    used: dict[int, set[str]] = {outlet_id: set() for outlet_id in outlet_ids}
    for part in _chunks(list(used)):
        for outlet_id, address in session.execute(select(Request.outlet_id, Request.from_address).distinct()
                                                  .where(Request.outlet_id.in_(part))):
            used[outlet_id].add(address)
    return used


def desk_decisions(session: Session, mailbox: str, limit: int = 500) -> list[tuple[int, str, str]]:
    """(request id, Message-ID, MailboxSync) of the decisions taken at the desk that `mailbox` was not told
    of yet, oldest first."""
    return [tuple(row) for row in session.execute(
        select(Request.id, Request.message_id, Request.mailbox_sync)
        .where(Request.mailbox_sync.is_not(None), Request.mailbox == mailbox).order_by(Request.id).limit(limit))]


def desk_decisions_told(session: Session, told: list[tuple[int, str]]) -> None:
    """The mailbox was told these (request id, MailboxSync); one decided again meanwhile keeps its new value."""
    table = Request.__table__
    if told:
        session.execute(update(table).where(table.c.id == bindparam("request_id"),
                                            table.c.mailbox_sync == bindparam("told"))
                        .values(mailbox_sync=None), [{"request_id": i, "told": sync} for i, sync in told])
