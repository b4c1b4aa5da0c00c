"""The Sent folder: finding it on any server, and copies of our replies in it, never two of one reply.

Servers name it differently: RFC 6154 special-use `\\Sent` (Dovecot, Gmail's `[Gmail]/Sent Mail`),
else a usual name in the personal namespace (`Sent`, `Sent Items` on Exchange, `Sent Messages`,
`INBOX.Sent`); a server with none gets a `Sent` folder made, marked `\\Sent` where the server takes
that at creation (RFC 6154 CREATE-SPECIAL-USE), so mail clients show it as the Sent folder. A copy is
looked up by its Message-ID before it is appended, so a reply whose copy the provider filed itself,
or a copy saved before a crash, is not saved twice.
"""

from __future__ import annotations

import re

import imapclient
from imapclient.imapclient import SENT

CREATED_NAME = "Sent"
MAX_SEARCH_CHARS = 6000  # RFC 2683: keep a command line under about 8000 octets
# On one line, or folded onto the next as Outlook and Exchange write it ("Message-ID:\r\n\t<...>").
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(?:\r?\n[ \t]+)?<([^<>\s]+)>", re.I | re.M)


def find_sent_folder(client: imapclient.IMAPClient, configured: str | None) -> str:
    """The Sent folder's name: the configured one, else found by special-use or by a usual name, else made."""
    if configured:
        return configured
    found = client.find_special_folder(SENT)  # special-use \Sent, then Sent / Sent Items / Sent Messages
    if found:
        return found
    if client.has_capability("CREATE-SPECIAL-USE"):
        try:
            # imapclient's create_folder() takes no USE list (RFC 6154 section 3): the same command with it
            client._command_and_check("create", client._normalise_folder(CREATED_NAME) + b" (USE (\\Sent))")
            return CREATED_NAME
        except imapclient.exceptions.IMAPClientError:  # e.g. NO [USEATTR]: a plain folder then
            pass
    client.create_folder(CREATED_NAME)
    return CREATED_NAME


def message_id_of(raw: bytes) -> str:
    """The Message-ID in a message's header (ours, or a partner's as their mail program wrote it)."""
    header = raw.split(b"\r\n\r\n", 1)[0]
    match = _MESSAGE_ID.search(header)
    return match.group(1).decode("ascii", "replace") if match else ""


def copies_in(client: imapclient.IMAPClient, folder: str, message_ids: list[str]) -> set[str]:
    """Which of these Message-IDs have a copy in `folder`."""
    wanted = [mid for mid in dict.fromkeys(message_ids) if _searchable(mid)]
    if not wanted:
        return set()
    client.select_folder(folder, readonly=True)
    return set(uids_by_message_id(client, wanted))


def uids_by_message_id(client: imapclient.IMAPClient, message_ids: list[str]) -> dict[str, list[int]]:
    """{Message-ID: UIDs} of the messages in the selected folder that carry one of these Message-IDs
    (a few OR'ed HEADER searches; HEADER matches substrings, so each hit's own header is compared)."""
    wanted = [mid for mid in dict.fromkeys(message_ids) if _searchable(mid)]
    found: dict[str, list[int]] = {}
    for part in _search_parts(wanted) if wanted else []:
        criteria: list = []
        for mid in part[:-1]:
            criteria += ["OR", "HEADER", "Message-ID", f"<{mid}>"]
        criteria += ["HEADER", "Message-ID", f"<{part[-1]}>"]
        uids = client.search(criteria)
        if uids:
            headers = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
            for uid, data in headers.items():
                mid = message_id_of(data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].strip() + b"\r\n\r\n")
                found.setdefault(mid, []).append(uid)
    return {mid: uids for mid, uids in found.items() if mid in wanted}


def _searchable(message_id: str) -> bool:
    return (bool(message_id) and message_id.isascii() and message_id.isprintable() and " " not in message_id
            and '"' not in message_id and "\\" not in message_id)


def append_copies(client: imapclient.IMAPClient, folder: str, raws: list[bytes]) -> None:
    if len(raws) > 1 and client.has_capability("MULTIAPPEND"):
        # RFC 3502: all in one command (with LITERAL+, in one round trip). Unlike append(),
        # multiappend() hands back a "NO" instead of raising it.
        status, detail = client.multiappend(folder, [{"msg": raw, "flags": [imapclient.SEEN]} for raw in raws])
        if status != "OK":
            raise imapclient.exceptions.IMAPClientError(f"multiappend failed: {detail}")
    else:
        for raw in raws:
            client.append(folder, raw, flags=[imapclient.SEEN])


def _search_parts(message_ids: list[str]) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    length = 0
    for mid in message_ids:
        if parts[-1] and length + len(mid) + 30 > MAX_SEARCH_CHARS:
            parts.append([])
            length = 0
        parts[-1].append(mid)
        length += len(mid) + 30
    return parts
