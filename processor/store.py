"""Recording requests, pickups and replies; reading the pickup log. The caller owns the session and commits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import OutboxMessage, Outlet, Outcome, Pickup, PickupRequest, Request, Story
from processor.decide import Plan
from processor.parse import Inbound


def outlet_for(session: Session, key: str, display_name: str, now: datetime) -> Outlet:
    outlet = session.scalars(select(Outlet).where(Outlet.key == key)).first()
    if outlet is None:
        outlet = Outlet(key=key, display_name=display_name[:320], created_at=now)
        session.add(outlet)
        session.flush()
    elif display_name and not outlet.display_name:
        outlet.display_name = display_name[:320]
    return outlet


def find_request(session: Session, message_key: str) -> Request | None:
    return session.scalars(select(Request).where(Request.message_key == message_key)).first()


def record_request(session: Session, inbound: Inbound, plan: Plan, *, outlet: Outlet | None, mailbox: str,
                   now: datetime) -> Request:
    request = Request(
        message_key=inbound.message_key,
        message_id=inbound.message_id[:998],
        mailbox=mailbox[:255],
        outlet=outlet,
        from_address=inbound.from_address[:320],
        reply_to=inbound.reply_to_address[:320],
        subject=inbound.subject[:998],
        sent_at=inbound.date,
        processed_at=now,
        outcome=Outcome.PENDING if plan.reply else plan.outcome,
        needs_person=plan.needs_person,
        reason=plan.reason,
        size=inbound.size,
    )
    session.add(request)
    session.flush()
    return request


def record_unreadable(session: Session, *, message_key: str, mailbox: str, size: int, reason: str,
                      now: datetime) -> Request:
    request = Request(message_key=message_key, mailbox=mailbox[:255], processed_at=now, outcome=Outcome.NEEDS_PERSON,
                      needs_person=True, reason=reason, size=size)
    session.add(request)
    session.flush()
    return request


def record_pickups(session: Session, request: Request, outlet: Outlet, plan: Plan, *, now: datetime,
                   new_token: Callable[[], str]) -> dict[int, Pickup]:
    """One pickup per (outlet, story); a repeat request adds itself to the existing pickup."""
    pickups: dict[int, Pickup] = {}
    when = request.sent_at or now
    for decision in plan.stories:
        pickup = session.scalars(
            select(Pickup).where(Pickup.outlet_id == outlet.id, Pickup.story_id == decision.story.id)
        ).first()
        if pickup is None:
            pickup = Pickup(outlet_id=outlet.id, story_id=decision.story.id, token=new_token(),
                            first_requested_at=when, last_requested_at=when)
            session.add(pickup)
        pickup.decision = decision.decision
        pickup.reason = decision.reason
        pickup.first_requested_at = min(pickup.first_requested_at, when)
        pickup.last_requested_at = max(pickup.last_requested_at, when)
        session.flush()
        session.add(PickupRequest(pickup_id=pickup.id, request_id=request.id, decision=decision.decision))
        pickups[decision.story.id] = pickup
    session.flush()
    return pickups


def queue_reply(session: Session, request: Request, *, raw: bytes, message_id: str, recipient: str,
                now: datetime) -> OutboxMessage:
    outbox = OutboxMessage(request_id=request.id, message_id=message_id, recipients=recipient, raw=raw,
                           status="pending", created_at=now)
    session.add(outbox)
    request.reply_message_id = message_id
    session.flush()
    return outbox


def mark_reply_sent(outbox: OutboxMessage, now: datetime) -> None:
    outbox.status = "sent"
    outbox.sent_at = now
    outbox.attempts += 1
    outbox.request.outcome = Outcome.ANSWERED


def mark_reply_failed(outbox: OutboxMessage, error: str, *, permanent: bool) -> None:
    """A send attempt failed; a permanent refusal hands the request to a person for good."""
    outbox.attempts += 1
    outbox.last_error = error[:2000]
    if permanent:
        outbox.status = "failed"
        request = outbox.request
        request.outcome = Outcome.NEEDS_PERSON
        request.needs_person = True
        request.reason += f"; reply refused by the mail server: {error}"


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
                 since: datetime | None = None, decision: str | None = None, limit: int | None = None) -> list[PickupRow]:
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
    if decision:
        query = query.where(Pickup.decision == decision)
    if limit:
        query = query.limit(limit)
    rows = []
    for pickup, outlet_row, story in session.execute(query).all():
        replies = tuple(r.request.reply_message_id for r in pickup.requests if r.request.reply_message_id)
        rows.append(PickupRow(outlet_row.key, story.canonical_url, story.title, pickup.decision,
                              pickup.first_requested_at, pickup.last_requested_at, len(pickup.requests), replies))
    return rows
