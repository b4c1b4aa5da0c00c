"""Test doubles for the mail providers most newsrooms use, built from the real Dovecot of tests/servers.py.

Dovecot follows the standards closely; Microsoft 365 (Exchange Online) and Google Workspace do not in
ways that matter to the worker:

* `ExchangeLikeImapProxy`: a loopback IMAP proxy in front of a Dovecot with Exchange's folder layout
  (`EXCHANGE_LAYOUT`): no keywords (PERMANENTFLAGS without `\\*`, a STORE naming one refused whole,
  FETCH showing none), Exchange Online's CAPABILITY list, no special-use attributes in LIST, and a
  switch for an IDLE that goes silent.
* `LayoutDovecot` with `GMAIL_LAYOUT`: Gmail's `[Gmail]/...` folders and their special-use attributes;
  with `NO_SENT_LAYOUT`: a server that has no Sent folder at all.
* `FilingSmtpServer`: an SMTP server that files its own copy of each accepted message in the user's
  IMAP Sent folder, as Gmail does for authenticated submissions.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import imapclient

from tests.servers import Dovecot, SmtpServer, _Collector, close_listener, dovecot_binary, missing

# -- folder layouts -------------------------------------------------------------------------------

# Mailbox name -> special-use attribute (None: a plain folder). Both providers use "/" as separator.
EXCHANGE_LAYOUT = {"Archive": "\\Archive", "Deleted Items": "\\Trash", "Drafts": "\\Drafts",
                   "Junk Email": "\\Junk", "Outbox": None, "Sent Items": "\\Sent"}
GMAIL_LAYOUT = {"[Gmail]/All Mail": "\\All", "[Gmail]/Drafts": "\\Drafts", "[Gmail]/Important": "\\Important",
                "[Gmail]/Sent Mail": "\\Sent", "[Gmail]/Spam": "\\Junk", "[Gmail]/Starred": "\\Flagged",
                "[Gmail]/Trash": "\\Trash"}
NO_SENT_LAYOUT: dict[str, str | None] = {}  # INBOX only: nothing named or marked as Sent


class LayoutDovecot(Dovecot):
    """The test Dovecot with its own set of folders (created and subscribed for every account) in place
    of the default Sent: the provider's layout, special-use attributes included."""

    def __init__(self, binary: str, root: Path, tls: dict, *, layout: dict[str, str | None],
                 separator: str = "/", **options) -> None:
        super().__init__(binary, root, tls, **options)
        self.layout = layout
        self.separator = separator

    def config_text(self) -> str:
        text = super().config_text()
        start = text.find("\nnamespace inbox {")
        if start < 0:
            raise RuntimeError("tests/servers.py Dovecot config has no 'namespace inbox' block to replace")
        depth, end = 0, start
        for end in range(start, len(text)):  # the block's matching brace: whatever follows it stays
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0 and text[end] == "}":
                break
        return text[:start] + "\n" + self._namespace_text() + text[end + 1:]

    def _namespace_text(self) -> str:
        lines = ["namespace inbox {", "  inbox = yes", f"  separator = {self.separator}"]
        for name, special_use in self.layout.items():
            lines.append(f'  mailbox "{name}" {{')
            if special_use:
                lines.append(f"    special_use = {special_use}")
            lines += ["    auto = subscribe", "  }"]
        return "\n".join(lines + ["}"]) + "\n"


def running_layout_dovecot(tls: dict, layout: dict[str, str | None], **options):
    """A started LayoutDovecot for a fixture to yield (skipped or failed, as `missing` says, without Dovecot)."""
    binary = dovecot_binary()
    if binary is None:
        missing("dovecot is not installed", "scripts/setup.sh installs it: apt package dovecot-imapd")
    # Not under pytest's tmp dir: that is private (0700) and Dovecot's unprivileged processes must read here.
    root = Path(tempfile.mkdtemp(prefix="republish-dovecot-"))
    root.chmod(0o755)
    server = LayoutDovecot(binary, root, tls, layout=layout, **options)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


# -- Exchange Online ------------------------------------------------------------------------------

EXCHANGE_CAPABILITY = (b"IMAP4 IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2 SASL-IR UIDPLUS MOVE ID UNSELECT CHILDREN IDLE "
                       b"NAMESPACE LITERAL+")
EXCHANGE_FLAGS = b"(\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)"
EXCHANGE_GREETING = b"The Microsoft Exchange IMAP4 service is ready."
REFUSAL_TEXT = b"Command Argument Error. 11"  # Exchange's wording (MailKit #1139, node-imap #602)
SPECIAL_USE = {b"\\all", b"\\archive", b"\\drafts", b"\\flagged", b"\\junk", b"\\sent", b"\\trash", b"\\important"}

MAX_LINE = 4 * 1024 * 1024   # one response or command line (a SEARCH answer for a large folder fits)
CHUNK = 64 * 1024            # literal bytes are streamed through in pieces of at most this
CONTINUATION_SECONDS = 30    # how long a client's synchronizing literal waits for the server's "+"

LITERAL = re.compile(rb"~?\{(\d+)(\+?)\}\r?\n\Z")  # a line ending in {n}, {n+} (or literal8 ~{n})
STORE = re.compile(rb"(\S+) (?:UID )?STORE \S+ (?:\([^)]*\) )?[+-]?FLAGS(?:\.SILENT)? \(?([^)\r\n]*)\)?\r?\n\Z", re.I)
IDLE = re.compile(rb"(\S+) IDLE\r?\n\Z", re.I)
CREATE = re.compile(rb"(\S+) CREATE (?:\"[^\"]*\"|\S+)( \(USE [^\r\n]*\))?\r?\n\Z", re.I)
FETCH = re.compile(rb"\* \d+ FETCH ", re.I)
# A quoted string (left alone: a subject may say "FLAGS (...)") or a FLAGS list to filter.
FETCH_FLAGS = re.compile(rb'"(?:[^"\\\r\n]|\\.)*"|(?<![\w.\\])FLAGS \(([^)]*)\)', re.I)
CAPABILITY_CODE = re.compile(rb"\[CAPABILITY [^\]]*\]", re.I)
LIST = re.compile(rb"(\* (?:LIST|LSUB) \()([^)]*)(\).*)", re.I | re.S)
NOTICE = re.compile(rb"\* \d+ (EXISTS|RECENT)\r?\n\Z", re.I)


def _is_keyword(flag: bytes) -> bool:
    return not flag.startswith(b"\\") and flag.lower() != b"$mdnsent"


class ExchangeLikeImapProxy:
    """Plain IMAP on 127.0.0.1 (the test configs allow security = "none" to loopback) in front of a Dovecot,
    rewriting what Exchange Online does differently. Literal bytes pass through untouched in both
    directions; only command and response lines are looked at.

    `keyword_refusal` is the status of the answer to a STORE naming a keyword ("BAD", as Exchange's logs
    show, or "NO"); `idle_silent` holds back EXISTS/RECENT while a client is in IDLE (Office 365's IDLE is
    reported to go quiet) and hands them over with the IDLE's completion; `list_special_use` keeps the
    special-use attributes in LIST, as Exchange's listings in the wild show them although it does not
    advertise SPECIAL-USE (off by default: the harder case, a Sent folder known only by its name).
    `capability` replaces Exchange's CAPABILITY (to play another server); `refuse_create_use` answers
    a CREATE with a USE list "NO [USEATTR]", as RFC 6154 lets a server do. `creates` records the CREATE
    commands seen.
    """

    def __init__(self, upstream_port: int, *, keyword_refusal: str = "BAD", idle_silent: bool = False,
                 list_special_use: bool = False, capability: bytes = EXCHANGE_CAPABILITY,
                 refuse_create_use: bool = False) -> None:
        self.upstream_port = upstream_port
        self.capability = capability
        self.refuse_create_use = refuse_create_use
        self.creates: list[bytes] = []
        self.keyword_refusal = keyword_refusal
        self.idle_silent = idle_silent
        self.list_special_use = list_special_use
        self.port = 0
        self.refused_stores = 0     # STOREs answered with the refusal
        self.held_notices = 0       # EXISTS/RECENT held back during a silent IDLE
        self.lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._sessions: set[_Session] = set()

    def start(self) -> None:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._accepting = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._accepting.start()

    def stop(self) -> None:
        """Refuse new connections, drop the open ones and wait for their threads."""
        close_listener(self._listener)
        self._listener = None
        if self._accepting is not None:
            self._accepting.join(timeout=5)
        with self.lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.close()
        for session in sessions:
            session.join(timeout=5)

    @property
    def open_sessions(self) -> int:
        with self.lock:
            return len(self._sessions)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            session = _Session(self, client, upstream)
            with self.lock:
                self._sessions.add(session)
            session.start()

    def _forget(self, session: "_Session") -> None:
        with self.lock:
            self._sessions.discard(session)


class _Waiter:
    """A client's synchronizing literal waiting for the server: "+" (send it) or the tagged answer (don't)."""

    def __init__(self, tag: bytes) -> None:
        self.tag = tag
        self.go = False
        self.event = threading.Event()

    def answer(self, go: bool) -> None:
        self.go = go
        self.event.set()


class _Closed(Exception):
    pass


class _Session:
    """One client connection and its own upstream connection: a thread per direction."""

    def __init__(self, proxy: ExchangeLikeImapProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client, self.upstream = client, upstream
        self.lock = threading.Lock()           # guards the state below, shared by the two threads
        self.refused: dict[bytes, bytes] = {}  # tag -> refusal: commands replaced by a NOOP, answered with it
        self.idle_tag: bytes | None = None
        self.held: list[bytes] = []            # notices held back during a silent IDLE
        self.waiter: _Waiter | None = None
        self.running = 2                       # pumps still running: the last one out closes the sockets
        self.threads = [threading.Thread(target=self._run, args=(self._client_to_server,), daemon=True),
                        threading.Thread(target=self._run, args=(self._server_to_client,), daemon=True)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float) -> None:
        for thread in self.threads:
            thread.join(timeout)

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes both threads; each closes its own reader
            except OSError:
                pass
        with self.lock:
            waiter, self.waiter = self.waiter, None
        if waiter is not None:
            waiter.answer(False)

    def _run(self, pump) -> None:
        try:
            pump()
        except (_Closed, OSError):
            pass
        finally:
            self.close()
            with self.lock:
                self.running -= 1
                last = self.running == 0
            if last:
                for sock in (self.client, self.upstream):
                    sock.close()
                self.proxy._forget(self)

    # -- helpers ------------------------------------------------------------------------------------
    @staticmethod
    def _line(reader) -> bytes:
        line = reader.readline(MAX_LINE + 1)
        if not line.endswith(b"\n"):  # the peer left, or a line over MAX_LINE: give up the connection
            raise _Closed()
        return line

    @staticmethod
    def _copy(reader, target: socket.socket, count: int) -> None:
        while count:
            chunk = reader.read1(min(count, CHUNK))
            if not chunk:
                raise _Closed()
            target.sendall(chunk)
            count -= len(chunk)

    # -- client -> server ---------------------------------------------------------------------------
    def _client_to_server(self) -> None:
        with self.client.makefile("rb", buffering=CHUNK) as reader:
            while True:
                line = self._line(reader)
                tag = line.split(b" ", 1)[0]
                line = self._command(line)
                while literal := LITERAL.search(line):
                    waiter = None
                    if not literal[2]:  # {n}: the client sends the bytes only after the server's "+"
                        waiter = _Waiter(tag)
                        with self.lock:
                            self.waiter = waiter
                    self.upstream.sendall(line)
                    if waiter is not None:
                        if not waiter.event.wait(CONTINUATION_SECONDS):
                            raise _Closed()
                        if not waiter.go:  # refused before the literal: the client sends none
                            break
                    self._copy(reader, self.upstream, int(literal[1]))
                    line = self._line(reader)  # the rest of the command after the literal
                else:
                    self.upstream.sendall(line)

    def _command(self, line: bytes) -> bytes:
        """The command line to send upstream: a STORE naming a keyword becomes a NOOP, answered with the
        refusal (so every answer still comes from the one thread that writes to the client)."""
        if LITERAL.search(line):
            return line
        store = STORE.match(line)
        if store and any(_is_keyword(flag) for flag in store[2].split()):
            with self.lock:
                self.refused[store[1]] = self.proxy.keyword_refusal.encode() + b" " + REFUSAL_TEXT
            with self.proxy.lock:
                self.proxy.refused_stores += 1
            return store[1] + b" NOOP\r\n"
        create = CREATE.match(line)
        if create:
            with self.proxy.lock:
                self.proxy.creates.append(line.rstrip(b"\r\n"))
            if create[2] and self.proxy.refuse_create_use:
                with self.lock:
                    self.refused[create[1]] = b"NO [USEATTR] special-use attributes are not taken at CREATE here"
                return create[1] + b" NOOP\r\n"
        idle = IDLE.match(line)
        if idle:
            with self.lock:
                self.idle_tag = idle[1]
        return line

    # -- server -> client ---------------------------------------------------------------------------
    def _server_to_client(self) -> None:
        with self.upstream.makefile("rb", buffering=CHUNK) as reader:
            first = True
            while True:
                line = self._line(reader)
                out = self._greeting(line) if first else self._response(line)
                first = False
                self.client.sendall(out)
                is_fetch = FETCH.match(line) is not None
                while literal := LITERAL.search(line):
                    self._copy(reader, self.client, int(literal[1]))
                    line = self._line(reader)  # the response goes on after the literal
                    self.client.sendall(_strip_keywords(line) if is_fetch else line)

    def _greeting(self, line: bytes) -> bytes:
        if line.startswith(b"* OK"):
            return b"* OK [CAPABILITY " + self.proxy.capability + b"] " + EXCHANGE_GREETING + b"\r\n"
        return line

    def _response(self, line: bytes) -> bytes:
        tag, _, rest = line.partition(b" ")
        if tag == b"+":
            self._answer_waiter(tag, go=True)
            return line
        if tag != b"*":
            return self._tagged(tag, line)
        if FETCH.match(line):
            return _strip_keywords(line)
        word = rest.split(b" ", 1)[0].upper()
        if word == b"CAPABILITY":
            return b"* CAPABILITY " + self.proxy.capability + b"\r\n"
        if word == b"FLAGS":
            return b"* FLAGS " + EXCHANGE_FLAGS + b"\r\n"
        if rest.upper().startswith(b"OK [PERMANENTFLAGS (") and not rest.upper().startswith(b"OK [PERMANENTFLAGS ()"):
            return b"* OK [PERMANENTFLAGS " + EXCHANGE_FLAGS + b"] Permanent flags\r\n"
        if word in (b"LIST", b"LSUB") and not self.proxy.list_special_use:
            match = LIST.match(line)
            if match:
                attributes = [a for a in match[2].split() if a.lower() not in SPECIAL_USE]
                return match[1] + b" ".join(attributes) + match[3]
        if self.proxy.idle_silent and NOTICE.match(line):
            with self.lock:
                if self.idle_tag is not None:
                    self.held.append(line)
                    with self.proxy.lock:
                        self.proxy.held_notices += 1
                    return b""
        return self._capability_code(line)

    def _capability_code(self, line: bytes) -> bytes:
        return CAPABILITY_CODE.sub(b"[CAPABILITY " + self.proxy.capability + b"]", line)

    def _tagged(self, tag: bytes, line: bytes) -> bytes:
        self._answer_waiter(tag, go=False)
        with self.lock:
            refusal = self.refused.pop(tag, None)
            held = []
            if tag == self.idle_tag:
                held, self.held, self.idle_tag = self.held, [], None
        if refusal is not None:
            return tag + b" " + refusal + b"\r\n"
        # Held notices come late rather than never, so the client's message count stays right.
        return b"".join(held) + self._capability_code(line)

    def _answer_waiter(self, tag: bytes, go: bool) -> None:
        with self.lock:
            waiter = self.waiter
            if waiter is None or (not go and waiter.tag != tag):
                return
            self.waiter = None
        waiter.answer(go)


def _strip_keywords(segment: bytes) -> bytes:
    """A FETCH response line with keywords left out of FLAGS: Exchange keeps none (but $MDNSent)."""
    def keep(match: re.Match) -> bytes:
        if match[1] is None:
            return match[0]  # a quoted string
        return b"FLAGS (" + b" ".join(f for f in match[1].split() if not _is_keyword(f)) + b")"
    return FETCH_FLAGS.sub(keep, segment)


# -- SMTP that files its own Sent copy (Gmail) ----------------------------------------------------

class _FilingCollector(_Collector):
    async def handle_DATA(self, server, session, envelope) -> str:
        smtp = self.server
        if smtp.delay:
            await asyncio.sleep(smtp.delay)
        with smtp.lock:
            reply = smtp.next_reply()
        if reply is not None:
            return reply
        # Filed before the message counts as accepted: whoever saw it in `messages` (or got the 250)
        # finds the copy in Sent already.
        await asyncio.get_running_loop().run_in_executor(None, smtp.file_copy, envelope.original_content)
        with smtp.lock:
            smtp.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
            smtp.accepted_at.append(time.time())
        if smtp.stall_after_accepting:
            await asyncio.sleep(smtp.stall_after_accepting)
        return "250 OK"


class FilingSmtpServer(SmtpServer):
    """SmtpServer that also APPENDs each message it accepts to `folder` of the IMAP account `imap`
    (a dict from Dovecot.add_user), \\Seen, as Gmail files authenticated submissions in Sent Mail.
    A copy it could not file is kept in `filing_errors` (the message is still accepted, as Gmail would)."""

    def __init__(self, imap: dict, folder: str) -> None:
        super().__init__()
        self.imap = imap
        self.folder = folder
        self.filed = 0
        self.filing_errors: list[str] = []
        self.controller.handler = _FilingCollector(self)

    def file_copy(self, raw: bytes) -> None:
        try:
            client = imapclient.IMAPClient(self.imap["host"], port=self.imap["port"], ssl=False, timeout=10)
            try:
                client.login(self.imap["username"], self.imap["password"])
                client.append(self.folder, raw, flags=[imapclient.SEEN])
            finally:
                client.logout()
        except (OSError, imapclient.exceptions.IMAPClientError) as exc:
            with self.lock:
                self.filing_errors.append(f"{type(exc).__name__}: {exc}")
            return
        with self.lock:
            self.filed += 1
