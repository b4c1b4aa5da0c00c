from datetime import datetime, timezone
from email import message_from_bytes, policy

import pytest

from models import Decision, Outcome
from processor.catalog.stories import StoryView
from processor.config import load_config
from processor.pipeline.decide import Plan, StoryDecision
from processor.pipeline.parse import parse_message
from processor.pipeline.recipients import choose_recipient, safe_address
from processor.pipeline.reply import ReplyContext, UnsafeHeader, build_reply
from processor.pipeline.snippet import build_snippet
from tests.helpers import request_message, write_config

NOW = datetime(2026, 11, 24, 12, tzinfo=timezone.utc)


@pytest.fixture
def publication(tmp_path):
    return load_config(write_config(tmp_path, "sqlite://", maildir=tmp_path / "m", outbox=tmp_path / "o")).publication


def story(**overrides):
    values = dict(id=7, canonical_url="https://riversideledger.example/news/a/", title="Council <b>approves</b> lanes",
                  slug="a", byline="Maria & Co", published_at=NOW,
                  body_html='<p>One <a href="https://riversideledger.example/x">link</a>.</p><p>Two<img src=x onerror=alert(1)></p>',
                  origin=None, origin_evidence="")
    values.update(overrides)
    return StoryView(**values)


def test_snippet_has_every_required_part_and_nothing_else(publication):
    snippet = build_snippet(story(), publication, outlet_id=3, token="tok en/+")
    html = snippet.html
    assert "<h1>Council &lt;b&gt;approves&lt;/b&gt; lanes</h1>" in html
    assert "By Maria &amp; Co | November 24, 2026" in html
    assert html.count('style="margin: 0 0 1em 0; line-height: 1.5;"') >= 3
    assert '<a href="https://riversideledger.example/x">link</a>' in html
    assert 'This article originally appeared in <a href="https://riversideledger.example/news/a/">The Riverside Ledger</a>' in html
    assert '<link rel="canonical" href="https://riversideledger.example/news/a/">' in html
    assert "story=7&amp;outlet=3&amp;t=tok%20en%2F%2B" in html
    assert "onerror" not in html and "<img src=x" not in html and html.count("<img") == 1  # only the pixel
    assert snippet.filename == "a.html"
    assert "One link (https://riversideledger.example/x)." in snippet.text


def _plan(*decisions, needs_person=False):
    return Plan(Outcome.ANSWERED, needs_person=needs_person, reply=True, reasons=("x",), stories=tuple(decisions))


def test_reply_is_threaded_and_marked_automatic(publication):
    inbound = parse_message(request_message(headers={"References": "<a@x.example> <b@x.example>"}))
    granted = story()
    declined = story(id=8, title="Wire story", origin="JTA", slug="w")
    plan = _plan(StoryDecision(granted, Decision.GRANTED, ""), StoryDecision(declined, Decision.DECLINED, ""))
    snippets = {7: build_snippet(granted, publication, outlet_id=1, token="t")}
    message = build_reply(plan, inbound, snippets, ReplyContext(publication, "republish@riversideledger.example", "m1@riversideledger.example", NOW),
                          inbound.from_address)
    parsed = message_from_bytes(message, policy=policy.default)
    assert parsed["Subject"] == "Re: republish"
    assert parsed["In-Reply-To"] == "<r1@valleynews.example>"
    assert parsed["References"] == "<a@x.example> <b@x.example> <r1@valleynews.example>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert parsed["X-Loop"] == "republish@riversideledger.example"
    assert parsed["To"] == "priya@valleynews.example"
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert "originated with JTA" in text and "originated with JTA" in html
    assert '<link rel="canonical" href="https://riversideledger.example/news/a/">' in text
    assert "&lt;h1&gt;Council &amp;lt;b&amp;gt;" in html  # snippet source shown escaped, never rendered
    assert [p.get_filename() for p in parsed.iter_attachments()] == ["a.html"]


def test_reply_goes_to_reply_to_when_it_is_the_senders_organisation():
    inbound = parse_message(request_message(headers={"Reply-To": "desk@news.valleynews.example"}))
    assert choose_recipient(inbound.from_address, inbound.reply_to_address).address == "desk@news.valleynews.example"


def test_header_injection_in_addresses_is_refused(publication):
    raw = b"From: x@valleynews.example\r\nReply-To: =?utf-8?q?evil=0D=0ABcc=3A_victim=40x=2Eexample?= <a@b.example>\r\nSubject: republish\r\nMessage-ID: <q@x>\r\n\r\nhi\r\n"
    inbound = parse_message(raw)
    address = choose_recipient(inbound.from_address, inbound.reply_to_address).address
    assert address == "x@valleynews.example"
    plan = _plan()
    message = build_reply(plan, inbound, {}, ReplyContext(publication, "republish@riversideledger.example", "m@x.example", NOW),
                          address)
    assert b"Bcc" not in message.split(b"\r\n\r\n")[0].replace(b"\n", b"")


def test_unsafe_recipient_raises():
    raw = b"From: not an address\r\nSubject: republish\r\n\r\nhi\r\n"
    inbound = parse_message(raw)
    assert choose_recipient(inbound.from_address, inbound.reply_to_address).address is None
    with pytest.raises(UnsafeHeader):
        build_reply(_plan(), inbound, {}, None, "not an address")


def test_script_in_the_display_name_and_subject_never_reaches_the_reply_as_markup(publication):
    raw = (b"From: =?utf-8?q?=3Cscript=3Ealert(1)=3C/script=3E_Priya?= <priya@valleynews.example>\r\n"
           b"Subject: =?utf-8?q?Re=3A_republish_=3Cimg_src=3Dx_onerror=3Dalert(1)=3E?=\r\n"
           b"Message-ID: <xss@valleynews.example>\r\n\r\nhi\r\n")
    inbound = parse_message(raw)
    assert "<script>" in inbound.from_name  # decoded faithfully, then treated as text
    message = build_reply(_plan(), inbound, {}, ReplyContext(publication, "republish@riversideledger.example", "m@x.example", NOW),
                          inbound.from_address)
    parsed = message_from_bytes(message, policy=policy.default)
    html = parsed.get_body(("html",)).get_content()
    assert "<script" not in html and "onerror" not in parsed["Subject"] and "<img" not in html


def test_an_internationalised_address_goes_to_a_person_not_into_a_header():
    assert not safe_address("pr\u00efya@valleynews.example")  # needs SMTPUTF8 end to end
    assert safe_address("priya@valleynews.example")


def test_the_from_header_carries_the_configured_display_name(publication):
    inbound = parse_message(request_message(body="https://riversideledger.example/news/x/"))
    context = ReplyContext(publication, "republish@riversideledger.example", "m@x.example", NOW,
                           from_name="Riverside Ledger Syndication")
    message = build_reply(_plan(), inbound, {}, context, inbound.from_address)
    assert b"From: Riverside Ledger Syndication <republish@riversideledger.example>\r\n" in message


def test_the_snippet_source_reads_as_written_one_block_a_line(publication):
    """Partners read the source before pasting it: the whole story ran together on one line, and an
    apostrophe showed as &#39;."""
    body = "<p>It&#39;s here.</p><h2>Part two</h2><ul><li>one</li><li>two</li></ul><blockquote><p>Said.</p></blockquote>"
    html = build_snippet(story(title="Jane's \"big\" day", byline="Jane O'Neil", body_html=body), publication,
                         outlet_id=3, token="t").html
    assert "<h1>Jane's \"big\" day</h1>" in html and "By Jane O'Neil" in html and "&#39;" not in html
    lines = html.splitlines()
    assert '<p style="margin: 0 0 1em 0; line-height: 1.5;">It\'s here.</p>' in lines
    assert "<h2>Part two</h2>" in lines and "<ul>" in lines and "</ul>" in lines and "</blockquote>" in lines
    assert sum(line.startswith("<li ") for line in lines) == 2
    hostile = build_snippet(story(canonical_url='https://riversideledger.example/a/?q="><script>'), publication,
                            outlet_id=3, token="t").html
    assert "<script>" not in hostile and 'href="https://riversideledger.example/a/?q=&quot;&gt;&lt;script&gt;"' in hostile
