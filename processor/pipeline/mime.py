"""Our own replies as MIME bytes, written directly. Pure.

A reply is always the same shape: headers we wrote or checked, UTF-8 text parts and, for granted
stories, HTML attachments. Python's `email` package takes 3-4 ms to serialise such a message (its
generator re-parses and re-folds every header); writing the bytes here takes a few microseconds
per part, and answering a large batch is bound by that time.

Bodies are base64 (76-character lines), so a body line never contains "_" and a boundary that does
cannot occur inside one (RFC 2046 5.1.1). Lines end in CRLF, as SMTP and IMAP APPEND want them.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote

CRLF = b"\r\n"
MAX_HEADER_LINE = 998  # RFC 5322 2.1.1
_TOKEN_FILENAME = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


class UnsafeHeader(ValueError):
    """A value cannot go into a header safely."""


@dataclass(frozen=True)
class Part:
    """One leaf: a UTF-8 text of the given subtype, optionally an attachment with a file name."""

    text: str
    subtype: str
    filename: str | None = None


@dataclass(frozen=True)
class Multipart:
    subtype: str  # "alternative", "mixed"
    parts: tuple[Part | Multipart, ...]


def message_bytes(headers: list[tuple[str, str | list[str]]], body: Part | Multipart, *, seed: str) -> bytes:
    """The whole message: `headers` (ASCII, no line breaks) above the MIME structure of `body`.

    A header given a list of items is folded, one item per line (RFC 5322 2.2.3).

    `seed` makes the boundaries (with the nesting depth) so the same reply gives the same bytes.
    """
    lines = [header_line(name, value) for name, value in headers]
    lines.append(b"MIME-Version: 1.0")
    return CRLF.join(lines) + CRLF + _entity(body, seed, 0)


def header_line(name: str, value: str | list[str]) -> bytes:
    """`Name: value`, refused if the value carries a line break or non-ASCII, or is over-long."""
    items = [value] if isinstance(value, str) else value
    for item in items:
        if "\r" in item or "\n" in item:
            raise UnsafeHeader(f"{name} would carry a line break")
        if not item.isascii():
            raise UnsafeHeader(f"{name} is not ASCII")
        if len(name) + len(item) + 2 > MAX_HEADER_LINE:
            raise UnsafeHeader(f"{name} is longer than a header line may be")
    return f"{name}: ".encode("ascii") + b"\r\n ".join(item.encode("ascii") for item in items)


def _entity(body: Part | Multipart, seed: str, depth: int) -> bytes:
    if isinstance(body, Part):
        return _leaf(body)
    boundary = f"=_{hashlib.sha1(f'{seed}/{depth}'.encode()).hexdigest()[:24]}_{depth}"
    out = [f'Content-Type: multipart/{body.subtype}; boundary="{boundary}"'.encode("ascii"), b""]
    for part in body.parts:
        out += [b"--" + boundary.encode("ascii"), _entity(part, seed, depth + 1)]
    out += [b"--" + boundary.encode("ascii") + b"--", b""]
    return CRLF.join(out)


def _leaf(part: Part) -> bytes:
    headers = [f'Content-Type: text/{part.subtype}; charset="utf-8"', "Content-Transfer-Encoding: base64"]
    if part.filename is not None:
        headers.append(f"Content-Disposition: attachment; {_filename_parameter(part.filename)}")
    encoded = base64.b64encode(part.text.encode("utf-8"))
    lines = [encoded[start:start + 76] for start in range(0, len(encoded), 76)]
    return CRLF.join([*(h.encode("ascii") for h in headers), b"", *lines, b""])


def _filename_parameter(filename: str) -> str:
    if _TOKEN_FILENAME.match(filename):
        return f'filename="{filename}"'
    return f"filename*=utf-8''{quote(filename[:200], safe='')}"  # RFC 2231, for anything else
