"""Fetching pages from the publication's own site: the only code that makes HTTP requests.

A link in an email is untrusted. It is fetched only if its host, and the host of every
redirect it leads to, is one of the publication's `allowed_hosts`; with one deadline for the
whole fetch, a cap on the bytes read, no cookies and no credentials.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urljoin

import anyio
import httpx

from processor.urls import host_matches, url_host

MAX_REDIRECTS = 5
USER_AGENT = "republish-processor/0.1 (+catalog import)"
ACCEPT = "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,*/*;q=0.5"


class FetchError(Exception):
    """The page was not fetched; the message says why in plain words."""


@dataclass(frozen=True)
class FetchedPage:
    url: str
    content: bytes
    content_type: str
    charset: str | None
    etag: str = ""             # the validators a conditional GET sends next time
    last_modified: str = ""
    not_modified: bool = False  # 304 to a conditional GET: `content` is empty, what was read before stands


MAX_VALIDATOR_CHARS = 512  # an ETag or Last-Modified longer than this is not kept (nor sent back)


def fetch_page(url: str, *, allowed_hosts: tuple[str, ...], timeout: float, max_bytes: int,
               etag: str = "", last_modified: str = "") -> FetchedPage:
    """The page at `url`; with the validators of an earlier copy (a conditional GET), a `not_modified` page
    when the server says it has not changed."""
    headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT}
    if etag and _header_safe(etag):
        headers["If-None-Match"] = etag
    if last_modified and _header_safe(last_modified):
        headers["If-Modified-Since"] = last_modified

    async def fetch() -> FetchedPage:
        current = url
        async with httpx.AsyncClient(follow_redirects=False, timeout=timeout, trust_env=False,
                                     headers=headers) as client:
            for _ in range(MAX_REDIRECTS + 1):
                _check_allowed(current, allowed_hosts)
                try:
                    async with client.stream("GET", current) as response:
                        result = await read_response(response, current, max_bytes=max_bytes)
                except httpx.HTTPError as exc:
                    raise FetchError(f"{current} could not be fetched: {type(exc).__name__}") from None
                if isinstance(result, FetchedPage):
                    return result
                current = result
        raise FetchError(f"{url} redirected more than {MAX_REDIRECTS} times")

    return within(timeout, url, fetch)


def within(timeout: float, url: str, fetch: Callable[[], Awaitable[FetchedPage]]) -> FetchedPage:
    """Run a fetch under one deadline for all of it: connecting, every redirect, the response headers
    and the body (httpx's own timeouts are per step, so a server sending a byte a second never trips them)."""
    async def bounded() -> FetchedPage:
        with anyio.fail_after(timeout):
            return await fetch()

    try:
        return anyio.run(bounded)
    except TimeoutError:
        raise FetchError(f"{url[:200]} took longer than {timeout:g} s") from None


async def read_response(response: httpx.Response, url: str, *, max_bytes: int) -> FetchedPage | str:
    """The page a streamed response carries, within the byte cap; or, for a redirect, the address it
    points to (for the caller to check before following it)."""
    # Before the redirect check: httpx counts a 304 among the 3xx it calls redirects.
    if response.status_code == 304 and ("if-none-match" in response.request.headers
                                        or "if-modified-since" in response.request.headers):
        return FetchedPage(url, b"", "", None, *_validators(response), not_modified=True)
    if response.is_redirect:
        location = response.headers.get("location", "")
        if not location:
            raise FetchError(f"{url} redirected without a location")
        return urljoin(url, location)
    if response.status_code != 200:
        raise FetchError(f"{url} answered HTTP {response.status_code}")
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"{url} is larger than the {max_bytes}-byte limit")
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body.extend(chunk)
        if len(body) > max_bytes:
            raise FetchError(f"{url} is larger than the {max_bytes}-byte limit")
    return FetchedPage(url, bytes(body), response.headers.get("content-type", ""), response.charset_encoding,
                       *_validators(response))


def _validators(response: httpx.Response) -> tuple[str, str]:
    values = (response.headers.get("etag", ""), response.headers.get("last-modified", ""))
    return tuple(value if _header_safe(value) else "" for value in values)  # type: ignore[return-value]


def _header_safe(value: str) -> bool:
    """Sent back as a header only if it can be: printable ASCII, bounded (what a server gave is untrusted)."""
    return len(value) <= MAX_VALIDATOR_CHARS and value.isascii() and value.isprintable()


def _check_allowed(url: str, allowed_hosts: tuple[str, ...]) -> None:
    if not url.lower().startswith(("http://", "https://")):
        raise FetchError(f"{url[:200]} is not an http(s) address")
    host = url_host(url)
    if not host or not host_matches(host, allowed_hosts):
        raise FetchError(f"{host or url[:200]} is not one of the publication's hosts; not fetched")
