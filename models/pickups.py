"""Outlets, the requests they send, the pickups those record, and the replies sent.

A pickup is one outlet taking one story: the same outlet asking twice for the same story is
one pickup with two requests (`PickupRequest`). Every request keeps its outcome and the
reason for it, so an editor can always see why the worker did what it did.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, false, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime
from models.catalog import Story, StoryRevision


class Outcome(StrEnum):
    ANSWERED = "answered"          # a reply was sent (it may also need a person)
    NEEDS_PERSON = "needs_person"  # nothing automatic was sent; a person must look
    BACKFILLED = "backfilled"      # older than the answer window: logged, not answered
    IGNORED = "ignored"            # automated mail (auto-reply, bounce, list): never answered
    PENDING = "pending"            # recorded, reply not yet sent


class Decision(StrEnum):
    GRANTED = "granted"
    DECLINED = "declined"


class Outlet(Base):
    __tablename__ = "outlets"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The sender's domain, or the full address for free-mail domains such as gmail.com.
    key: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # An outlet that broke the guidelines: its later requests go to a person, never answered automatically.
    blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    blocked_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Merged into another outlet (the same newsroom writing from two domains): requests from this key
    # count for that one.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("outlets.id"))
    # Its pickups (granted or declined), kept as pickups change (processor/pickup_counts.py): top outlets.
    pickup_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0", index=True)

    pickups: Mapped[list[Pickup]] = relationship(back_populates="outlet")


class Request(Base):
    __tablename__ = "requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Message-ID without brackets and whitespace, or a digest of headers and body when it has none.
    message_key: Mapped[str] = mapped_column(String(255), unique=True)
    # Tells a copy of this message from a different one that reuses its Message-ID.
    content_digest: Mapped[str] = mapped_column(String(64), default="", server_default="")
    message_id: Mapped[str] = mapped_column(Text, default="")
    mailbox: Mapped[str] = mapped_column(String(255), default="")
    outlet_id: Mapped[int | None] = mapped_column(ForeignKey("outlets.id"))
    from_address: Mapped[str] = mapped_column(String(320), default="")
    from_name: Mapped[str] = mapped_column(String(320), default="", server_default="")  # to greet them by it
    reply_to: Mapped[str] = mapped_column(String(320), default="")
    # What the partner wrote (quoted text cut, control characters out, at most WORDS_KEPT characters):
    # the editor reads the question here, not in the mail client.
    words: Mapped[str] = mapped_column(Text, default="", server_default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(32), index=True)
    needs_person: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    reply_message_id: Mapped[str | None] = mapped_column(String(255))
    # What a person decided about a request that needed one: granted | declined | dismissed.
    resolution: Mapped[str | None] = mapped_column(String(16))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    resolved_by: Mapped[str] = mapped_column(String(320), default="", server_default="")
    # A decision taken at the desk that the mailbox has not been told of yet (MailboxSync); the worker
    # tells the mailbox and clears this.
    mailbox_sync: Mapped[str | None] = mapped_column(String(16), index=True)

    outlet: Mapped[Outlet | None] = relationship()
    # The first is the answer to the request (the worker's, or an editor's grant or decline); an editor's
    # own answer may follow it.
    replies: Mapped[list[OutboxMessage]] = relationship(back_populates="request", order_by="OutboxMessage.id")


class Pickup(Base):
    __tablename__ = "pickups"
    __table_args__ = (UniqueConstraint("outlet_id", "story_id"),
                      # "pixel missing": the granted pickups without a view, newest first
                      Index("ix_pickups_decision_viewed_first_requested_at", "decision", "viewed",
                            "first_requested_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    outlet_id: Mapped[int] = mapped_column(ForeignKey("outlets.id"), index=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), index=True)
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    # Per-pickup token carried by the tracking pixel, so views can be told apart per outlet.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    first_requested_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_requested_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # the log's order
    # A counted pixel view was recorded for it (set by the first one; see processor/pickup_counts.py).
    viewed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    outlet: Mapped[Outlet] = relationship(back_populates="pickups")
    story: Mapped[Story] = relationship()
    requests: Mapped[list[PickupRequest]] = relationship(back_populates="pickup", order_by="PickupRequest.request_id")


class PickupWeek(Base):
    """Pickups per week (the Monday, UTC, of their first request) and decision, and how many of them
    never had a counted view: kept as pickups change, in the same transaction (processor/pickup_counts.py),
    so the overview's totals, weekly chart and "pixel missing" read a few rows instead of the whole log."""

    __tablename__ = "pickup_weeks"

    week: Mapped[date] = mapped_column(Date, primary_key=True)
    decision: Mapped[str] = mapped_column(String(16), primary_key=True)
    pickups: Mapped[int] = mapped_column(Integer, default=0)
    unviewed: Mapped[int] = mapped_column(Integer, default=0)


class PickupRequest(Base):
    __tablename__ = "pickup_requests"

    pickup_id: Mapped[int] = mapped_column(ForeignKey("pickups.id"), primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), primary_key=True)
    decision: Mapped[str] = mapped_column(String(16))

    pickup: Mapped[Pickup] = relationship(back_populates="requests")
    request: Mapped[Request] = relationship()


class SendStatus(StrEnum):
    PENDING = "pending"    # waiting for its (next) attempt at `next_attempt_at`
    SENDING = "sending"    # its SMTP transaction is under way; found after a crash: never kept, sent again
    HANDED_OVER = "handed_over"  # all of it with the server, its answer awaited; found after a crash: in doubt
    SENT = "sent"          # the SMTP server accepted it
    FAILED = "failed"      # refused for good, or retried too long: a person takes over
    UNKNOWN = "unknown"    # the worker died while sending: it may or may not have gone out
    BOUNCED = "bounced"    # accepted, then a delivery failure report came back for it


class MailboxSync(StrEnum):
    """What the mailbox must be told of a decision taken at the desk (`Request.mailbox_sync`)."""

    RESOLVED = "resolved"  # no longer for a person: unflag it, mark it done
    REOPENED = "reopened"  # for a person again: flag it


class ReplyKind(StrEnum):
    REPLY = "reply"     # the answer to a request: the worker's, or an editor's grant or decline
    ANSWER = "answer"   # an editor's own words, after it or instead of it
    CORRECTION = "correction"  # a story the outlet was granted changed: in the thread of that reply


class NoticeState(StrEnum):
    WAITING = "waiting"   # for an editor to send or drop ([corrections] mode = "review", or over a cap)
    QUEUED = "queued"     # in the outbox (its row there says whether it went out)
    DROPPED = "dropped"   # an editor decided the outlet need not be told


class CorrectionNotice(Base):
    """One outlet told (or to be told) of one revision of a story it was granted: exactly one per
    (revision, pickup), so neither a second poll nor a crash tells it twice."""

    __tablename__ = "correction_notices"
    __table_args__ = (UniqueConstraint("revision_id", "pickup_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    revision_id: Mapped[int] = mapped_column(ForeignKey("story_revisions.id"), index=True)
    pickup_id: Mapped[int] = mapped_column(ForeignKey("pickups.id"), index=True)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")  # why it waits for an editor
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_by: Mapped[str] = mapped_column(String(320), default="")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    revision: Mapped[StoryRevision] = relationship()
    pickup: Mapped[Pickup] = relationship()
    outbox: Mapped[OutboxMessage | None] = relationship()


class OutboxMessage(Base):
    """A reply, stored before it is sent, so a crash can never lose or silently drop it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_recipients_created_at", "recipients", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default=ReplyKind.REPLY, server_default="reply")
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    recipients: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    request: Mapped[Request] = relationship(back_populates="replies")
    content: Mapped[OutboxContent] = relationship()


class OutboxContent(Base):
    """The reply itself, as it goes on the wire, apart from its outbox row: the row's status changes
    two or three times per send, and on SQLite an update rewrites the whole row, the message included
    (and reading a column stored after it walks its overflow pages)."""

    __tablename__ = "outbox_content"

    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), primary_key=True)
    raw: Mapped[bytes] = mapped_column(LargeBinary)


class PixelHit(Base):
    """One load of a snippet's tracking pixel. No IP address is kept; `counted` is False for link
    previews, known bots and reloads of the same page within a short window (`reason` says which)."""

    __tablename__ = "pixel_hits"
    __table_args__ = (Index("ix_pixel_hits_pickup_id_hit_at", "pickup_id", "hit_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pickup_id: Mapped[int | None] = mapped_column(ForeignKey("pickups.id"))
    story_id: Mapped[int | None] = mapped_column(ForeignKey("stories.id"), index=True)
    token: Mapped[str] = mapped_column(String(64), default="", index=True)
    hit_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    page_url: Mapped[str] = mapped_column(Text, default="")
    page_host: Mapped[str] = mapped_column(String(255), default="", index=True)
    counted: Mapped[bool] = mapped_column(Boolean, default=True)
    reason: Mapped[str] = mapped_column(String(32), default="")


class LiveCopy(Base):
    """Where a republished copy went live (from the partner's email, a pixel hit, or an editor), and
    what the last check of it found."""

    __tablename__ = "live_copies"
    __table_args__ = (UniqueConstraint("story_id", "url_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), index=True)
    pickup_id: Mapped[int | None] = mapped_column(ForeignKey("pickups.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(2048))
    source: Mapped[str] = mapped_column(String(16))  # email | pixel | editor
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="unchecked")  # unchecked | ok | violations | unreachable
    problems: Mapped[str] = mapped_column(Text, default="")
