"""Exponential backoff with jitter, and logging an outage once rather than on every retry. Pure but for `log`.

Jitter keeps several workers (or many newsrooms behind one mail provider) from retrying in
step after a shared outage; the "equal jitter" form keeps at least half the delay, so a
retry never comes back at once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable


def retry_delay(attempt: int, first: float, maximum: float, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, …): between half and all of first·2^(attempt-1), capped."""
    base = min(maximum, first * 2 ** max(0, min(attempt - 1, 62)))
    return base / 2 + rand() * base / 2


class Outage:
    """One dependency (the mailbox, the database, SMTP) that may go away: says so once, and once when it is back."""

    def __init__(self, what: str, log: logging.Logger) -> None:
        self.what = what
        self.log = log
        self.failures = 0
        self._last_message = ""

    def failed(self, message: str, retry_in: float) -> None:
        self.failures += 1
        level = logging.WARNING if message != self._last_message else logging.DEBUG
        self.log.log(level, "%s: %s; retrying in %.0f s (attempt %d)", self.what, message, retry_in, self.failures)
        self._last_message = message

    def recovered(self) -> None:
        if self.failures:
            self.log.warning("%s: working again after %d failed attempt(s)", self.what, self.failures)
        self.failures = 0
        self._last_message = ""
