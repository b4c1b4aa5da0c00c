"""The review queue against a real Dovecot, a real SMTP server and SQLite / PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from models import Pickup, Request
from processor.app import reply_sender
from processor.desk.review import ReviewError, resolve, review_queue, send_now
from tests.helpers import deliver, request_message, sent_folder_count

BIKE = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
pytestmark = pytest.mark.integration


def _flagged_request(pipeline, message_id="<park1@valleynews.example>") -> int:
    deliver(pipeline["user"], request_message(body="Can we run your piece about the park?", message_id=message_id))
    pipeline["run"]()
    with pipeline["sessions"]() as session:
        queue = review_queue(session)
    assert len(queue) == 1
    item = queue[0]
    assert item.outlet == "valleynews.example" and item.from_address == "priya@valleynews.example"
    assert "no story could be identified" in item.reason and not item.has_reply and item.stories == ()
    return item.request_id


def _send(pipeline, request_id) -> str:
    return send_now(pipeline["sessions"], request_id, reply_sender(pipeline["config"]))


def _resolve(pipeline, request_id, action, **options):
    with pipeline["sessions"]() as session:
        summary = resolve(session, request_id, action, editor="maria", config=pipeline["config"],
                          now=datetime.now(timezone.utc), **options)
        session.commit()
    return summary


def test_grant_sends_the_snippet_once(pipeline):
    request_id = _flagged_request(pipeline)
    assert pipeline["smtp"].messages == []
    summary = _resolve(pipeline, request_id, "grant", story_refs=(BIKE,))
    assert "granted" in summary and "queued" in summary
    assert _send(pipeline, request_id) == "reply sent to priya@valleynews.example"
    assert _send(pipeline, request_id) == "reply sent to priya@valleynews.example"  # and not sent again
    assert len(pipeline["smtp"].messages) == 1
    assert sent_folder_count(pipeline["user"]) == 1  # the desk's reply is copied to Sent like the worker's
    _, recipients, raw = pipeline["smtp"].messages[0]
    reply = message_from_bytes(raw, policy=policy.default)
    assert recipients == ["priya@valleynews.example"]
    assert reply["In-Reply-To"] == "<park1@valleynews.example>"
    assert "HTML to paste" in reply.get_body(("plain",)).get_content()
    assert [p.get_filename() for p in reply.iter_attachments()] == ["council-approves-protected-bike-lanes.html"]
    with pipeline["sessions"]() as session:
        assert session.scalar(select(Pickup.decision)) == "granted"
        request = session.get(Request, request_id)
        assert (request.resolution, request.resolved_by, request.outcome) == ("granted", "maria", "answered")
        assert review_queue(session) == []
    with pytest.raises(ReviewError, match="already resolved"):
        _resolve(pipeline, request_id, "decline", story_refs=(BIKE,))
    assert pipeline["run"]().replies_sent == 0
    assert len(pipeline["smtp"].messages) == 1


def test_decline_sends_a_polite_no(pipeline):
    request_id = _flagged_request(pipeline)
    assert "declined" in _resolve(pipeline, request_id, "decline", story_refs=(BIKE,))
    assert _send(pipeline, request_id) == "reply sent to priya@valleynews.example"
    reply = message_from_bytes(pipeline["smtp"].messages[0][2], policy=policy.default)
    text = reply.get_body(("plain",)).get_content()
    assert "is not available for republishing" in text and "HTML to paste" not in text
    assert list(reply.iter_attachments()) == []
    with pipeline["sessions"]() as session:
        assert session.scalar(select(Pickup.decision)) == "declined"


def test_dismiss_sends_nothing_and_leaves_the_queue(pipeline):
    request_id = _flagged_request(pipeline)
    assert _resolve(pipeline, request_id, "dismiss") == f"request {request_id} dismissed"
    assert _send(pipeline, request_id) == "no reply queued"
    assert pipeline["smtp"].messages == []
    with pipeline["sessions"]() as session:
        assert review_queue(session) == []
        assert session.get(Request, request_id).resolution == "dismissed"
    with pytest.raises(ReviewError, match="already resolved"):
        _resolve(pipeline, request_id, "dismiss")


def test_grant_needs_a_known_story(pipeline):
    request_id = _flagged_request(pipeline)
    with pytest.raises(ReviewError, match="no story was identified .*say which story"):
        _resolve(pipeline, request_id, "grant")
    with pytest.raises(ReviewError, match="not in the story catalog"):
        _resolve(pipeline, request_id, "grant", story_refs=("https://riversideledger.example/news/no-such-story/",))
    with pipeline["sessions"]() as session:
        assert [item.request_id for item in review_queue(session)] == [request_id]


def test_a_story_is_named_by_words_of_its_title(pipeline):
    request_id = _flagged_request(pipeline)
    with pytest.raises(ReviewError, match="no story in the catalog has 'zebra crossing'"):
        _resolve(pipeline, request_id, "grant", story_refs=("zebra crossing",))
    with pytest.raises(ReviewError, match="more than one story matches '2026/11'"):
        _resolve(pipeline, request_id, "grant", story_refs=("2026/11",))
    assert "Council approves protected bike lanes" in _resolve(pipeline, request_id, "grant",
                                                                 story_refs=("PROTECTED BIKE",))


def test_an_editor_answers_in_own_words_after_the_worker_replied(pipeline):
    question = request_message(body=f"We are running {BIKE}\n\nCould we also print it in our weekly, and what "
                                    "would that cost us?", message_id="<print1@valleynews.example>")
    deliver(pipeline["user"], question)
    pipeline["run"]()
    assert len(pipeline["smtp"].messages) == 1  # the worker's snippet; the question is for a person
    with pipeline["sessions"]() as session:
        (item,) = review_queue(session)
    assert item.has_reply and "print" in item.words
    with pytest.raises(ReviewError, match="already answered"):
        _resolve(pipeline, item.request_id, "grant")
    with pytest.raises(ReviewError, match="the text is empty"):
        _resolve(pipeline, item.request_id, "answer", note="   ")
    summary = _resolve(pipeline, item.request_id, "answer", note="Yes, print is fine, and free.\nKeep the credit line.")
    assert summary == f"request {item.request_id} answered: reply to priya@valleynews.example queued"
    assert _send(pipeline, item.request_id) == "reply sent to priya@valleynews.example"
    assert len(pipeline["smtp"].messages) == 2
    answer = message_from_bytes(pipeline["smtp"].messages[1][2], policy=policy.default)
    text = answer.get_body(("plain",)).get_content()
    assert answer["In-Reply-To"] == "<print1@valleynews.example>"
    assert "Hello Priya," in text and "Yes, print is fine, and free.\nKeep the credit line." in text
    assert "Our guidelines, in short" in text and "HTML to paste" not in text and list(answer.iter_attachments()) == []
    assert text.rstrip().endswith("maria\nThe Riverside Ledger") and "sent automatically" not in text
    with pipeline["sessions"]() as session:
        request = session.get(Request, item.request_id)
        assert [reply.kind for reply in request.replies] == ["reply", "answer"]
        assert (request.resolution, request.outcome) == ("answered", "answered")
        assert review_queue(session) == []
    assert pipeline["run"]().replies_sent == 0  # nothing goes twice


@pytest.mark.every_mailbox
def test_the_mailbox_follows_the_desk(pipeline):
    from tests.helpers import inbox_state, shows

    request_id = _flagged_request(pipeline)
    flags = inbox_state(pipeline["user"])["<park1@valleynews.example>"]
    assert shows(pipeline["user"], flags, "person") and b"\\Flagged" in flags
    _resolve(pipeline, request_id, "dismiss")
    pipeline["run"]()
    flags = inbox_state(pipeline["user"])["<park1@valleynews.example>"]
    assert b"\\Flagged" not in flags and b"$RepublishPerson" not in flags and shows(pipeline["user"], flags, "done")
    with pipeline["sessions"]() as session:
        from processor.desk.review import reopen

        reopen(session, request_id, editor="maria", now=datetime.now(timezone.utc))
        session.commit()
    pipeline["run"]()
    flags = inbox_state(pipeline["user"])["<park1@valleynews.example>"]
    assert b"\\Flagged" in flags and shows(pipeline["user"], flags, "person")
    with pipeline["sessions"]() as session:
        assert session.get(Request, request_id).mailbox_sync is None  # told once, not on every pass


def test_the_mailbox_follows_the_desk_for_a_message_id_folded_as_outlook_writes_it(pipeline):
    from tests.helpers import inbox_state

    message_id = "<AM9PR02MB6609243F575793E9C226F261E8112@AM9PR02MB6609.eurprd02.prod.outlook.com>"
    raw = request_message(body="Can we run your piece about the park?", message_id=message_id)
    deliver(pipeline["user"], raw.replace(b"Message-ID: <", b"Message-ID:\r\n\t<"))
    pipeline["run"]()
    with pipeline["sessions"]() as session:
        (item,) = review_queue(session)
    _resolve(pipeline, item.request_id, "dismiss")
    pipeline["run"]()
    (flags,) = inbox_state(pipeline["user"]).values()
    assert b"\\Flagged" not in flags, flags
