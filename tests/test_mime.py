"""The reply's MIME writer: what a standard parser reads back from its bytes."""

from __future__ import annotations

import email
from email import policy

import pytest

from processor.pipeline.mime import Multipart, Part, UnsafeHeader, header_line, message_bytes

HEADERS = [("From", "Desk <desk@riversideledger.example>"), ("To", "priya@valleynews.example"),
           ("Subject", "Re: republish")]


def _parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=policy.default)


def test_nested_parts_come_back_whole_with_crlf_line_ends():
    body = Multipart("mixed", (
        Multipart("alternative", (Part("Grüße, –\nzwei Zeilen\n", "plain"), Part("<p>é &amp; ü</p>\n", "html"))),
        Part("<h1>Snippet</h1>\n" * 200, "html", "council-bike-lanes.html"),
    ))
    raw = message_bytes([*HEADERS, ("References", ["<a@x.example>", "<b@x.example>"])], body, seed="m1@x.example")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    parsed = _parsed(raw)
    assert parsed["To"] == "priya@valleynews.example"
    assert parsed["References"] == "<a@x.example> <b@x.example>"
    assert parsed.get_content_type() == "multipart/mixed" and not parsed.defects
    assert parsed.get_body(("plain",)).get_content() == "Grüße, –\nzwei Zeilen\n"
    assert parsed.get_body(("html",)).get_content() == "<p>é &amp; ü</p>\n"
    (attachment,) = parsed.iter_attachments()
    assert attachment.get_filename() == "council-bike-lanes.html"
    assert attachment.get_content() == "<h1>Snippet</h1>\n" * 200
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))


def test_same_reply_same_bytes_and_boundaries_differ_by_depth():
    body = Multipart("mixed", (Multipart("alternative", (Part("a", "plain"),)),))
    first, second = (message_bytes(HEADERS, body, seed="m@x.example") for _ in range(2))
    assert first == second
    assert message_bytes(HEADERS, body, seed="other@x.example") != first
    boundaries = {part.get_boundary() for part in _parsed(first).walk() if part.is_multipart()}
    assert len(boundaries) == 2


def test_a_file_name_that_is_not_a_plain_token_is_encoded():
    raw = message_bytes(HEADERS, Part("x", "html", 'caf\u00e9 "quoted"; name.html'), seed="m")
    assert _parsed(raw).get_filename() == 'caf\u00e9 "quoted"; name.html'
    assert raw.isascii()


@pytest.mark.parametrize("value", ["a\r\nBcc: victim@x.example", "a\nb", "caf\u00e9", "x" * 1000])
def test_unsafe_header_values_are_refused(value):
    with pytest.raises(UnsafeHeader):
        header_line("To", value)
    with pytest.raises(UnsafeHeader):
        header_line("References", ["<ok@x.example>", value])
