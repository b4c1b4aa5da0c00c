"""The login edge: throttled attempts, single-use form tokens, and scrypt on a pool of its own.

Each scrypt check takes about 16 MB and tens of milliseconds. On the shared thread pool 300 concurrent
wrong logins took an editor's page from 0.02 to 7 s and the server from 468 to 932 MB; here at most
SCRYPT_SLOTS checks run at once, on their own threads, and a login that would queue behind more than
SCRYPT_QUEUE others is turned away at once.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from processor.desk.web.throttle import LoginThrottle, UsedTokens
from processor.passwords import verify_password

SCRYPT_SLOTS = 2
SCRYPT_QUEUE = 8
LOGIN_FORM_SECONDS = 10 * 60  # a login form's token: one attempt, within this long


class Busy(Exception):
    """Too many logins are being checked right now."""


class LoginGuard:
    def __init__(self) -> None:
        self.throttle = LoginThrottle()
        self.used_tokens = UsedTokens(LOGIN_FORM_SECONDS)
        self._pool = ThreadPoolExecutor(max_workers=SCRYPT_SLOTS, thread_name_prefix="scrypt")
        self._waiting = 0

    @staticmethod
    def keys(address: str, name: str) -> tuple[str, ...]:
        return (f"address:{address}", f"name:{name.lower()}")

    async def verify(self, password: str, stored: str) -> bool:
        """The password's check, on the scrypt pool; Busy when too many are queued already."""
        if self._waiting >= SCRYPT_SLOTS + SCRYPT_QUEUE:
            raise Busy()
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, verify_password, password, stored)
        finally:
            self._waiting -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
