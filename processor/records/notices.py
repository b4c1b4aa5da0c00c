"""Correction notices in the database: which outlets must hear of a revision, and what became of each.

An outlet hears of a revision when it was granted the story (a pickup, decided "granted", first
requested on or after `since`) and our reply with the snippet went out: the notice goes in that
reply's thread, to the address that reply went to. One row per (revision, pickup), unique, so a
second poll or a second worker cannot tell an outlet twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (CorrectionNotice, Decision, NoticeState, OutboxMessage, Outlet, Pickup, PickupRequest, ReplyKind,
                    Request, SendStatus, Story, StoryRevision)


@dataclass(frozen=True)
class NoticeTarget:
    pickup_id: int
    outlet_id: int
    token: str
    request_id: int           # the granted request whose reply the notice answers
    request_message_id: str
    reply_message_id: str
    recipient: str
    from_name: str


def targets(session: Session, story_id: int, since: datetime) -> list[NoticeTarget]:
    """The outlets to tell of a revision of this story: each granted pickup since `since`, with the latest
    reply that carried the snippet to it."""
    rows = session.execute(
        select(Pickup.id, Pickup.outlet_id, Pickup.token, Request.id, Request.message_id, OutboxMessage.message_id,
               OutboxMessage.recipients, Request.from_name)
        .join(PickupRequest, PickupRequest.pickup_id == Pickup.id)
        .join(Request, Request.id == PickupRequest.request_id)
        .join(OutboxMessage, OutboxMessage.request_id == Request.id)
        .where(Pickup.story_id == story_id, Pickup.decision == Decision.GRANTED,
               Pickup.first_requested_at >= since, PickupRequest.decision == Decision.GRANTED,
               OutboxMessage.kind == ReplyKind.REPLY, OutboxMessage.status == SendStatus.SENT)
        .order_by(Pickup.id, OutboxMessage.id)).all()
    latest = {row[0]: NoticeTarget(*row) for row in rows}  # the last reply of each pickup wins
    return list(latest.values())


def already_told(session: Session, revision_id: int) -> set[int]:
    """Pickups that have a notice (of any state) for this revision."""
    return set(session.scalars(select(CorrectionNotice.pickup_id).where(CorrectionNotice.revision_id == revision_id)))


def told_since(session: Session, story_id: int, since: datetime) -> set[int]:
    """Pickups of this story that were sent a notice (queued) since then."""
    return set(session.scalars(
        select(CorrectionNotice.pickup_id).join(Pickup, Pickup.id == CorrectionNotice.pickup_id)
        .where(Pickup.story_id == story_id, CorrectionNotice.state == NoticeState.QUEUED,
               CorrectionNotice.created_at >= since)))


def add(session: Session, *, revision_id: int, pickup_id: int, state: str, now: datetime, outbox_id: int | None = None,
        reason: str = "") -> CorrectionNotice:
    notice = CorrectionNotice(revision_id=revision_id, pickup_id=pickup_id, state=state, outbox_id=outbox_id,
                              reason=reason[:2000], created_at=now, decided_by="")
    session.add(notice)
    return notice


@dataclass(frozen=True)
class NoticeRow:
    id: int
    state: str
    reason: str
    created_at: datetime
    outlet: str
    story_id: int
    story_title: str
    revision_id: int
    note: str
    send_status: str      # of its outbox row, "" while none
    decided_by: str


def listed(session: Session, *, story_id: int | None = None, state: str | None = None,
           revision_ids: list[int] | None = None, limit: int = 200) -> list[NoticeRow]:
    """Notices, newest first: of one story, of some revisions, or in one state (the queue's "waiting")."""
    query = (select(CorrectionNotice.id, CorrectionNotice.state, CorrectionNotice.reason, CorrectionNotice.created_at,
                    Outlet.key, Story.id, Story.title, StoryRevision.id, StoryRevision.note, OutboxMessage.status,
                    CorrectionNotice.decided_by)
             .join(StoryRevision, StoryRevision.id == CorrectionNotice.revision_id)
             .join(Story, Story.id == StoryRevision.story_id)
             .join(Pickup, Pickup.id == CorrectionNotice.pickup_id)
             .join(Outlet, Outlet.id == Pickup.outlet_id)
             .outerjoin(OutboxMessage, OutboxMessage.id == CorrectionNotice.outbox_id)
             .order_by(CorrectionNotice.id.desc()).limit(limit))
    if story_id is not None:
        query = query.where(Story.id == story_id)
    if state is not None:
        query = query.where(CorrectionNotice.state == state)
    if revision_ids is not None:
        query = query.where(CorrectionNotice.revision_id.in_(revision_ids))
    return [NoticeRow(*row[:9], row[9] or "", row[10]) for row in session.execute(query)]


def waiting_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(CorrectionNotice)
                          .where(CorrectionNotice.state == NoticeState.WAITING)) or 0


def outbox_of(session: Session, notice_id: int) -> int | None:
    return session.scalar(select(CorrectionNotice.outbox_id).where(CorrectionNotice.id == notice_id))
