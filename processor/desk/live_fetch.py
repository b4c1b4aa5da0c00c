"""Fetching a partner's page, where a republished copy went live: the only fetch of other people's sites.

The address comes from a partner's email, a pixel hit or an editor, so it is untrusted. The
host is resolved and every address it resolves to must be public (no loopback, private,
link-local, multicast, reserved or unspecified address, so the fetch cannot reach our own
network); the connection then goes to the address that was checked (the name is not looked up
a second time, so a DNS answer cannot change in between), with the original name in the Host
header and for TLS. Every redirect is checked again. http(s) only, one deadline for the whole
fetch, a cap on the bytes read, no cookies, no credentials.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from processor.catalog.fetch import MAX_REDIRECTS, FetchError, FetchedPage, read_response, within

USER_AGENT = "republish-processor/0.1 (+checking a republished copy)"
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[Address], bool]
Resolver = Callable[[str, int], list[str]]


def public_address(address: Address) -> bool:
    """True only for an address on the public internet."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return public_address(address.ipv4_mapped)
    return address.is_global and not (address.is_loopback or address.is_private or address.is_link_local
                                      or address.is_multicast or address.is_reserved or address.is_unspecified)


def resolve_host(host: str, port: int) -> list[str]:
    return list(dict.fromkeys(info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))


def checked_address(host: str, port: int, *, allow: AddressPolicy, resolve: Resolver) -> Address:
    """The address to connect to; FetchError if the host does not resolve or any of its addresses is refused."""
    try:
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(host, port)]
    except (OSError, ValueError) as exc:
        raise FetchError(f"{host} could not be resolved ({type(exc).__name__})") from None
    if not addresses:
        raise FetchError(f"{host} could not be resolved")
    refused = [a for a in addresses if not allow(a)]
    if refused:
        raise FetchError(f"{host} resolves to {refused[0]}, which is not a public address; not fetched")
    return addresses[0]


def fetch_live(url: str, *, timeout: float, max_bytes: int, allow: AddressPolicy = public_address,
               resolve: Resolver = resolve_host) -> FetchedPage:
    async def fetch() -> FetchedPage:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            target, host_header, hostname, https = _checked_target(current, allow, resolve)
            extensions = {"sni_hostname": hostname} if https else {}
            try:
                # A fresh client per hop: no cookie set by one response is sent with the next request.
                async with httpx.AsyncClient(follow_redirects=False, timeout=timeout, trust_env=False) as client:
                    request = client.build_request("GET", target, extensions=extensions, headers={
                        "Host": host_header, "User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml"})
                    response = await client.send(request, stream=True)
                    try:
                        result = await read_response(response, current, max_bytes=max_bytes)
                    finally:
                        await response.aclose()
            except httpx.HTTPError as exc:
                raise FetchError(f"{current} could not be fetched: {type(exc).__name__}") from None
            if isinstance(result, FetchedPage):
                return result
            current = result
        raise FetchError(f"{url} redirected more than {MAX_REDIRECTS} times")

    return within(timeout, url, fetch)


def _checked_target(url: str, allow: AddressPolicy, resolve: Resolver) -> tuple[str, str, str, bool]:
    """(the URL to connect to, by the checked address; its Host header; its host name; whether https).
    A malformed address (a port of 99999, say) is a FetchError for this copy, never a crash of the run."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"{url[:200]} is not a valid address ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FetchError(f"{url[:200]} is not an http(s) address")
    if parts.username or parts.password:
        raise FetchError(f"{url[:200]} carries credentials; not fetched")
    port = port or (443 if parts.scheme == "https" else 80)
    address = checked_address(parts.hostname, port, allow=allow, resolve=resolve)
    literal = f"[{address}]" if address.version == 6 else str(address)
    target = parts._replace(netloc=f"{literal}:{port}").geturl()
    host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    return target, host_header, parts.hostname, parts.scheme == "https"
