"""Hostile and broken messages: each ends with a clear outcome, in bounded memory and time, and the worker lives on."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from sqlalchemy import select

from models import Request
from processor.app import build_worker
from processor.catalog.fetch import FetchError

BIKE = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
HEAD = b"From: Priya <priya@valleynews.example>\r\nTo: republish@riversideledger.example\r\nSubject: republish\r\n"
MEMORY_BOUND = 200 * 1024 * 1024   # generous: these guard against blow-ups, they are not speed targets
TIME_BOUND = 60.0


def _message(headers: bytes, body: bytes, content_type: bytes = b"text/plain; charset=utf-8") -> bytes:
    return headers + b"Content-Type: " + content_type + b"\r\nMessage-ID: <bad@valleynews.example>\r\n\r\n" + body


def _nested(depth: int) -> bytes:
    body = b"Running " + BIKE.encode() + b"\r\n"
    for level in range(depth):
        boundary = f"b{level}".encode()
        body = (b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n--" + boundary + b"\r\n" + body
                + b"\r\n--" + boundary + b"--\r\n")
    return HEAD + b"Message-ID: <nested@valleynews.example>\r\n" + body


CASES = {
    "nul-bytes": (_message(HEAD.replace(b"Priya", b"Pri\x00ya"), b"Running\x00 " + BIKE.encode() + b"\x00\r\n"), "answered"),
    "ten-thousand-lines": (_message(HEAD, b"".join(b"line %d of a very long message\r\n" % i for i in range(10_000))
                                    + BIKE.encode() + b"\r\n"), "answered"),
    "thousand-links": (_message(HEAD, b"".join(b"https://riversideledger.example/news/2026/11/story-%d/ "
                                               b"https://elsewhere.example/%d\r\n" % (i, i) for i in range(1000))
                                + BIKE.encode() + b"\r\n"), "answered"),
    "no-from-no-date-no-message-id": (b"Subject: republish\r\n\r\nRunning " + BIKE.encode() + b"\r\n", "needs_person"),
    "unknown-charset-and-broken-base64": (
        HEAD + b"Message-ID: <charset@valleynews.example>\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
        b"--x\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\nRunning " + BIKE.encode() + b"\r\n"
        b"--x\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n%%%not base64!!\r\n"
        b"--x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\xff\xfe<p>\xc3(</p>\r\n--x--\r\n", "answered"),
    "huge-header-and-many-headers": (
        b"From: priya@valleynews.example\r\nSubject: republish\r\n" + b"X-Junk: " + b"a" * 200_000 + b"\r\n"
        + b"".join(b"X-Many-%d: value\r\n" % i for i in range(5000))
        # A header field over 64 KB is not decoded (tests/test_hostile_input.py): for a person, with the reason.
        + b"Message-ID: <headers@valleynews.example>\r\n\r\nRunning " + BIKE.encode() + b"\r\n", "needs_person"),
    "multipart-nested-200-deep": (_nested(200), "answered"),
    "not-an-email-at-all": (bytes(range(256)) * 400, None),
}


def _refuse_fetch(url: str):
    # No network in this test: links that are not in the catalog stay unmatched (fetching is tested in test_fetch).
    raise FetchError("not fetched in this test")


@pytest.mark.parametrize("name", CASES)
def test_bad_input_gets_a_clear_outcome_in_bounded_memory_and_time(maildir_pipeline, name):
    raw, expected = CASES[name]
    maildir, sessions = maildir_pipeline["maildir"], maildir_pipeline["sessions"]
    (maildir / "new" / "1.eml").write_bytes(raw)
    worker, worker_engine = build_worker(maildir_pipeline["configure"]())
    worker.edges.fetch = _refuse_fetch
    tracemalloc.start()
    started = time.monotonic()
    try:
        stats = worker.run(once=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        worker.close()
        worker_engine.dispose()
    elapsed = time.monotonic() - started
    assert peak < MEMORY_BOUND and elapsed < TIME_BOUND, (peak, elapsed)
    if expected is None:  # no Subject to read: not a request, left exactly where it was
        assert stats.requests == 0 and (maildir / "new" / "1.eml").exists()
        return
    assert list((maildir / "new").iterdir()) == []
    with sessions() as session:
        request = session.scalars(select(Request)).one()
    assert (request.outcome, bool(request.reason)) == (expected, True), request.reason
    if name == "thousand-links":
        assert request.needs_person and "could not be matched" in request.reason


def test_a_message_id_reused_by_a_different_message_is_a_request_of_its_own(maildir_pipeline):
    from tests.helpers import request_message

    new = maildir_pipeline["maildir"] / "new"
    new.joinpath("1.eml").write_bytes(request_message(body=BIKE, message_id="<same@lazy-client.example>"))
    new.joinpath("2.eml").write_bytes(request_message(sender="Tom <tom@harbor.example>", body=f"Also {BIKE}",
                                                      message_id="<same@lazy-client.example>"))
    new.joinpath("3.eml").write_bytes(request_message(body=BIKE, message_id="<same@lazy-client.example>"))  # a copy of 1
    worker, engine = build_worker(maildir_pipeline["configure"]())
    worker.run(once=True)
    worker.close()
    engine.dispose()
    with maildir_pipeline["sessions"]() as session:
        senders = sorted(session.scalars(select(Request.from_address)))
    assert senders == ["priya@valleynews.example", "tom@harbor.example"]
    assert len(list(maildir_pipeline["outbox"].glob("*.eml"))) == 2


def test_an_outbox_that_cannot_be_written_keeps_the_reply_for_later(maildir_pipeline):
    from models import OutboxMessage
    from tests.helpers import request_message

    maildir_pipeline["outbox"].write_text("a file where the outbox folder should be")
    (maildir_pipeline["maildir"] / "new" / "1.eml").write_bytes(request_message(body=BIKE))
    worker, engine = build_worker(maildir_pipeline["configure"]())
    stats = worker.run(once=True)  # no exception: the reply waits in the outbox table
    worker.close()
    engine.dispose()
    assert stats.replies_sent == 0
    with maildir_pipeline["sessions"]() as session:
        row = session.scalars(select(OutboxMessage)).one()
    assert row.status == "pending" and "cannot create the outbox folder" in row.last_error
    assert list((maildir_pipeline["maildir"] / "new").iterdir())  # not marked: its reply is not sent
