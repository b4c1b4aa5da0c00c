"""SQLAlchemy models: the story catalog, outlets, requests, pickups and the reply outbox."""

from models.base import Base, make_engine, make_session_factory
from models.catalog import Story
from models.mailbox import FolderLedger
from models.pickups import (Decision, LiveCopy, OutboxContent, OutboxMessage, Outlet, Outcome, Pickup, PickupRequest,
                            PickupWeek, PixelHit, Request, SendStatus)

__all__ = [
    "Base",
    "Decision",
    "FolderLedger",
    "LiveCopy",
    "OutboxContent",
    "OutboxMessage",
    "Outcome",
    "Outlet",
    "Pickup",
    "PickupRequest",
    "PickupWeek",
    "PixelHit",
    "Request",
    "SendStatus",
    "Story",
    "make_engine",
    "make_session_factory",
]
