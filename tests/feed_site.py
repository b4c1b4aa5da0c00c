"""A publication's site on loopback for the catalog's feed polling: feeds and pages served with ETag and
Last-Modified, answering 304 to a conditional GET, and counting what was asked (tests, benchmarks)."""

from __future__ import annotations

import hashlib
import threading
from email.utils import formatdate
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FeedSite:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.down = False                 # every request answered 503
        self.delays: dict[str, float] = {}  # seconds a path takes to answer: a slow site
        self.requests: list[tuple[str, int]] = []  # (path, status) of each request
        self._modified = formatdate(usegmt=True)
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                if self.path in site.delays:
                    threading.Event().wait(site.delays[self.path])  # the server being slow, not the test waiting
                status, body, headers = site._answer(self.path, self.headers)
                site.requests.append((self.path, status))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def put(self, path: str, body: bytes) -> str:
        """Serve `body` at `path` (a new ETag and Last-Modified when it changed); its URL."""
        if self.files.get(path) != body:
            self.files[path] = body
            self._modified = formatdate(usegmt=True)
        return self.base + path

    def _answer(self, path: str, request_headers) -> tuple[int, bytes, dict[str, str]]:
        if self.down:
            return 503, b"down for maintenance", {}
        body = self.files.get(path)
        if body is None:
            return 404, b"not found", {}
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        headers = {"ETag": etag, "Last-Modified": self._modified,
                   "Content-Type": "application/rss+xml" if path.endswith(".xml") else "text/html; charset=utf-8"}
        if request_headers.get("If-None-Match") == etag:
            return 304, b"", headers
        return 200, body, headers

    def count(self, path: str, status: int | None = None) -> int:
        return sum(1 for p, s in self.requests if p == path and (status is None or s == status))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def rss(items: list[tuple[str, str, str]], title: str = "The Riverside Ledger") -> bytes:
    """An RSS 2.0 feed of (title, link, full HTML content) items."""
    entries = "".join(
        f"<item><title>{escape(item_title)}</title><link>{escape(link)}</link><guid>{escape(link)}</guid>"
        f"<content:encoded><![CDATA[{content}]]></content:encoded></item>"
        for item_title, link, content in items)
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
            f'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>{escape(title)}</title>'
            f"<link>https://riversideledger.example/</link>{entries}</channel></rss>").encode()
