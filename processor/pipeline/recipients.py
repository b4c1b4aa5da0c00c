"""Who a reply may go to, and how many replies may go out: the worker must never become a mail cannon.

Anyone can put any address in Reply-To, so a reply goes to From, and to Reply-To only when that address
belongs to From's organisation (the same registrable domain, as DMARC aligns them) or is one the outlet
has already written from. And however the addresses are spelled, replies are capped per mailbox, per
recipient domain and in all: a forged request costs at most a few replies to anyone.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parseaddr
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

# Providers that deliver `j.doe@`, `jdoe@` and `JDoe@` to one mailbox (and googlemail.com is gmail.com).
_DOTS_IGNORED = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"\\]+@[A-Za-z0-9.-]+\.[A-Za-z0-9-]{2,}$")


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the list bundled with the package: no network


def safe_address(address: str) -> bool:
    """A plain address fit for a header and an SMTP envelope. ASCII only: an internationalised address
    (RFC 6531) needs SMTPUTF8 end to end; a person answers it."""
    return (address.isascii() and bool(_ADDRESS.match(address)) and parseaddr(address)[1] == address
            and len(address) <= 254)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(".")


def organisational_domain(domain: str) -> str:
    """The registrable domain (`news.bbc.co.uk` -> `bbc.co.uk`), as DMARC aligns addresses."""
    domain = domain.lower().rstrip(".")
    return _suffixes().privatesuffix(domain) or domain


def aligned(address: str, other: str) -> bool:
    return organisational_domain(domain_of(address)) == organisational_domain(domain_of(other))


def mailbox_key(address: str) -> str:
    """One key for every spelling of one mailbox: case, a `+tag`, and dots where the provider ignores them."""
    local, _, domain = address.lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in _DOTS_IGNORED:
        local, domain = local.replace(".", ""), _DOTS_IGNORED[domain]
    return f"{local}@{domain}"


@dataclass(frozen=True)
class Recipient:
    address: str | None
    note: str = ""          # a Reply-To not followed, for the editor


def choose_recipient(from_address: str | None, reply_to: str | None,
                     known: frozenset[str] = frozenset()) -> Recipient:
    """From, or Reply-To when it is From's organisation's or an address this outlet has used (`known`,
    mailbox keys); None when From itself is not a safe address."""
    if not from_address or not safe_address(from_address):
        return Recipient(None)
    if not reply_to or mailbox_key(reply_to) == mailbox_key(from_address):
        return Recipient(from_address)
    if safe_address(reply_to) and (aligned(reply_to, from_address) or mailbox_key(reply_to) in known):
        return Recipient(reply_to)
    return Recipient(from_address, f"Reply-To {reply_to} not followed (outside "
                                   f"{organisational_domain(domain_of(from_address))} and never used by this "
                                   f"outlet): replied to From {from_address}")


@dataclass(frozen=True)
class Caps:
    per_mailbox_per_day: int
    per_domain_per_day: int
    per_hour: int


class ReplyBudget:
    """The replies of the last 24 hours, counted per mailbox, per domain and in the last hour, and what
    one more reply would break."""

    def __init__(self, caps: Caps, now: datetime, recent: list[tuple[str, datetime]]) -> None:
        """`recent`: (recipient, when) of the replies queued or sent in the 24 hours before `now`."""
        self.caps = caps
        self.per_mailbox = Counter(mailbox_key(address) for address, _ in recent)
        self.per_domain = Counter(domain_of(address) for address, _ in recent)
        self.last_hour = sum(1 for _, at in recent if at >= now - timedelta(hours=1))

    def over(self, recipient: str) -> str | None:
        """Why one more reply to `recipient` is not to be sent automatically, or None."""
        caps = self.caps
        mailbox, domain = self.per_mailbox[mailbox_key(recipient)], self.per_domain[domain_of(recipient)]
        if mailbox >= caps.per_mailbox_per_day:
            return (f"{mailbox} replies already sent to {recipient} (or another spelling of that mailbox) in the "
                    f"last 24 hours (limit {caps.per_mailbox_per_day}, max_replies_per_sender_per_day)")
        if domain >= caps.per_domain_per_day:
            return (f"{domain} replies already sent to addresses at {domain_of(recipient)} in the last 24 hours "
                    f"(limit {caps.per_domain_per_day}, max_replies_per_domain_per_day)")
        if self.last_hour >= caps.per_hour:
            return f"{self.last_hour} automatic replies sent in the last hour (limit {caps.per_hour}, max_replies_per_hour)"
        return None

    def spend(self, recipient: str) -> None:
        self.per_mailbox[mailbox_key(recipient)] += 1
        self.per_domain[domain_of(recipient)] += 1
        self.last_hour += 1
