"""Which pixel loads count as views. Pure, apart from the reload memory's own clock.

A load is not counted when it comes from a link preview (a chat app or social network fetching the
page to show a card), a crawler or a script, or when the same browser reloads the same page within
30 minutes. The reload memory keeps only a hash of User-Agent + Referer + token, in memory, for
that long: nothing that identifies a reader is ever stored.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

RELOAD_WINDOW_SECONDS = 30 * 60

# Services that fetch a page to show a preview card when a link is shared.
_PREVIEW = re.compile(r"Slackbot|Twitterbot|facebookexternalhit|LinkedInBot|WhatsApp|TelegramBot|Discordbot",
                      re.IGNORECASE)
# Search engines, crawlers in general, headless browsers and command-line clients.
_BOT = re.compile(r"Googlebot|bingbot|Applebot|bot\b|bot/|crawler|spider|HeadlessChrome|\bcurl/|\bwget/|Wget/|"
                  r"python-requests|python-urllib|Go-http-client", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    counted: bool
    reason: str  # "" when counted; "preview", "bot", "reload", "rate"


COUNTED = Verdict(True, "")


def agent_verdict(user_agent: str) -> Verdict:
    """Whether the User-Agent alone rules the load out."""
    if not user_agent.strip():
        return Verdict(False, "bot")  # every browser sends one
    if _PREVIEW.search(user_agent):
        return Verdict(False, "preview")
    if _BOT.search(user_agent):
        return Verdict(False, "bot")
    return COUNTED


def fingerprint(user_agent: str, referer: str, token: str) -> str:
    return hashlib.sha256("\x00".join((user_agent, referer, token)).encode("utf-8", "replace")).hexdigest()[:32]


class ReloadMemory:
    """Fingerprints seen in the last 30 minutes, bounded so a flood cannot grow it without limit."""

    def __init__(self, window: float = RELOAD_WINDOW_SECONDS, max_entries: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.max_entries = max_entries
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def seen_recently(self, key: str) -> bool:
        """True when this fingerprint was seen within the window; records it either way."""
        now = self.clock()
        while self._seen:  # oldest first: drop what has expired
            oldest_key, oldest_at = next(iter(self._seen.items()))
            if now - oldest_at < self.window and len(self._seen) < self.max_entries:
                break
            self._seen.popitem(last=False)
        last = self._seen.get(key)
        if last is not None and now - last < self.window:
            return True
        self._seen[key] = now
        self._seen.move_to_end(key)
        return False

    def __len__(self) -> int:
        return len(self._seen)


def verdict(user_agent: str, referer: str, token: str, memory: ReloadMemory) -> Verdict:
    by_agent = agent_verdict(user_agent)
    if not by_agent.counted:
        return by_agent
    if memory.seen_recently(fingerprint(user_agent, referer, token)):
        return Verdict(False, "reload")
    return COUNTED


def page_of(referer: str) -> tuple[str, str]:
    """(page URL, host) from a Referer header; ("", "") when there is none or it is not http(s)."""
    try:
        parts = urlsplit(referer.strip())
    except ValueError:
        return "", ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "", ""
    return referer.strip()[:2048], parts.hostname.lower().rstrip(".")[:255]


_TOKEN = re.compile(r"[A-Za-z0-9_\-]{1,64}")


def valid_token(token: str) -> bool:
    return bool(_TOKEN.fullmatch(token))


# Per client address (held in memory only, for a minute or an hour) and per token, so that one client
# holding a token from a partner's page can neither fill the database nor inflate a pickup's views.
STORED_PER_CLIENT_PER_MINUTE = 60
STORED_PER_TOKEN_PER_MINUTE = 600
VIEWS_PER_CLIENT_AND_TOKEN_PER_HOUR = 10


class _Windows:
    """Counts per key in fixed windows of `seconds`, bounded in size (the oldest keys go first)."""

    def __init__(self, seconds: float, max_keys: int = 100_000) -> None:
        self.seconds = seconds
        self.max_keys = max_keys
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def add(self, key: str, now: float) -> int:
        """Count one more for `key`; how many there are now in its window."""
        start, count = self._counts.get(key, (now, 0))
        if now - start >= self.seconds:
            start, count = now, 0
        self._counts[key] = (start, count + 1)
        self._counts.move_to_end(key)
        while len(self._counts) > self.max_keys:
            self._counts.popitem(last=False)
        return count + 1


class PixelLimits:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._stored_per_client = _Windows(60)
        self._stored_per_token = _Windows(60)
        self._views = _Windows(3600)

    def may_store(self, client: str, token: str) -> bool:
        """Whether a hit may be kept at all (beyond the limits it is only counted as dropped)."""
        now = self.clock()
        per_client = self._stored_per_client.add(_hashed(client), now)
        per_token = self._stored_per_token.add(token, now)
        return per_client <= STORED_PER_CLIENT_PER_MINUTE and per_token <= STORED_PER_TOKEN_PER_MINUTE

    def plausible_view(self, client: str, token: str) -> bool:
        """Whether one more counted view of this token from this client is plausible (a few readers
        behind one address, not a script with a new User-Agent each time)."""
        return self._views.add(_hashed(client + "\x00" + token), self.clock()) <= VIEWS_PER_CLIENT_AND_TOKEN_PER_HOUR


def _hashed(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]
