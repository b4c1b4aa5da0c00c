"""SQLAlchemy models: the story catalog, outlets, requests, pickups and the reply outbox."""

from models.base import Base, make_engine, make_session_factory
from models.catalog import FeedState, Story, StoryRevision, TitleRun
from models.mailbox import FolderLedger
from models.pickups import (CorrectionNotice, Decision, LiveCopy, MailboxSync, NoticeState, OutboxContent, OutboxMessage,
                            Outlet, Outcome, Pickup, PickupRequest, PickupWeek, PixelHit, ReplyKind, Request, SendStatus)

__all__ = [
    "Base",
    "CorrectionNotice",
    "Decision",
    "FeedState",
    "FolderLedger",
    "LiveCopy",
    "MailboxSync",
    "NoticeState",
    "OutboxContent",
    "OutboxMessage",
    "Outcome",
    "Outlet",
    "Pickup",
    "PickupRequest",
    "PickupWeek",
    "PixelHit",
    "ReplyKind",
    "Request",
    "SendStatus",
    "Story",
    "StoryRevision",
    "TitleRun",
    "make_engine",
    "make_session_factory",
]
