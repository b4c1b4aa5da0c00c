"""The inbound log: every request with its outcome and the reason for it, and one request in full."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Outlet, Pickup, PickupRequest, Request, Story


@dataclass(frozen=True)
class RequestRow:
    id: int
    processed_at: datetime
    outlet: str
    from_address: str
    subject: str
    outcome: str
    needs_person: bool
    resolution: str
    reason: str


@dataclass(frozen=True)
class RequestDetail:
    row: RequestRow
    message_id: str
    reply_to: str
    sent_at: datetime | None
    mailbox: str
    resolved_by: str
    resolved_at: datetime | None
    pickups: tuple[tuple[str, str, str], ...]  # (story url, title, decision this request recorded)
    replies: tuple[ReplyShown, ...]  # what was sent, first to last
    earlier: tuple[RequestRow, ...]  # the same outlet's (or sender's) earlier requests, newest first
    words: str = ""        # what the partner wrote


@dataclass(frozen=True)
class ReplyShown:
    kind: str      # models.ReplyKind
    status: str    # outbox status
    error: str
    text: str      # the reply as sent, decoded to readable text


EARLIER_SHOWN = 5


def list_requests(session: Session, *, outcome: str | None = None, outlet: str | None = None,
                  since: datetime | None = None, limit: int | None = None) -> list[RequestRow]:
    query = select(Request).outerjoin(Outlet, Request.outlet_id == Outlet.id).order_by(Request.processed_at.desc(),
                                                                                        Request.id.desc())
    if outcome:
        query = query.where(Request.outcome == outcome)
    if outlet:
        query = query.where(Outlet.key == outlet.strip().lower())
    if since:
        query = query.where(Request.processed_at >= since)
    if limit:
        query = query.limit(limit)
    return [_row(request) for request in session.scalars(query)]


def request_detail(session: Session, request_id: int) -> RequestDetail | None:
    request = session.get(Request, request_id)
    if request is None:
        return None
    pickups = session.execute(
        select(Story.canonical_url, Story.title, PickupRequest.decision)
        .join(Pickup, Pickup.story_id == Story.id).join(PickupRequest, PickupRequest.pickup_id == Pickup.id)
        .where(PickupRequest.request_id == request.id).order_by(Story.id)
    ).all()
    same_partner = (Request.outlet_id == request.outlet_id if request.outlet_id is not None
                    else Request.from_address == request.from_address)
    earlier = session.scalars(select(Request).where(same_partner, Request.id < request.id)
                              .order_by(Request.id.desc()).limit(EARLIER_SHOWN))
    return RequestDetail(
        row=_row(request), message_id=request.message_id, reply_to=request.reply_to, sent_at=request.sent_at,
        mailbox=request.mailbox, resolved_by=request.resolved_by, resolved_at=request.resolved_at,
        pickups=tuple((url, title, decision) for url, title, decision in pickups),
        replies=tuple(ReplyShown(reply.kind, reply.status, reply.last_error, readable_message(reply.content.raw))
                      for reply in request.replies),
        earlier=tuple(_row(row) for row in earlier),
        words=request.words,
    )


def readable_message(raw: bytes) -> str:
    """A stored MIME message as a person reads it: its headers, its plain text, its attachments' names."""
    message = message_from_bytes(raw, policy=policy.default)
    lines = [f"{name}: {message[name]}" for name in ("From", "To", "Subject", "Date", "Message-ID", "In-Reply-To")
             if message[name]]
    body = message.get_body(("plain", "html"))
    lines += ["", body.get_content().rstrip() if body is not None else "(no text part)"]
    attachments = [part.get_filename() or "(unnamed)" for part in message.iter_attachments()]
    if attachments:
        lines += ["", "Attached: " + ", ".join(attachments)]
    return "\n".join(lines) + "\n"


def _row(request: Request) -> RequestRow:
    return RequestRow(request.id, request.processed_at, request.outlet.key if request.outlet else "",
                      request.from_address, request.subject, request.outcome, request.needs_person,
                      request.resolution or "", request.reason)
