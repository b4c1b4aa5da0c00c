"""Everything the pipeline touches outside itself, handed in by the wiring (`processor.app`)."""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import make_msgid

from sqlalchemy.orm import sessionmaker

from processor.catalog.fetch import FetchedPage
from processor.config import Config
from processor.mail.mailbox import MailSource
from processor.mail.smtp import Sender
from processor.records.claims import Claims


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def new_message_id(domain: str) -> str:
    return make_msgid(domain=domain).strip("<>")


@dataclass
class Edges:
    config: Config
    sessions: sessionmaker
    source: MailSource                 # where requests come from, where marks and Sent copies go
    sender: Sender
    fetch: Callable[[str], FetchedPage]
    claims: Claims
    clock: Callable[[], datetime] = utc_now
    new_token: Callable[[], str] = lambda: secrets.token_urlsafe(16)
    new_message_id: Callable[[str], str] = new_message_id
    rand: Callable[[], float] = random.random

    @property
    def reply_from(self) -> str:
        return self.config.reply_from
