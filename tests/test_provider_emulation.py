"""The provider test doubles of tests/provider_emulation.py behave as the providers they stand for,
checked by talking to them with imapclient (and a raw socket where the exact bytes matter)."""

from __future__ import annotations

import random
import smtplib
import socket
import string

import imapclient
from imapclient.imapclient import SENT
import pytest
from imapclient.exceptions import IMAPClientError

from tests.helpers import request_message, wait_until
from tests.provider_emulation import EXCHANGE_CAPABILITY, ExchangeLikeImapProxy, _strip_keywords

pytestmark = pytest.mark.integration

EXCHANGE_FLAGS = {b"\\Seen", b"\\Answered", b"\\Flagged", b"\\Deleted", b"\\Draft", b"$MDNSent"}


def imap_client(user, port: int | None = None) -> imapclient.IMAPClient:
    """Logged in, with a timeout: a proxy that loses its place in the stream fails a test, not hangs it."""
    client = imapclient.IMAPClient(user["host"], port=port or user["port"], ssl=False, timeout=15)
    client.login(user["username"], user["password"])
    return client


def direct_client(user) -> imapclient.IMAPClient:
    """The same account on Dovecot itself, past the proxy: what is really stored."""
    return imap_client(user, user["direct_port"])


def stored_flags(user, uid: int) -> set:
    client = direct_client(user)
    client.select_folder("INBOX", readonly=True)
    flags = set(client.get_flags([uid])[uid]) - {b"\\Recent"}  # whether Dovecot says \Recent is beside the point
    client.logout()
    return flags


def append_direct(user, raw: bytes, flags=()) -> int:
    client = direct_client(user)
    uid = int(client.append("INBOX", raw, flags=flags).split(b"]")[0].split()[-1])  # [APPENDUID validity uid]
    client.logout()
    return uid


class RawImap:
    """Bare lines over a socket, for the exact wording of answers and for literals imapclient never sends."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.reader = self.sock.makefile("rb")
        self.greeting = self.reader.readline()
        self.count = 0

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        return self.reader.readline()

    def command(self, text: bytes) -> list[bytes]:
        """Send one command; the lines of its answer up to and including the tagged one."""
        self.count += 1
        tag = b"r%d" % self.count
        self.send(tag + b" " + text + b"\r\n")
        return self.until(tag)

    def until(self, tag: bytes) -> list[bytes]:
        lines = []
        while not lines or not lines[-1].startswith(tag + b" "):
            line = self.line()
            assert line, f"connection closed; got {lines!r}"
            lines.append(line)
        return lines

    def close(self) -> None:
        self.sock.close()


def login_raw(user) -> RawImap:
    raw = RawImap(user["port"])
    assert raw.command(f'LOGIN "{user["username"]}" "{user["password"]}"'.encode())[-1].split()[1] == b"OK"
    return raw


# -- Exchange Online ------------------------------------------------------------------------------

def test_exchange_capability_in_greeting_untagged_and_after_login(exchange_like_user):
    raw = RawImap(exchange_like_user["port"])
    assert b"[CAPABILITY " + EXCHANGE_CAPABILITY + b"]" in raw.greeting
    assert raw.command(b"CAPABILITY")[0] == b"* CAPABILITY " + EXCHANGE_CAPABILITY + b"\r\n"
    raw.close()
    raw = RawImap(exchange_like_user["port"])  # no CAPABILITY asked first: Dovecot names them in the LOGIN OK
    answer = raw.command(f'LOGIN "{exchange_like_user["username"]}" "{exchange_like_user["password"]}"'.encode())
    assert answer[-1].startswith(b"r1 OK [CAPABILITY " + EXCHANGE_CAPABILITY + b"]"), answer
    raw.close()

    client = imap_client(exchange_like_user)
    assert set(client.capabilities()) == set(EXCHANGE_CAPABILITY.upper().split())  # imapclient upper-cases them
    for missing in (b"SPECIAL-USE", b"CREATE-SPECIAL-USE", b"CONDSTORE", b"QRESYNC", b"MULTIAPPEND", b"STARTTLS"):
        assert not client.has_capability(missing.decode())
    client.logout()
    direct = direct_client(exchange_like_user)  # Dovecot does have them: the proxy is what hides them
    assert direct.has_capability("SPECIAL-USE") and direct.has_capability("CONDSTORE")
    direct.logout()


def test_exchange_select_offers_no_keywords(exchange_like_user):
    client = imap_client(exchange_like_user)
    status = client.select_folder("INBOX")
    assert set(status[b"PERMANENTFLAGS"]) == EXCHANGE_FLAGS  # no \* and no keyword
    assert set(status[b"FLAGS"]) == EXCHANGE_FLAGS
    assert client.select_folder("INBOX", readonly=True)[b"PERMANENTFLAGS"] == ()  # EXAMINE: nothing to change
    client.logout()

    raw = login_raw(exchange_like_user)
    answer = raw.command(b"SELECT INBOX")
    assert b"* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)] Permanent flags\r\n" in answer
    raw.close()


@pytest.mark.parametrize("status", ["BAD", "NO"])
def test_exchange_refuses_a_store_naming_a_keyword_whole(exchange_like_proxy, exchange_like_user, status):
    exchange_like_proxy.keyword_refusal = status
    uid = append_direct(exchange_like_user, request_message())
    raw = login_raw(exchange_like_user)
    raw.command(b"SELECT INBOX")
    answer = raw.command(b"UID STORE %d +FLAGS.SILENT ($RepublishPerson \\Flagged)" % uid)
    assert answer == [b"r3 " + status.encode() + b" Command Argument Error. 11\r\n"]
    assert raw.command(b"NOOP")[-1].split()[1] == b"OK"  # the connection carries on
    raw.close()
    assert stored_flags(exchange_like_user, uid) == set()  # refused whole: \Flagged was not set either

    client = imap_client(exchange_like_user)
    client.select_folder("INBOX")
    with pytest.raises(IMAPClientError, match="Command Argument Error. 11"):
        client.add_flags([uid], [b"$RepublishDone"], silent=True)
    client.add_flags([uid], [imapclient.FLAGGED, b"$MDNSent"], silent=True)  # system flags and $MDNSent are fine
    client.logout()
    assert stored_flags(exchange_like_user, uid) == {b"\\Flagged", b"$MDNSent"}
    assert exchange_like_proxy.refused_stores == 2


def test_exchange_fetch_shows_no_keywords(exchange_like_user):
    uid = append_direct(exchange_like_user, request_message(subject='republish FLAGS ($Kept)'),
                        flags=[b"$RepublishDone", b"\\Seen"])
    assert stored_flags(exchange_like_user, uid) == {b"$RepublishDone", b"\\Seen"}
    client = imap_client(exchange_like_user)
    client.select_folder("INBOX")
    assert set(client.get_flags([uid])[uid]) - {b"\\Recent"} == {b"\\Seen"}
    # FLAGS asked after a body: it may come after the literal, and is stripped there too.
    data = client.fetch([uid], ["BODY.PEEK[]", "FLAGS", "ENVELOPE"])[uid]
    assert set(data[b"FLAGS"]) - {b"\\Recent"} == {b"\\Seen"}
    assert data[b"ENVELOPE"].subject == b"republish FLAGS ($Kept)"  # a quoted string is left alone
    client.logout()


def test_exchange_strips_keywords_after_a_literal_and_passes_the_literal_through():
    """Dovecot sends FLAGS before a body; a scripted upstream sends it after one, and a literal that
    looks like IMAP (a FLAGS list, a literal announcement, a notice) that must arrive as it was."""
    body = b"FLAGS ($InBody) {3}\r\n* 2 EXISTS\r\n"
    response = b"* 1 FETCH (UID 7 BODY[] {%d}\r\n%s FLAGS (\\Seen $Kw) BODY[HEADER] {2}\r\nab)\r\n" % (len(body), body)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        proxy = ExchangeLikeImapProxy(listener.getsockname()[1], idle_silent=True)
        proxy.start()
        try:
            client = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
            upstream, _ = listener.accept()
            upstream.settimeout(10)
            upstream.sendall(b"* OK ready\r\n")
            from_proxy, to_upstream = client.makefile("rb"), upstream.makefile("rb")
            assert b"Microsoft Exchange" in from_proxy.readline()
            client.sendall(b"a1 UID FETCH 7 (BODY[] FLAGS)\r\n")
            assert to_upstream.readline() == b"a1 UID FETCH 7 (BODY[] FLAGS)\r\n"
            upstream.sendall(response + b"a1 OK done\r\n")
            received = b""
            while not received.endswith(b"a1 OK done\r\n"):
                line = from_proxy.readline()
                assert line, received
                received += line
            assert received == response.replace(b"(\\Seen $Kw)", b"(\\Seen)") + b"a1 OK done\r\n"
            client.close()
            upstream.close()
        finally:
            proxy.stop()


def test_strip_keywords_leaves_quoted_strings_and_system_flags():
    line = b'* 1 FETCH (UID 4 FLAGS (\\Seen $Done $MDNSent Junk) ENVELOPE ("x" "FLAGS (\\\\Seen $Kw)"))\r\n'
    assert _strip_keywords(line) == b'* 1 FETCH (UID 4 FLAGS (\\Seen $MDNSent) ENVELOPE ("x" "FLAGS (\\\\Seen $Kw)"))\r\n'


def test_exchange_sent_items_has_no_special_use(exchange_like_proxy, exchange_like_user):
    client = imap_client(exchange_like_user)
    folders = {name: set(flags) for flags, _, name in client.list_folders()}
    assert "Sent Items" in folders and "Deleted Items" in folders and "Sent" not in folders
    assert all(not flags & {b"\\Sent", b"\\Trash", b"\\Drafts", b"\\Junk", b"\\Archive"} for flags in folders.values())
    assert client.namespace().personal == (("", "/"),)
    client.logout()
    direct = direct_client(exchange_like_user)  # Dovecot marks it: the proxy is what hides it
    assert direct.find_special_folder(SENT) == "Sent Items"
    direct.logout()

    exchange_like_proxy.list_special_use = True  # as real Exchange Online lists it
    client = imap_client(exchange_like_user)
    assert {name for flags, _, name in client.list_folders() if b"\\Sent" in flags} == {"Sent Items"}
    client.logout()


def test_exchange_append_of_1_mb_arrives_byte_identical(exchange_like_user):
    rng = random.Random(7)
    # Lines that look like IMAP answers and literals: inside a literal they must pass through untouched.
    traps = [b"* 1 FETCH (FLAGS (\\Seen $RepublishDone))", b"r9 OK [CAPABILITY IMAP4rev1 SPECIAL-USE] done",
             b"* OK [PERMANENTFLAGS (\\*)] ok", b"* 3 EXISTS", b"+ go ahead", b"tail {5}", b"x STORE 1 +FLAGS ($Kw)"]
    lines = [b"From: a@example.org", b"To: b@example.org", b"Subject: big", b"Message-ID: <big@example.org>", b""]
    size = sum(len(line) + 2 for line in lines)
    while size < 1024 * 1024:
        line = traps[len(lines) % len(traps)] if len(lines) % 50 == 0 else \
            "".join(rng.choices(string.ascii_letters + string.digits + " ()[]{}\\*$", k=76)).encode()
        lines.append(line)
        size += len(line) + 2
    raw = b"\r\n".join(lines) + b"\r\n"

    client = imap_client(exchange_like_user)
    client.append("INBOX", raw)
    client.select_folder("INBOX")
    [uid] = client.search("ALL")
    through_proxy = client.fetch([uid], ["BODY.PEEK[]", "RFC822.SIZE"])[uid]
    client.logout()
    direct = direct_client(exchange_like_user)
    direct.select_folder("INBOX", readonly=True)
    stored = direct.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    direct.logout()
    assert stored == raw
    assert through_proxy[b"BODY[]"] == raw and through_proxy[b"RFC822.SIZE"] == len(raw)


def test_exchange_literal_plus_and_a_literal_refused_before_its_bytes(exchange_like_user):
    raw = login_raw(exchange_like_user)
    body = request_message(message_id="<plus@valleynews.example>")
    raw.send(b"r8 APPEND INBOX {%d+}\r\n" % len(body) + body + b"\r\n")  # LITERAL+: no wait for "+"
    assert raw.until(b"r8")[-1].startswith(b"r8 OK")
    # A synchronizing literal the server refuses at once: the client sends no bytes, and the proxy must
    # not take the next commands for them (it would pass the STORE on to Dovecot, unrefused).
    raw.send(b'r9 APPEND "No Such Folder" {%d}\r\n' % len(body))
    assert raw.until(b"r9")[-1].startswith(b"r9 NO")
    assert raw.command(b"SELECT INBOX")[-1].split()[1] == b"OK"
    assert raw.command(b"UID STORE 1 +FLAGS ($Kw)") == [b"r3 BAD Command Argument Error. 11\r\n"]
    raw.close()
    client = direct_client(exchange_like_user)
    assert client.select_folder("INBOX")[b"EXISTS"] == 1
    client.logout()


def test_exchange_silent_idle_holds_back_new_mail(exchange_like_proxy, exchange_like_user):
    exchange_like_proxy.idle_silent = True
    client = imap_client(exchange_like_user)
    client.select_folder("INBOX")
    client.idle()
    append_direct(exchange_like_user, request_message())
    # Dovecot announced the message and the proxy held the notice back: nothing reaches the client.
    assert wait_until(lambda: exchange_like_proxy.held_notices >= 1, 10)
    assert not [r for r in client.idle_check(timeout=0.2) if isinstance(r, tuple) and r[1] in (b"EXISTS", b"RECENT")]
    _, late = client.idle_done()
    assert (1, b"EXISTS") in late  # handed over with the IDLE's end, so the message count stays right
    assert client.search("ALL") == [1]
    client.logout()


def test_exchange_idle_announces_new_mail_without_the_switch(exchange_like_proxy, exchange_like_user):
    client = imap_client(exchange_like_user)
    client.select_folder("INBOX")
    client.idle()
    append_direct(exchange_like_user, request_message())
    seen: list = []
    assert wait_until(lambda: seen.extend(client.idle_check(timeout=0.2)) or (1, b"EXISTS") in seen, 10)
    client.idle_done()
    client.logout()
    assert exchange_like_proxy.held_notices == 0


def test_exchange_proxy_stops_cleanly(exchange_like_proxy, exchange_like_user):
    client = imap_client(exchange_like_user)
    client.select_folder("INBOX")
    assert exchange_like_proxy.open_sessions == 1
    exchange_like_proxy.stop()
    assert exchange_like_proxy.open_sessions == 0
    with pytest.raises((OSError, IMAPClientError)):
        client.noop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", exchange_like_proxy.port), timeout=2).close()


# -- Gmail and a server without Sent --------------------------------------------------------------

def test_gmail_layout_lists_sent_mail_with_special_use(gmail_like_user):
    client = imap_client(gmail_like_user)
    folders = {name: set(flags) for flags, _, name in client.list_folders()}
    assert b"\\Sent" in folders["[Gmail]/Sent Mail"]
    assert b"\\All" in folders["[Gmail]/All Mail"]
    assert b"\\Drafts" in folders["[Gmail]/Drafts"] and b"\\Trash" in folders["[Gmail]/Trash"]
    assert "Sent" not in folders
    assert client.find_special_folder(SENT) == "[Gmail]/Sent Mail"
    assert client.namespace().personal == (("", "/"),)
    client.logout()


def test_no_sent_layout_has_inbox_only(no_sent_user):
    client = imap_client(no_sent_user)
    assert [(name, set(flags) & {b"\\Sent"}) for flags, _, name in client.list_folders()] == [("INBOX", set())]
    assert client.find_special_folder(SENT) is None
    client.logout()


def test_filing_smtp_server_leaves_its_copy_in_sent(gmail_filing_smtp_server, gmail_like_user):
    message = request_message(message_id="<filed@valleynews.example>").replace(b"\n", b"\r\n")  # as on the wire
    with smtplib.SMTP("127.0.0.1", gmail_filing_smtp_server.port, timeout=10) as smtp:
        smtp.sendmail("republish@riversideledger.example", ["priya@valleynews.example"], message)
        gmail_filing_smtp_server.refuse("550 5.7.1 not this one")
        with pytest.raises(smtplib.SMTPDataError):
            smtp.sendmail("republish@riversideledger.example", ["priya@valleynews.example"], message)
    assert gmail_filing_smtp_server.filing_errors == []
    assert len(gmail_filing_smtp_server.messages) == 1 and gmail_filing_smtp_server.filed == 1
    client = imap_client(gmail_like_user)
    client.select_folder("[Gmail]/Sent Mail", readonly=True)
    copies = client.fetch(client.search("ALL"), ["FLAGS", "BODY.PEEK[]"])
    client.logout()
    assert [(set(item[b"FLAGS"]) - {b"\\Recent"}, item[b"BODY[]"]) for item in copies.values()] == \
        [({b"\\Seen"}, gmail_filing_smtp_server.messages[0][2])]
    assert b"Message-ID: <filed@valleynews.example>" in gmail_filing_smtp_server.messages[0][2]
