"""SQLAlchemy models: the story catalog, outlets, requests, pickups and the reply outbox."""

from models.base import Base, make_engine, make_session_factory
from models.catalog import Story, TitleRun
from models.mailbox import FolderLedger
from models.pickups import (Decision, LiveCopy, MailboxSync, OutboxContent, OutboxMessage, Outlet, Outcome, Pickup,
                            PickupRequest, PickupWeek, PixelHit, ReplyKind, Request, SendStatus)

__all__ = [
    "Base",
    "Decision",
    "FolderLedger",
    "LiveCopy",
    "MailboxSync",
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
    "TitleRun",
    "make_engine",
    "make_session_factory",
]
