"""No message holds the worker: every shape a hostile sender can send is read in time linear in its size,
or refused and left for a person with the reason, and the requests behind it are answered.

The timings here guard against the quadratic scans this once had (a 432 KB line without sentence
punctuation took 132 s): at 256 KB those took 10 to 50 s, linear code takes milliseconds. They are not
speed targets; the figures per megabyte are in benchmarks/hostile.py.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from models import Request
from processor.mail.mailbox import RawMessage
from processor.pipeline.parse import MAX_LINES, MAX_PART_SEPARATORS
from processor.pipeline.prepare import Kind, Rules, prepare
from processor.urls import links_in_text
from tests.helpers import request_message
from tests.hostile_shapes import LINK, shapes

RULES = Rules(("riversideledger.example",), ("republish@riversideledger.example",),
              "republish@riversideledger.example", "INBOX")
SIZE = 256 * 1024
GUARD_SECONDS = 2.0
REFUSED_AT_THIS_SIZE = {"encoded words in a header", "encoded words in the subject", "a long display name",
                        "many addresses", "encoded words in a part header"}


@pytest.mark.parametrize("name", list(shapes(1000)))
def test_every_hostile_shape_is_read_or_refused_quickly(name):
    raw = shapes(SIZE)[name]
    started = time.perf_counter()
    prepared = prepare(RawMessage("1", raw, len(raw)), RULES)
    took = time.perf_counter() - started
    assert took < GUARD_SECONDS, f"{name}: {took:.1f} s for {len(raw) // 1024} KB"
    if name in REFUSED_AT_THIS_SIZE:
        assert prepared.kind == Kind.UNREADABLE and "not" in prepared.error, prepared
    else:
        assert prepared.kind == Kind.REQUEST, prepared.error


def test_refusals_name_the_reason():
    errors = {name: prepare(RawMessage("1", raw, len(raw)), RULES).error for name, raw in shapes(SIZE).items()}
    assert "'Subject' header is over 64 KB long" in errors["encoded words in the subject"]
    assert "'Content-Type' header is over 64 KB long" in errors["encoded words in a part header"]
    # Read at 256 KB (above); at 1 MB, more lines and parts than any request has.
    errors = {name: prepare(RawMessage("1", raw, len(raw)), RULES).error for name, raw in shapes(1_000_000).items()
              if name in ("empty lines", "many MIME parts")}
    assert f"more than {MAX_LINES:,}" in errors["empty lines"]
    assert f"more than {MAX_PART_SEPARATORS:,}" in errors["many MIME parts"]


def test_trailing_brackets_are_trimmed_and_a_links_own_are_kept():
    assert links_in_text(f"see ({LINK}).") == [LINK]
    assert links_in_text("https://en.wikipedia.example/wiki/Bike_(disambiguation)))") == [
        "https://en.wikipedia.example/wiki/Bike_(disambiguation)"]
    assert links_in_text("https://riversideledger.example/" + "a" * 9000) == []  # no page's address is this long


def test_the_worker_goes_on_past_a_hostile_message(maildir_pipeline):
    new = maildir_pipeline["maildir"] / "new"
    new.joinpath("1.eml").write_bytes(shapes(SIZE)["encoded words in the subject"])
    new.joinpath("2.eml").write_bytes(shapes(SIZE)["a line without sentence punctuation"])
    new.joinpath("3.eml").write_bytes(request_message(body=f"Running {LINK}", message_id="<after@valleynews.example>"))
    maildir_pipeline["run"]()
    with maildir_pipeline["sessions"]() as session:
        rows = {key: (outcome, reason) for key, outcome, reason in
                session.execute(select(Request.message_key, Request.outcome, Request.reason))}
    assert rows["after@valleynews.example"][0] == "answered"
    refused = [reason for outcome, reason in rows.values() if outcome == "needs_person" and "64 KB" in reason]
    assert len(refused) == 1
