"""The only code that talks IMAP (imapclient): fetch batches, mark, copy replies to Sent (`sent`), wait in IDLE."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator

import imapclient
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from processor.config import ImapConfig
from processor.config.schema import PROVIDERS_FILING_SENT
from processor.mail.mailbox import BATCH_BYTES, Mark, Position, RawMessage
from processor.mail.oauth import OAuthError, TokenProvider, bearer_auth
from processor.mail.commands import by_bytes, describe_server, message_sets
from processor.mail.sent import append_copies, copies_in, find_sent_folder, message_id_of, uids_by_message_id
from processor.mail.tls import client_context

log = logging.getLogger(__name__)

KEYWORDS = {Mark.DONE: b"$RepublishDone", Mark.LOGGED: b"$RepublishDone", Mark.PERSON: b"$RepublishPerson",
            Mark.IGNORED: b"$RepublishIgnored"}
SIZE_BATCHES = 10   # batches whose sizes are asked for in one command: a round trip per batch saved
STALE_SECONDS = 5 * 60  # a connection unused this long is tried (NOOP) before use: servers log idle ones out


class MailboxError(Exception):
    """The IMAP server could not be reached or refused us; the message says why, without secrets."""


class ImapSource:
    def __init__(self, config: ImapConfig, idle_renew_seconds: float | None = None) -> None:
        self.config = config
        self.idle_renew_seconds = config.idle_renew_minutes * 60 if idle_renew_seconds is None else idle_renew_seconds
        self.name = f"imap://{config.username}@{config.host}/{config.folder}"
        self.client: imapclient.IMAPClient | None = None
        self._used_at = 0.0
        self._skipped: set[int] = set()
        self._uidvalidity: int | None = None
        self._sent_folder: str | None = None
        self.keeps_keywords = True      # PERMANENTFLAGS has \* (Exchange Online's has not)
        self._described = False
        self._searched: list[int] = []   # UIDs the last search found
        self._selected_at = 0.0
        self._sent_client: imapclient.IMAPClient | None = None
        self._sent_used_at = 0.0
        self._uidnext_searched: int | None = None
        self._searched_validity: int | None = None
        self._tokens = TokenProvider.for_server(config) if config.oauth2 else None

    # -- connection -------------------------------------------------------
    def connect(self) -> imapclient.IMAPClient:
        if self.client is not None and not _usable(self.client, self._used_at):
            self._drop_connection()
        self._used_at = time.monotonic()
        if self.client is not None:
            return self.client
        client, status = self._login(self.config.folder)
        self._selected_at = time.monotonic()
        self.keeps_keywords = b"\\*" in status.get(b"PERMANENTFLAGS", (b"\\*",))
        if not self._described:  # once per process, not per reconnect
            self._described = True
            log.info("IMAP server %s: %s", self.config.host, describe_server(client, self.keeps_keywords))
        uidvalidity = status.get(b"UIDVALIDITY")
        if uidvalidity != self._uidvalidity:
            self._skipped.clear()  # UIDs from another UIDVALIDITY mean nothing
            self._uidvalidity = uidvalidity
        self.client = client
        return client

    def _login(self, folder: str | None) -> tuple[imapclient.IMAPClient, dict]:
        """A new logged-in connection, with `folder` selected (and SELECT's answer) unless None."""
        config = self.config
        try:
            client = imapclient.IMAPClient(
                config.host, port=config.port, ssl=config.security == "tls",
                ssl_context=client_context(config.ca_file) if config.security != "none" else None,
                timeout=config.timeout,
            )
            if config.security == "starttls":
                client.starttls(client_context(config.ca_file))
            if self._tokens is not None:
                self._oauth2_login(client)
            else:
                client.login(config.username, config.password.reveal() if config.password else "")
            status = client.select_folder(folder) if folder is not None else {}
        except imapclient.exceptions.LoginError:
            if self._tokens is not None:
                self._tokens.invalidate()  # so the next attempt does not offer the refused token again
                raise MailboxError(f"IMAP OAuth2 login ({config.oauth2.mechanism}) refused for {config.username} "
                                   f"at {config.host}: the access token was not accepted") from None
            raise MailboxError(f"IMAP login refused for {config.username} at {config.host}") from None
        except OAuthError as exc:
            raise MailboxError(f"IMAP login for {config.username} at {config.host}: no OAuth2 access token: {exc}") from None
        except (OSError, IMAPClientError) as exc:
            raise MailboxError(f"cannot open IMAP folder {folder!r} at {config.host}:{config.port}: "
                               f"{type(exc).__name__}: {exc}") from None
        _keep_alive(client)
        return client, status

    def _sent_connection(self) -> imapclient.IMAPClient:
        """A connection of its own for the Sent folder: looking a copy up there means selecting it, and
        selecting the watched folder again costs seconds on a big one (Dovecot, 100,000 messages)."""
        if self._sent_client is not None and not _usable(self._sent_client, self._sent_used_at):
            self._drop_sent_connection()
        self._sent_used_at = time.monotonic()
        if self._sent_client is None:
            self._sent_client, _ = self._login(None)
        return self._sent_client

    def _drop_sent_connection(self) -> None:
        client, self._sent_client = self._sent_client, None
        _shut(client)

    def _oauth2_login(self, client: imapclient.IMAPClient) -> None:
        mechanism = self.config.oauth2.mechanism
        if not client.has_capability(f"AUTH={mechanism}"):
            raise MailboxError(f"IMAP server {self.config.host} does not offer AUTH={mechanism}")
        # A token asked for on every (re)connect: the one of the last connection may have expired.
        client.sasl_login(mechanism, bearer_auth(self.config, self._tokens.access_token()))

    def close(self) -> None:
        if self._sent_client is not None:
            try:
                self._sent_client.logout()
            except (OSError, IMAPClientError):
                self._drop_sent_connection()
            self._sent_client = None
        if self.client is not None:
            try:
                self.client.logout()
            except (OSError, IMAPClientError):
                self._drop_connection()
            self.client = None

    def _drop_connection(self) -> None:
        client, self.client = self.client, None
        _shut(client)

    # -- reading ----------------------------------------------------------
    def batches(self, batch_size: int, max_bytes: int, after: Position | None = None) -> Iterator[list[RawMessage]]:
        client = self.connect()
        try:
            criteria = ["NOT", "DELETED"]
            for keyword in KEYWORDS.values() if self.keeps_keywords else ():
                criteria += ["UNKEYWORD", keyword]
            # ASCII criteria only: some servers answer BADCHARSET to anything else; the exact
            # subject is checked on our side after decoding. Delivery reports are fetched too,
            # since one may be returning a reply of ours.
            wanted = ["OR", "SUBJECT", "republish", "OR", "HEADER", "Content-Type", "report", "FROM", "mailer-daemon"]
            # See mail delivered since this session last looked: a search may answer from the session's
            # older view of the folder. And now and then select it afresh: a folder deleted and made again
            # under a session can go on being answered from the deleted one (Dovecot does), where a search
            # from the ledger's position would find nothing, ever. Not every pass: on a big folder a SELECT
            # takes seconds (Dovecot, 100,000 messages: 1.5 s).
            if time.monotonic() - self._selected_at > self.idle_renew_seconds:
                self._reselect(client)
            else:
                client.noop()
            self._uidnext_searched = self._uidnext(client)  # before the search: anything newer is new mail
            since = after if after is not None and after.uidvalidity == self._uidvalidity else None
            if since is not None:
                # Only what is new since the last pass, and the few it left waiting. ("N:*" always
                # includes the newest message, even below N: filtered out below.)
                ranges = [f"{since.next_uid}:*"] + [str(uid) for uid in sorted(since.waiting)]
                wanted = wanted + ["UID", ",".join(ranges)]
            found = client.search(criteria + wanted)
            if since is not None:
                found = [uid for uid in found if uid >= since.next_uid or uid in since.waiting]
            self._searched = sorted(found)
            uids = [uid for uid in found if uid not in self._skipped]
        except (OSError, IMAPClientError) as exc:
            self._drop_connection()
            raise MailboxError(f"IMAP search failed: {type(exc).__name__}: {exc}") from None
        validity = self._searched_validity = self._uidvalidity
        sizes: dict[int, int] = {}
        for start in range(0, len(uids), batch_size):
            chunk = sorted(uids[start : start + batch_size])
            client = self.connect()  # the same connection, unless a step of the last batch had to replace it
            if self._uidvalidity != validity:
                return  # the UIDs found above mean nothing now: the next round searches again
            try:
                if any(uid not in sizes for uid in chunk):  # a message expunged meanwhile is simply absent
                    sizes = {uid: int(data.get(b"RFC822.SIZE", 0)) for part in
                             message_sets(uids[start : start + batch_size * SIZE_BATCHES], ranges=False)
                             for uid, data in client.fetch(part, ["RFC822.SIZE"]).items()}
                large = [uid for uid in chunk if sizes.get(uid, 0) > max_bytes]
                # Too big to download: its Message-ID alone still keys it, so it is recorded only once.
                headers = client.fetch(large, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if large else {}
            except (OSError, IMAPClientError) as exc:
                self._drop_connection()
                raise MailboxError(f"IMAP fetch failed: {type(exc).__name__}: {exc}") from None
            for uid in large:
                header = headers.get(uid, {}).get(b"BODY[HEADER.FIELDS (MESSAGE-ID)]", b"")
                yield [RawMessage(str(uid), None, sizes[uid], header.decode("ascii", "replace").partition(":")[2])]
            for part in by_bytes([uid for uid in chunk if uid in sizes and uid not in large], sizes, BATCH_BYTES):
                try:
                    bodies = self.connect().fetch(part, ["BODY.PEEK[]"])
                except (OSError, IMAPClientError) as exc:
                    self._drop_connection()
                    raise MailboxError(f"IMAP fetch failed: {type(exc).__name__}: {exc}") from None
                # A message expunged meanwhile is simply absent.
                yield [RawMessage(str(uid), bodies[uid][b"BODY[]"], sizes[uid]) for uid in part
                       if bodies.get(uid, {}).get(b"BODY[]") is not None]

    def position(self, finished: list[str]) -> Position | None:
        """The folder's position after the last search: up to the UIDNEXT seen before it, with the UIDs it
        found that are not `finished` (nor skipped) still waiting."""
        if self._searched_validity is None or self._uidnext_searched is None:
            return None
        done = {int(ref) for ref in finished} | self._skipped
        return Position(self._searched_validity, self._uidnext_searched,
                        frozenset(uid for uid in self._searched if uid not in done))

    def _uidnext(self, client: imapclient.IMAPClient) -> int | None:
        return client.folder_status(self.config.folder, [b"UIDNEXT"]).get(b"UIDNEXT")

    def skip(self, ref: str) -> None:
        self._skipped.add(int(ref))

    # -- writing ----------------------------------------------------------
    def mark(self, refs: list[str], mark: Mark) -> None:
        """Mark the messages with the UIDs `refs` found by the last search, as UID sets."""
        if not refs:
            return
        validity = self._searched_validity
        client = self.connect()
        if self._uidvalidity != validity:
            # The folder was renumbered since these UIDs were found: they may name other messages now.
            # The next round searches again and finds these already recorded.
            log.info("IMAP folder %r has a new UIDVALIDITY: %d marks wait for the next round", self.config.folder, len(refs))
            return
        uids = [int(ref) for ref in refs]
        # A server that keeps no keywords refuses a STORE naming one outright (Exchange Online: "BAD Command
        # Argument Error"), \Flagged included: there \Flagged goes alone, and the folder ledger remembers the rest.
        flags = ([KEYWORDS[mark]] if self.keeps_keywords else []) + ([imapclient.FLAGGED] if mark is Mark.PERSON else [])
        try:
            for part in message_sets(uids):
                if flags:
                    client.add_flags(part, flags, silent=True)
                if self.config.processed_folder and mark is not Mark.PERSON:
                    self._move(client, part, self.config.processed_folder)
        except (OSError, IMAPClientAbortError) as exc:
            self._drop_connection()
            raise MailboxError(f"IMAP could not mark messages {_uid_list(uids)}: {type(exc).__name__}: {exc}") from None
        except IMAPClientError as exc:
            # The server said no (a message was expunged meanwhile, the folder cannot be created):
            # the connection is fine, the database already knows, and the next round tries again.
            log.warning("IMAP could not mark messages %s: %s", _uid_list(uids), exc)

    def follow_desk(self, message_ids: list[str], *, for_person: bool) -> int | None:
        """Tell the watched folder what an editor decided: a resolved request's message loses \\Flagged (and
        $RepublishPerson) and is marked done (moved to the processed folder, if one is set); a reopened one
        is flagged again. Looked up by Message-ID, so a renumbered folder does not matter; a message no
        longer there (deleted, moved by a person) is left alone. How many messages changed; None when the
        server refused, to be tried again on the next pass."""
        client = self.connect()
        try:
            found = uids_by_message_id(client, message_ids)
            if len(found) < len(set(message_ids)):
                # Deleted or moved by a person, or a server whose HEADER search misses some Message-IDs
                # (reported of Exchange and Yahoo): left as they are.
                log.info("IMAP folder %r: %d of %d message(s) decided at the desk not found by Message-ID",
                         self.config.folder, len(set(message_ids)) - len(found), len(set(message_ids)))
            uids = sorted({uid for found_uids in found.values() for uid in found_uids})
            person = [KEYWORDS[Mark.PERSON]] if self.keeps_keywords else []
            done = [KEYWORDS[Mark.DONE]] if self.keeps_keywords else []
            for part in message_sets(uids):
                if for_person:
                    if done:
                        client.remove_flags(part, done, silent=True)
                    client.add_flags(part, [imapclient.FLAGGED, *person], silent=True)
                else:
                    client.remove_flags(part, [imapclient.FLAGGED, *person], silent=True)
                    if done:
                        client.add_flags(part, done, silent=True)
                    if self.config.processed_folder:
                        self._move(client, part, self.config.processed_folder)
        except (OSError, IMAPClientAbortError) as exc:
            self._drop_connection()
            raise MailboxError(f"IMAP could not follow the desk: {type(exc).__name__}: {exc}") from None
        except IMAPClientError as exc:  # refused (expunged meanwhile): the connection is fine, try next pass
            log.warning("IMAP could not change the flags of %d message(s) decided at the desk: %s", len(message_ids), exc)
            return None
        return len(uids)

    def _move(self, client: imapclient.IMAPClient, uids: list[str], folder: str) -> None:
        if not client.folder_exists(folder):
            client.create_folder(folder)
        if client.has_capability("MOVE"):
            client.move(uids, folder)
        else:
            client.copy(uids, folder)
            client.delete_messages(uids, silent=True)
            client.uid_expunge(uids) if client.has_capability("UIDPLUS") else client.expunge()

    def save_sent(self, raws: list[bytes]) -> None:
        """Copies of sent replies in the Sent folder (found, or made), each once: a copy already there (the
        provider filed it, or an earlier attempt saved it) is not appended again. `[imap] save_sent`:
        "never"; "always"; "auto" (the default) leaves it to providers that file what is sent over their
        SMTP themselves (Microsoft 365, Google)."""
        mode = self.config.save_sent
        if not raws or mode == "never" or (mode == "auto" and self.config.provider in PROVIDERS_FILING_SENT):
            return
        client = self._sent_connection()
        try:
            folder = self._sent_folder = self._sent_folder or find_sent_folder(client, self.config.sent_folder)
            by_id = {message_id_of(raw) or str(index): raw for index, raw in enumerate(raws)}
            there = copies_in(client, folder, list(by_id))
            missing = [raw for message_id, raw in by_id.items() if message_id not in there]
            if missing:
                append_copies(client, folder, missing)
        except (OSError, IMAPClientAbortError) as exc:
            self._drop_sent_connection()
            raise MailboxError(f"IMAP could not save the reply to Sent: {type(exc).__name__}: {exc}") from None
        except IMAPClientError as exc:  # a "NO" (no such folder, over quota): the connection is fine
            self._sent_folder = None  # found again next time (a folder renamed or removed meanwhile)
            raise MailboxError(f"IMAP could not save the reply to Sent: {exc}") from None

    def sent_copies(self, message_ids: list[str]) -> set[str]:
        """Which of these replies have a copy in the Sent folder, ours or the provider's."""
        client = self._sent_connection()
        try:
            folder = self._sent_folder = self._sent_folder or find_sent_folder(client, self.config.sent_folder)
            return copies_in(client, folder, message_ids)
        except (OSError, IMAPClientError) as exc:
            self._drop_sent_connection()
            raise MailboxError(f"IMAP could not look in Sent: {type(exc).__name__}: {exc}") from None

    def _reselect(self, client: imapclient.IMAPClient) -> None:
        """Select the watched folder afresh: a new UIDVALIDITY is noticed, and the session's view renewed."""
        validity = client.select_folder(self.config.folder).get(b"UIDVALIDITY")
        self._selected_at = time.monotonic()
        if validity != self._uidvalidity:
            self._skipped.clear()
            self._uidvalidity = validity

    # -- waiting ----------------------------------------------------------
    def wait(self, seconds: float, stop: threading.Event) -> None:
        """IDLE until the server reports new mail (or `seconds` pass), where the server has IDLE; else sleep."""
        client = self.connect()
        try:
            # Mail that arrived while we were busy was announced in the answer to some other command,
            # which imapclient does not keep, and IDLE will not announce it again: look before waiting
            # (after a NOOP: a server may answer STATUS on the selected folder from the view it last synced).
            client.noop()
            if self._uidnext(client) != self._uidnext_searched:
                return
        except (OSError, IMAPClientError) as exc:
            self._drop_connection()
            raise MailboxError(f"IMAP connection lost: {type(exc).__name__}: {exc}") from None
        if not (self.config.use_idle and client.has_capability("IDLE")):
            stop.wait(seconds)
            return
        deadline = time.monotonic() + min(seconds, self.idle_renew_seconds)
        try:
            client.idle()
            try:
                while not stop.is_set() and time.monotonic() < deadline:
                    responses = client.idle_check(timeout=1)
                    if any(isinstance(r, tuple) and len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                        break
                    if not responses and _closed_by_peer(client):
                        # imapclient's idle_check swallows EOF: without this, a dropped connection
                        # would only be noticed when the IDLE is renewed, many minutes later.
                        raise MailboxError("IMAP connection closed by the server while waiting")
            finally:
                client.idle_done()
        except MailboxError:
            self._drop_connection()
            raise
        except (OSError, IMAPClientError) as exc:
            self._drop_connection()
            raise MailboxError(f"IMAP connection lost while waiting: {type(exc).__name__}: {exc}") from None


def _usable(client: imapclient.IMAPClient, used_at: float) -> bool:
    """A connection may wait hours between uses (a review's Sent copy), and a server logs an idle session
    out after 30 minutes (RFC 3501): one unused for a while is tried now, not found dead by a failed command."""
    if time.monotonic() - used_at <= STALE_SECONDS:
        return True
    try:
        client.noop()
        return True
    except (OSError, IMAPClientError):
        return False


def _shut(client: imapclient.IMAPClient | None) -> None:
    if client is not None:
        try:
            client.shutdown()
        except (OSError, IMAPClientError):
            pass  # already broken: closing it is all there was to do


def _uid_list(uids: list[int]) -> str:
    return ",".join(map(str, uids[:10])) + ("…" if len(uids) > 10 else "")


def _closed_by_peer(client: imapclient.IMAPClient) -> bool:
    """True when the server has closed the connection (or it is broken): peeks at the TCP socket, TLS or not."""
    try:
        with socket.socket(fileno=os.dup(client.socket().fileno())) as raw:
            return raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False  # nothing to read: still open
    except OSError:
        return True


def _keep_alive(client: imapclient.IMAPClient) -> None:
    """TCP keepalive, so a connection that a NAT or firewall dropped silently fails within minutes; and
    no Nagle delay, which with the peer's delayed ACK costs up to 40 ms on every command sent in parts
    (an APPEND's literal, say)."""
    sock = client.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", 120), ("TCP_KEEPINTVL", 30), ("TCP_KEEPCNT", 4)):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
