"""Is the sender who the From header says? Read from our own server's Authentication-Results. Pure.

Anyone can write an Authentication-Results header into a message, so only headers carrying
the configured authserv-id (RFC 8601: the receiving server's own name, which it strips from
incoming mail) are believed, and of those only the topmost, the one our server added last.
A sender passes with dmarc=pass for the very domain of the From address we use (its header.from),
or with dkim=pass for a domain aligned with it (the same organisational domain, as DMARC aligns).
"""

from __future__ import annotations

import re

from processor.pipeline.recipients import organisational_domain

_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*([a-z0-9-]+)\s*=\s*([a-z]+)\b(.*)$", re.I | re.S)
_PROPERTY = re.compile(r"\b([a-z]+\.[a-z0-9-]+)\s*=\s*\"?([^\s;\"]+)", re.I)


def sender_check(headers: tuple[tuple[str, str], ...], authserv_id: str, from_address: str) -> str | None:
    """None when the sender is authenticated; else why not, in plain words."""
    ours = [value for name, value in headers if name == "authentication-results" and _authserv_id(value) == authserv_id]
    if not ours:
        return f"no Authentication-Results header from {authserv_id}"
    results = _results(ours[0])
    from_domain = from_address.rsplit("@", 1)[-1].lower() if "@" in from_address else ""
    if not from_domain:
        return "no single From address to check"
    if any(method == "dmarc" and result == "pass" and props.get("header.from", "").strip(".") == from_domain
           for method, result, props in results):
        return None
    for method, result, props in results:
        if method == "dkim" and result == "pass" and _aligned(props.get("header.d", ""), from_domain):
            return None
    summary = ", ".join(f"{method}={result}" for method, result, _ in results if method in ("dmarc", "dkim", "spf"))
    return f"{authserv_id} found no DMARC pass or aligned DKIM signature for {from_domain} ({summary or 'no results'})"


def _authserv_id(value: str) -> str:
    first = _COMMENT.sub(" ", value).split(";", 1)[0].split()
    return first[0].lower() if first else ""


def _results(value: str) -> list[tuple[str, str, dict[str, str]]]:
    results = []
    for clause in _COMMENT.sub(" ", value).split(";")[1:]:
        match = _RESULT.match(clause)
        if not match:
            continue
        props = {name.lower(): prop.lower() for name, prop in _PROPERTY.findall(match.group(3))}
        results.append((match.group(1).lower(), match.group(2).lower(), props))
    return results


def _aligned(signing_domain: str, from_domain: str) -> bool:
    """Relaxed alignment (RFC 7489): the same organisational domain."""
    signing_domain = signing_domain.strip(".").lower()
    if not signing_domain or "." not in signing_domain:
        return False
    return organisational_domain(signing_domain) == organisational_domain(from_domain)
