"""Login guessing, slowed to nothing: failed attempts per client address and per name, with lock-outs
that grow. Pure: the caller passes the time. Kept in memory (one process serves the dashboard); a
restart forgets them, which costs a guesser nothing it did not have already.

An attempt counts as failed from the moment it starts and is forgiven only when it succeeds, so a
burst of attempts sent at once is locked out after the first few instead of all being tried.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

FREE_ATTEMPTS = 5            # failures within WINDOW_SECONDS before the first lock-out
WINDOW_SECONDS = 15 * 60
FIRST_LOCK_SECONDS = 60      # then doubling with each further failure
MAX_LOCK_SECONDS = 3600
MAX_KEYS = 10_000            # the oldest are forgotten first: memory stays bounded under a spray


@dataclass
class _Record:
    failures: int
    first_at: float
    locked_until: float = 0.0


class LoginThrottle:
    def __init__(self) -> None:
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def wait_seconds(self, keys: tuple[str, ...], now: float) -> float:
        """How long these keys (an address, a name) must wait before trying again; 0 when they may."""
        return max((record.locked_until - now for key in keys
                    if (record := self._records.get(key)) is not None and record.locked_until > now), default=0.0)

    def attempt(self, keys: tuple[str, ...], now: float) -> None:
        """An attempt starts: counted as failed until `succeeded`."""
        for key in keys:
            record = self._records.get(key)
            if record is None or now - record.first_at > WINDOW_SECONDS and record.locked_until <= now:
                record = _Record(0, now)
            record.failures += 1
            if record.failures > FREE_ATTEMPTS:
                lock = FIRST_LOCK_SECONDS * 2 ** min(record.failures - FREE_ATTEMPTS - 1, 16)
                record.locked_until = now + min(lock, MAX_LOCK_SECONDS)
            self._records[key] = record
            self._records.move_to_end(key)
        while len(self._records) > MAX_KEYS:
            self._records.popitem(last=False)

    def succeeded(self, keys: tuple[str, ...]) -> None:
        for key in keys:
            self._records.pop(key, None)


class UsedTokens:
    """Login-form CSRF tokens already posted: each serves one attempt. Kept until they would expire."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self._used: OrderedDict[str, float] = OrderedDict()

    def use(self, token: str, now: float) -> bool:
        """True the first time a token is posted, False after."""
        while self._used and next(iter(self._used.values())) < now - self.lifetime:
            self._used.popitem(last=False)
        if token in self._used:
            return False
        self._used[token] = now
        while len(self._used) > MAX_KEYS:
            self._used.popitem(last=False)
        return True
