"""How far each mailbox folder was handled, so a pass asks the server only for what is new."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class FolderLedger(Base):
    """One folder as the worker last left it: every UID below `next_uid` (under `uidvalidity`) was looked
    at and needs nothing more, except the few in `waiting` (a reply still to send, a message another worker
    held). It only saves downloads: what each message led to is in `requests`, keyed by Message-ID, so a
    lost or reset ledger costs one full search and never a second reply."""

    __tablename__ = "folder_ledger"

    mailbox: Mapped[str] = mapped_column(String(1024), primary_key=True)   # the source's name: imap://user@host/folder
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    next_uid: Mapped[int] = mapped_column(BigInteger)
    waiting: Mapped[str] = mapped_column(Text, default="")                  # UIDs, comma-separated
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
