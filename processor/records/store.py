"""Recording requests, pickups and replies; reading the pickup log. The caller owns the session and commits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.orm import Session, selectinload

from models import LiveCopy, OutboxContent, OutboxMessage, Outlet, Outcome, Pickup, PickupRequest, Request, SendStatus
from processor.pipeline.decide import Plan
from processor.pipeline.parse import Inbound
from processor.records.pickup_counts import PickupCounts
from processor.urls import url_key


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


def request_values(inbound: Inbound, plan: Plan, *, outlet_id: int | None, mailbox: str, now: datetime) -> dict:
    """The row a request is logged as."""
    return {
        "message_key": inbound.message_key,
        "content_digest": inbound.content_digest,
        "message_id": inbound.message_id[:998],
        "mailbox": mailbox[:255],
        "outlet_id": outlet_id,
        "from_address": inbound.from_address[:320],
        "reply_to": inbound.reply_to_address[:320],
        "subject": inbound.subject[:998],
        "sent_at": inbound.date,
        "processed_at": now,
        "outcome": Outcome.PENDING if plan.reply else plan.outcome,
        "needs_person": plan.needs_person,
        "reason": plan.reason,
        "size": inbound.size,
        "reply_message_id": None,
    }


def record_unreadable(session: Session, *, message_key: str, mailbox: str, size: int, reason: str,
                      now: datetime) -> Request:
    request = Request(message_key=message_key, mailbox=mailbox[:255], processed_at=now, outcome=Outcome.NEEDS_PERSON,
                      needs_person=True, reason=reason, size=size)
    session.add(request)
    session.flush()
    return request


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

    def add_pickups(self, request: RequestRef, outlet_id: int, plan: Plan, *, when: datetime,
                    new_token: Callable[[], str]) -> dict[int, PickupState]:
        """One pickup per (outlet, story); a repeat request adds itself to the existing pickup. {story id: pickup}"""
        pickups = {}
        for decision in plan.stories:
            pickup = self.pickups.get((outlet_id, decision.story.id))
            if pickup is None:
                pickup = self.pickups[outlet_id, decision.story.id] = PickupState(
                    outlet_id, decision.story.id, new_token(), decision.decision, decision.reason, when, when)
            pickup.decision, pickup.reason, pickup.changed = decision.decision, decision.reason, True
            pickup.first_requested_at = min(pickup.first_requested_at, when)
            pickup.last_requested_at = max(pickup.last_requested_at, when)
            self.links.append((request, pickup, decision.decision))
            pickups[decision.story.id] = pickup
        return pickups

    def add_reply(self, request: RequestRef, *, raw: bytes, message_id: str, recipient: str, now: datetime) -> ReplyRow:
        reply = ReplyRow(request, {"message_id": message_id, "recipients": recipient,
                                   "status": SendStatus.PENDING, "attempts": 0, "last_error": "", "created_at": now,
                                   "next_attempt_at": now}, raw)
        if request.values is not None:
            request.values["reply_message_id"] = message_id
        self.replies.append(reply)
        return reply

    def write(self, session: Session) -> None:
        _insert_returning_ids(session, Request, [(ref, ref.values) for ref in self.requests if ref.id is None])
        changed = [pickup for pickup in self.pickups.values() if pickup.changed]
        counts = _uncounted(session, changed)
        _insert_returning_ids(session, Pickup, [(pickup, _pickup_values(pickup)) for pickup in changed if pickup.id is None])
        stored = [{"pickup_id": pickup.id, **_pickup_values(pickup)} for pickup in changed if pickup.id is not None]
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


def _uncounted(session: Session, pickups: list[PickupState]) -> PickupCounts:
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


def _pickup_values(pickup: PickupState) -> dict:
    return {"outlet_id": pickup.outlet_id, "story_id": pickup.story_id, "token": pickup.token,
            "decision": pickup.decision, "reason": pickup.reason, "first_requested_at": pickup.first_requested_at,
            "last_requested_at": pickup.last_requested_at}


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


def replies_to_recipients_since(session: Session, recipients, since: datetime) -> dict[str, int]:
    """{address: replies queued or sent to it since then} (the per-sender daily cap); refused ones do not count."""
    counts: dict[str, int] = {}
    for part in _chunks(list(dict.fromkeys(recipients))):
        counts.update(session.execute(
            select(OutboxMessage.recipients, func.count()).where(
                OutboxMessage.recipients.in_(part), OutboxMessage.created_at >= since,
                OutboxMessage.status != SendStatus.FAILED).group_by(OutboxMessage.recipients)).all())
    return counts


def replies_due(session: Session, now: datetime, limit: int, exclude=()) -> list[int]:
    """Replies whose (next) attempt is due, then any left "sending" (by a worker that may have died, or
    that is sending them right now), leaving out `exclude` (this worker's own, on their way)."""
    due = or_(and_(OutboxMessage.status == SendStatus.PENDING, OutboxMessage.next_attempt_at <= now),
              OutboxMessage.status == SendStatus.SENDING)
    if exclude:
        due = and_(due, OutboxMessage.id.notin_(list(exclude)))
    sending_last = case((OutboxMessage.status == SendStatus.SENDING, 1), else_=0)
    return list(session.scalars(select(OutboxMessage.id).where(due)
                                .order_by(sending_last, OutboxMessage.next_attempt_at).limit(limit)))


def next_attempt_at(session: Session) -> datetime | None:
    return session.scalar(select(func.min(OutboxMessage.next_attempt_at)).where(OutboxMessage.status == SendStatus.PENDING))


def reply_states(session: Session, outbox_ids: list[int]) -> dict[int, tuple[str, bool]]:
    """{outbox id: (send status, whether its request needs a person)}"""
    if not outbox_ids:
        return {}
    rows = session.execute(select(OutboxMessage.id, OutboxMessage.status, Request.needs_person)
                           .join(Request, OutboxMessage.request_id == Request.id)
                           .where(OutboxMessage.id.in_(outbox_ids))).all()
    return {row_id: (status, needs_person) for row_id, status, needs_person in rows}


def outbox_by_message_ids(session: Session, message_ids: tuple[str, ...]) -> OutboxMessage | None:
    if not message_ids:
        return None
    return session.scalars(select(OutboxMessage).where(OutboxMessage.message_id.in_(message_ids))).first()


def outbox_rows(session: Session, outbox_ids: list[int]) -> list[OutboxMessage]:
    """The replies, with their requests (whose outcome a failure settles), in id order."""
    if not outbox_ids:
        return []
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(outbox_ids))
                                .options(selectinload(OutboxMessage.request)).order_by(OutboxMessage.id)))


def outbox_raws(session: Session, outbox_ids: list[int]) -> dict[int, bytes]:
    if not outbox_ids:
        return {}
    return dict(session.execute(select(OutboxContent.outbox_id, OutboxContent.raw)
                                .where(OutboxContent.outbox_id.in_(outbox_ids))).all())


@dataclass(frozen=True)
class OutboxState:
    """What choosing a reply for sending looks at: a light read, not the whole row."""

    id: int
    status: SendStatus
    next_attempt_at: datetime | None
    created_at: datetime
    recipients: str


def outbox_states(session: Session, outbox_ids: list[int]) -> list[OutboxState]:
    """The replies' states, in id order."""
    outbox = OutboxMessage.__table__
    columns = (outbox.c.id, outbox.c.status, outbox.c.next_attempt_at, outbox.c.created_at, outbox.c.recipients)
    return [OutboxState(*row) for row in session.execute(
        select(*columns).where(outbox.c.id.in_(outbox_ids)).order_by(outbox.c.id))]


def mark_replies_sending(session: Session, outbox_ids: list[int], *, due_by: datetime) -> set[int]:
    """Those of the replies still pending and due by `due_by` are now "sending": their ids (another worker
    may have sent the rest, or put them off for a retry)."""
    if not outbox_ids:
        return set()
    outbox = OutboxMessage.__table__
    due = or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= due_by)
    return set(session.scalars(update(outbox).where(outbox.c.id.in_(outbox_ids), outbox.c.status == SendStatus.PENDING, due)
                               .values(status=SendStatus.SENDING, attempts=outbox.c.attempts + 1)
                               .returning(outbox.c.id)))


def mark_replies_sent(session: Session, accepted: dict[int, datetime]) -> dict[int, str]:
    """The server took these replies (at these times): sent, and their requests answered. -> {id: Message-ID}"""
    if not accepted:
        return {}
    ids = list(accepted)
    outbox, requests = OutboxMessage.__table__, Request.__table__
    for accepted_at in set(accepted.values()):  # one statement per moment: a round is accepted at once
        session.execute(update(outbox).where(outbox.c.id.in_([i for i in ids if accepted[i] == accepted_at]))
                        .values(status=SendStatus.SENT, sent_at=accepted_at, next_attempt_at=None))
    rows = session.execute(select(outbox.c.id, outbox.c.request_id, outbox.c.message_id)
                           .where(outbox.c.id.in_(ids))).all()
    session.execute(update(requests).where(requests.c.id.in_([request_id for _, request_id, _ in rows]))
                    .values(outcome=Outcome.ANSWERED))
    return {outbox_id: message_id for outbox_id, _, message_id in rows}


def mark_reply_retry(outbox: OutboxMessage, error: str, *, next_attempt_at: datetime) -> None:
    outbox.status = SendStatus.PENDING
    outbox.last_error = error[:2000]
    outbox.next_attempt_at = next_attempt_at


def mark_reply_failed(outbox: OutboxMessage, error: str, *, status: SendStatus = SendStatus.FAILED) -> None:
    """The reply did not (or may not have) reached the partner: the request goes to a person for good."""
    outbox.status = status
    outbox.last_error = error[:2000]
    outbox.next_attempt_at = None
    request = outbox.request
    if status in (SendStatus.FAILED, SendStatus.UNKNOWN):
        request.outcome = Outcome.NEEDS_PERSON
    request.needs_person = True
    request.reason += f"; {error}"


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
