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
    """One dependency (the mailbox, the database, SMTP) that may go away.

    Says so once when it fails, again after 10, 100, 1000… failed attempts (a long outage
    stays visible without flooding the log), and once when it works again.
    """

    def __init__(self, what: str, log: logging.Logger) -> None:
        self.what = what
        self.log = log
        self.failures = 0

    def failed(self, message: str, retry_in: float) -> None:
        self.failures += 1
        loud = self.failures == 1 or _is_power_of_ten(self.failures)
        self.log.log(logging.WARNING if loud else logging.DEBUG, "%s: %s; retrying in %.0f s (attempt %d)",
                     self.what, message, retry_in, self.failures)

    def recovered(self) -> None:
        if self.failures:
            self.log.warning("%s: working again after %d failed attempt(s)", self.what, self.failures)
        self.failures = 0


def _is_power_of_ten(number: int) -> bool:
    while number >= 10 and number % 10 == 0:
        number //= 10
    return number == 1
