"""Pure helpers for the IMAP edge: UID sets under the command-line limit, batches by size, and what a
server's capabilities mean for the worker, in words."""

from __future__ import annotations

from collections.abc import Iterator

import imapclient

MAX_SET_CHARS = 7000  # RFC 2683 3.2.1.5: keep a command line under about 8000 octets


def describe_server(client: imapclient.IMAPClient, keeps_keywords: bool) -> str:
    """In plain words, what the worker does differently on this server (logged once at start)."""
    def has(name: str) -> bool:
        return client.has_capability(name)

    notes = [
        "keeps keywords: handled messages get $RepublishDone/$RepublishPerson/$RepublishIgnored" if keeps_keywords
        else "keeps no keywords: handled messages are remembered in the database only; those for a person get "
             "\\Flagged alone",
        "IDLE: new mail is answered at once" if has("IDLE") else "no IDLE: the folder is polled",
        "MOVE" if has("MOVE") else "no MOVE: moves are COPY, delete, expunge",
        "UIDPLUS" if has("UIDPLUS") else "no UIDPLUS: an expunge after a move takes the whole folder's deleted mail",
        "SPECIAL-USE: the Sent folder is found by its \\Sent flag" if has("SPECIAL-USE")
        else "no SPECIAL-USE: the Sent folder is found by its name",
        "LITERAL+" if has("LITERAL+") else "no LITERAL+: each appended copy waits for the server's go-ahead",
        "CONDSTORE" if has("CONDSTORE") else "no CONDSTORE",
    ]
    return "; ".join(notes)


def by_bytes(uids: list[int], sizes: dict[int, int], budget: int) -> Iterator[list[int]]:
    """Consecutive runs of UIDs whose messages add up to at most `budget` bytes (at least one each)."""
    part: list[int] = []
    total = 0
    for uid in uids:
        if part and total + sizes[uid] > budget:
            yield part
            part, total = [], 0
        part.append(uid)
        total += sizes[uid]
    if part:
        yield part


def message_sets(uids: list[int], max_chars: int = MAX_SET_CHARS, *, ranges: bool = True) -> list[list]:
    """The UIDs as IMAP sequence sets, in order, split so that none is over `max_chars`: with `ranges`,
    runs as "4:9" (for STORE and MOVE), else one UID each (FETCH, whose answer imapclient sorts by UID)."""
    runs: list[list[int]] = []
    for uid in sorted(set(uids)):
        if ranges and runs and runs[-1][1] == uid - 1:
            runs[-1][1] = uid
        else:
            runs.append([uid, uid])
    sets: list[list] = []
    length = max_chars
    for first, last in runs:
        item = first if not ranges else str(first) if first == last else f"{first}:{last}"
        if length + len(str(item)) + 1 > max_chars:
            sets.append([])
            length = 0
        sets[-1].append(item)
        length += len(str(item)) + 1
    return sets
