"""Header limits, checked before anything parses a header: every request to the dashboard and the pixel
is untrusted, and Python's cookie parsing (which Starlette uses) costs time in the square of a quoted
cookie's length before 3.11.10 / 3.12.6 (CVE-2024-7592): a 16 KB Cookie header took 0.5 s of CPU."""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_COOKIE_BYTES = 4096       # our own cookie is under 300 bytes; browsers cap one cookie at 4096
MAX_HEADER_BYTES = 32 * 1024  # all header fields together


class HeaderLimits:
    """Answer 431 to a request whose Cookie header, or whose headers together, are over the limits."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            cookie = sum(len(value) for name, value in headers if name == b"cookie")
            total = sum(len(name) + len(value) for name, value in headers)
            if cookie > MAX_COOKIE_BYTES or total > MAX_HEADER_BYTES:
                response = PlainTextResponse("Request header fields too large\n", status_code=431)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
