"""URL normalisation: the many spellings of one story's address -> one key. Pure.

Partners paste links from browsers, newsletters, social posts and AMP pages, so the same story
arrives as `http://www.site.org/a/b/?utm_source=x#top`, `https://site.org/a/b/amp/` and so on.
`url_key` folds all of them to `site.org/a/b`, which is what the catalog stores and matches on.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

# Query parameters that only say where a click came from, never which page it is.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "igshid",
        "mc_cid", "mc_eid", "mkt_tok", "_hsenc", "_hsmi", "hsctatracking", "oly_anon_id", "oly_enc_id",
        "vero_id", "vero_conv", "s_cid", "cmpid", "smid", "smtyp", "ref", "ref_src", "referrer", "source",
        "sr_share", "share", "ito", "ocid", "cid", "icid", "amp", "outputtype", "output", "amp_js_v",
        "usqp", "_gl", "ga", "spm", "trk", "trkcampaign", "sc_cid", "cmp", "campaign", "via",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "at_", "__s")
AMP_HOST_PREFIXES = ("amp.", "m.", "mobile.")
AMP_PATH_SUFFIXES = ("/amp", "/amp.html", ".amp", ".amp.html", "/?amp")

# http(s) links and bare www. links in plain text; stops at whitespace, quotes and angle brackets.
_TEXT_URL = re.compile(r"""(?i)\b(?:https?://|www\.)[^\s<>"'\]\[{}|\\^`]+""")
_TRAILING_PUNCT = ".,;:!?)»”’'\""
MAX_URL_CHARS = 8000  # RFC 9110 asks that at least this much be supported; story links are far shorter


def url_host(url: str) -> str:
    """The lower-case host of an URL, without a trailing dot; '' when there is none."""
    try:
        return (urlsplit(url.strip()).hostname or "").rstrip(".").lower()
    except ValueError:
        return ""


def host_matches(host: str, allowed_hosts: tuple[str, ...] | list[str]) -> bool:
    """True if host is one of the allowed hosts, or their www./amp. variant."""
    host = strip_host_prefixes(host.lower().rstrip("."))
    return any(host == strip_host_prefixes(allowed) for allowed in allowed_hosts)


def strip_host_prefixes(host: str) -> str:
    host = host.lower()
    if host.startswith("www."):
        host = host[4:]
    for prefix in AMP_HOST_PREFIXES:
        if host.startswith(prefix) and host.count(".") >= 2:
            return host[len(prefix):]
    return host


def url_key(url: str) -> str | None:
    """Fold an URL to the key stories are matched on, or None if it is not an http(s) URL."""
    url = url.strip().strip("<>")
    if url.lower().startswith("www."):
        url = "https://" + url
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    host = strip_host_prefixes(host.rstrip("."))
    path = re.sub(r"/{2,}", "/", unquote(parts.path or "/")).rstrip("/")
    lowered = path.lower()
    for suffix in AMP_PATH_SUFFIXES:
        if lowered.endswith(suffix) and len(path) > len(suffix):
            path = path[: -len(suffix)]
            break
    if path.lower().startswith("/amp/"):
        path = path[4:]
    path = path.rstrip("/")
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if name.lower() not in TRACKING_PARAMS and not name.lower().startswith(TRACKING_PREFIXES)
    ]
    key = host + path
    if query:
        key += "?" + urlencode(sorted(query))
    return key


def links_in_text(text: str) -> list[str]:
    """http(s) and www. links in plain text, in order, trailing punctuation removed."""
    found = []
    for match in _TEXT_URL.finditer(text):
        link = match.group(0)
        if len(link) > MAX_URL_CHARS:
            continue  # no page's address is this long: a trap, or noise
        opened, closed = link.count("("), link.count(")")  # counted once: the loop below may strip many
        end = len(link)
        while end and link[end - 1] in _TRAILING_PUNCT:
            if link[end - 1] == ")":
                if opened >= closed:
                    break  # a URL's own "(...)", as in Wikipedia's
                closed -= 1
            end -= 1
        link = link[:end]
        if link:
            found.append(link)
    return found


def unique(items) -> list:
    """Items in first-seen order, without repeats."""
    return list(dict.fromkeys(items))
