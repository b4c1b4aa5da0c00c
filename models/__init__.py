"""SQLAlchemy models: the story catalog, outlets, requests, pickups and the reply outbox."""

from models.base import Base, make_engine, make_session_factory
from models.catalog import Story
from models.pickups import Decision, OutboxMessage, Outlet, Outcome, Pickup, PickupRequest, Request, SendStatus

__all__ = [
    "Base",
    "Decision",
    "OutboxMessage",
    "Outcome",
    "Outlet",
    "Pickup",
    "PickupRequest",
    "Request",
    "SendStatus",
    "Story",
    "make_engine",
    "make_session_factory",
]
