"""Raw message bytes -> a frozen `Inbound` (mail-parser underneath). Pure.

Everything in an email is untrusted: header values are decoded defensively, control
characters are dropped, and nothing here ever raises on odd input; a message mail-parser
cannot read at all raises `UnreadableMessage` with the reason, for the worker to park it.
"""

from __future__ import annotations

import email
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.header import decode_header, make_header
from email.utils import getaddresses, parsedate_to_datetime

import mailparser
from lxml import etree

from processor.pipeline.quotes import parse_html_fragment, strip_quoted_text, strip_quoted_tree
from processor.urls import links_in_text, unique

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BODY_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MSGID = re.compile(r"<?\s*([^<>\s]+)\s*>?")
# Subject prefixes mail clients add, in the languages partners write in; one list for every check.
FORWARD_PREFIXES = ("fwd", "fw", "wg", "tr", "rv", "enc", "i")
REPLY_PREFIXES = ("re", "aw", "sv", "vs", "antw", "odp", "ynt", "res", "r")
FORWARD_PREFIX = re.compile(r"^\s*(?:%s)\s*:" % "|".join(FORWARD_PREFIXES), re.I)
# Message-IDs longer than this are not used as keys (the key column holds 255, a digest key 71).
MAX_MESSAGE_ID = 240
# No real header field comes near this; decoding one costs the square of its encoded words (the standard
# library's email.header pops each from the front of a list), so a longer one is not decoded at all.
MAX_HEADER_FIELD_BYTES = 64 * 1024
ENCODED_WORDS_UNCHECKED = 4096  # up to this many "=?" in a whole message, no header can cost much to decode
# Parsing costs time per line and per MIME part (the standard library's parser underneath reads line by
# line), and a request holds few of either: 10 MB of base64 attachments is about 140,000 lines. Past these,
# a message is for a person: the worst shapes would otherwise hold the worker for seconds per megabyte.
MAX_LINES = 300_000
MAX_PART_SEPARATORS = 2_000     # lines starting "--": MIME boundaries, and the odd signature
# What the sender wrote is read up to this much per text or HTML part, and its links up to this many.
ANALYSED_PART_CHARS = 1_000_000
MAX_LINKS = 5_000


class UnreadableMessage(Exception):
    """The bytes are not an email we can read at all."""


@dataclass(frozen=True)
class Inbound:
    """One inbound message, reduced to what the pipeline needs."""

    message_key: str
    message_id: str
    subject: str
    from_name: str
    from_address: str
    reply_to_address: str
    date: datetime | None
    headers: tuple[tuple[str, str], ...]
    content_type: str
    in_reply_to: str
    references: tuple[str, ...]
    text: str            # what the sender wrote: quoted earlier messages removed
    links: tuple[str, ...]  # links in what the sender wrote, text and HTML parts, in order
    size: int
    defects: tuple[str, ...] = field(default=())
    # Message-IDs quoted inside the message (a bounce carries the headers of the mail it returns),
    # and a delivery report's diagnostic line.
    embedded_message_ids: tuple[str, ...] = field(default=())
    report_diagnostic: str = ""
    content_digest: str = ""  # of the headers that stay the same on every copy, and the body
    from_problem: str = ""    # why From gave no address to trust (it holds several)

    @property
    def digest_key(self) -> str:
        return digest_key(self.content_digest)

    def header(self, name: str) -> str:
        """First value of a header, '' when absent (names compare case-insensitively)."""
        name = name.lower()
        return next((value for key, value in self.headers if key == name), "")

    def has_header(self, name: str) -> bool:
        name = name.lower()
        return any(key == name for key, _ in self.headers)


def normalise_message_id(value: str) -> str:
    """Message-IDs compare after trimming whitespace and angle brackets."""
    match = _MSGID.search(value or "")
    return match.group(1) if match else ""


def _check_header_fields(raw: bytes) -> None:
    """Refuse a message with a header field over MAX_HEADER_FIELD_BYTES: the message's own header in one
    linear pass; its parts' headers too when it holds enough encoded words to make one costly."""
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))
    name, size = b"", 0
    for line in raw[:end].split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            size += len(line) + 1
        else:
            name, size = line.split(b":", 1)[0][:60], len(line) + 1
        if size > MAX_HEADER_FIELD_BYTES:
            _too_long(name.decode("ascii", "replace"))
    if raw.count(b"=?") > ENCODED_WORDS_UNCHECKED:
        for part in email.message_from_bytes(raw).walk():  # the standard parser: linear, nothing decoded
            for field, value in part.items():
                if len(str(value)) > MAX_HEADER_FIELD_BYTES:
                    _too_long(str(field)[:60])


def _too_long(name: str) -> None:
    raise UnreadableMessage(f"its {name!r} header is over {MAX_HEADER_FIELD_BYTES // 1024} KB long: not decoded")


def _check_shape(raw: bytes) -> None:
    """Refuse, in time linear in its size and fast (bytes.count), a message too costly to parse."""
    lines = raw.count(b"\n")
    if lines > MAX_LINES:
        raise UnreadableMessage(f"it has {lines:,} lines (more than {MAX_LINES:,}): not parsed")
    separators = raw.count(b"\n--")
    if separators > MAX_PART_SEPARATORS:
        raise UnreadableMessage(f"it has {separators:,} lines starting with \"--\" (MIME parts; more than "
                                f"{MAX_PART_SEPARATORS:,}): not parsed")
    _check_header_fields(raw)


def parse_message(raw: bytes) -> Inbound:
    _check_shape(raw)
    try:
        mail = mailparser.parse_from_bytes(raw)
    except Exception as exc:  # mail-parser raises many kinds on hostile input
        raise UnreadableMessage(f"mail-parser could not read the message: {type(exc).__name__}: {exc}") from None
    message = mail.message
    headers = tuple((str(name).lower(), clean_header(value)) for name, value in message.items())
    subject = clean_header(message.get("Subject", ""))
    from_name, from_address = _first_address(message.get_all("From", []))
    from_problem = ""
    senders = _address_count(message.get_all("From", []))
    if senders > 1:
        # Readers disagree on which one it is ("a@x.example (b) <c@y.example>"): trust none of them.
        from_name, from_address = "", ""
        from_problem = f"its From header holds {senders} addresses, so none is trusted"
    _, reply_to_address = _first_address(message.get_all("Reply-To", []))
    message_id = normalise_message_id(clean_header(message.get("Message-ID", "")))
    # Control characters (NUL above all) only ever hide links and words from the steps after this one.
    text_parts = [_BODY_CONTROL.sub("", part[:ANALYSED_PART_CHARS]) for part in (mail.text_plain or [])
                  if isinstance(part, str)]
    html_parts = [_BODY_CONTROL.sub("", part[:ANALYSED_PART_CHARS]) for part in (mail.text_html or [])
                  if isinstance(part, str)]
    forwarded = bool(FORWARD_PREFIX.match(subject))
    text, links = _written_text_and_links(text_parts, html_parts, keep_quotes=forwarded)
    digest = content_digest(message, raw)
    return Inbound(
        message_key=message_key(message_id, digest_key(digest)),
        message_id=message_id,
        subject=subject,
        from_name=from_name,
        from_address=from_address,
        reply_to_address=reply_to_address,
        date=_date(message.get("Date", "")),
        headers=headers,
        content_type=(message.get_content_type() or "").lower(),
        in_reply_to=normalise_message_id(clean_header(message.get("In-Reply-To", ""))),
        references=tuple(
            normalise_message_id(ref) for ref in clean_header(message.get("References", "")).split() if ref.strip("<>")
        ),
        text=text,
        links=tuple(links),
        size=len(raw),
        defects=tuple(sorted({type(defect).__name__ for defect in (message.defects or [])})),
        embedded_message_ids=_embedded_message_ids(raw, message_id),
        report_diagnostic=_report_diagnostic(raw),
        content_digest=digest,
        from_problem=from_problem,
    )


_EMBEDDED_MSGID = re.compile(rb"(?im)^[ \t]*message-id:[ \t]*<?[ \t]*([^\s<>]{1,%d})[ \t]*>?" % MAX_MESSAGE_ID)
_DIAGNOSTIC = re.compile(rb"(?im)^[ \t]*(action|status|diagnostic-code):[ \t]*([^\r\n]{1,300})")
EMBEDDED_SCAN_BYTES = 256 * 1024


def _embedded_message_ids(raw: bytes, own_id: str) -> tuple[str, ...]:
    found = (m.group(1).decode("ascii", "replace") for m in _EMBEDDED_MSGID.finditer(raw[:EMBEDDED_SCAN_BYTES]))
    return tuple(unique(i for i in found if i != own_id))[:20]


def _report_diagnostic(raw: bytes) -> str:
    """"Action: failed; Status: 5.1.1; Diagnostic-Code: …" from a delivery report (first of each), or ''."""
    found: dict[bytes, bytes] = {}
    for match in _DIAGNOSTIC.finditer(raw[:EMBEDDED_SCAN_BYTES]):
        found.setdefault(match.group(1).lower(), match.group(2).strip())
    parts = [f"{name.decode().title()}: {found[name].decode('utf-8', 'replace')}"
             for name in (b"action", b"status", b"diagnostic-code") if name in found]
    return _CONTROL.sub("", "; ".join(parts))


def message_key(message_id: str, fallback: str) -> str:
    """The one key a message is recorded under: its Message-ID where it has a usable one, else `fallback`
    (a `digest_key` of its content, or of its bytes when it cannot be parsed)."""
    return message_id if is_usable_message_id(message_id) else fallback


def digest_key(hex_digest: str) -> str:
    return "sha256:" + hex_digest


def raw_digest_key(raw: bytes) -> str:
    """The key of a message that cannot be parsed: a digest of its bytes."""
    return digest_key(hashlib.sha256(raw).hexdigest())


STABLE_HEADERS = ("from", "to", "cc", "subject", "date", "in-reply-to")


def content_digest(message, raw: bytes) -> str:
    """A digest that is the same for every copy of one message: delivered twice over SMTP (other
    Received and Delivered-To lines), copied to another folder, stored with other line endings."""
    digest = hashlib.sha256()
    for name in STABLE_HEADERS:
        for value in message.get_all(name, []):
            digest.update(f"{name}: {' '.join(str(value).split())}\n".encode("utf-8", "replace"))
    match = re.search(rb"\r?\n\r?\n", raw)
    body = raw[match.end():] if match else b""
    digest.update(b"\n" + body.replace(b"\r\n", b"\n").rstrip(b"\n"))
    return digest.hexdigest()


def is_usable_message_id(message_id: str) -> bool:
    return bool(message_id) and len(message_id) <= MAX_MESSAGE_ID and "@" in message_id


def clean_header(value) -> str:
    """A header value decoded (RFC 2047) to one line of text, control characters removed."""
    if value is None:
        return ""
    text = str(value)
    if "=?" not in text and text.isascii():  # no encoded words: nothing to decode (most headers)
        return _CONTROL.sub("", " ".join(text.split()))
    try:
        text = str(make_header(decode_header(text)))
    except Exception:  # undecodable encoded-words: keep the raw value rather than fail
        text = str(value)
    return _CONTROL.sub("", " ".join(text.split()))


def _first_address(values: list) -> tuple[str, str]:
    # Addresses are taken from the raw header, and only the display name is decoded afterwards:
    # decoding first would let an encoded word smuggle in a second address ("=?utf-8?q?x=0D=0ABcc:...").
    raw_values = [_CONTROL.sub(" ", str(value)) for value in values]
    for name, address in getaddresses(raw_values):
        address = address.strip().lower()
        if "@" in address and not any(ch.isspace() for ch in address) and address.isascii():
            return clean_header(name).strip(), address
    return "", ""


def _address_count(values: list) -> int:
    return sum(1 for _, address in getaddresses([_CONTROL.sub(" ", str(value)) for value in values]) if address.strip())


def _date(value) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(clean_header(value))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _written_text_and_links(text_parts: list[str], html_parts: list[str], keep_quotes: bool) -> tuple[str, list[str]]:
    texts = [part if keep_quotes else strip_quoted_text(part) for part in text_parts]
    links = [link for text in texts for link in links_in_text(text)]
    html_texts = []
    for html in html_parts:
        root = parse_html_fragment(html)
        if root is None:
            continue
        if not keep_quotes:
            strip_quoted_tree(root)
        links.extend(href.strip() for href in root.xpath("//a/@href") if href.strip().lower().startswith(("http", "www.")))
        html_text = html_to_text(root)
        links.extend(links_in_text(html_text))
        html_texts.append(html_text)
    written = "\n\n".join(t for t in texts if t.strip()) or "\n\n".join(t for t in html_texts if t.strip())
    return written.strip(), unique(links)[:MAX_LINKS]


_BLOCK_TAGS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "section", "article", "table"}


def html_to_text(root) -> str:
    """Readable text of an HTML tree: one line per block element, scripts and styles dropped."""
    for element in root.xpath("//script | //style | //head"):
        if element.getparent() is not None:
            element.drop_tree()
    chunks: list[str] = []
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag if isinstance(element.tag, str) else ""
        if event == "start":
            if tag in _BLOCK_TAGS:
                chunks.append("\n")
            if element.text:
                chunks.append(element.text)
        else:
            if tag in _BLOCK_TAGS:
                chunks.append("\n")
            if element.tail:
                chunks.append(element.tail)
    lines = (" ".join(line.split()) for line in "".join(chunks).splitlines())
    return "\n".join(line for line in lines if line)
