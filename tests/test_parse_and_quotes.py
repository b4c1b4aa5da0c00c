from processor.pipeline.parse import normalise_message_id, parse_message
from processor.pipeline.quotes import strip_quoted_html, strip_quoted_text
from tests.helpers import request_message


def test_parse_basic_fields():
    raw = request_message(sender='"Shah, Priya" <Priya@ValleyNews.example>', body="See https://a.example/x",
                          headers={"Reply-To": "desk@valleynews.example"})
    inbound = parse_message(raw)
    assert inbound.from_address == "priya@valleynews.example"
    assert inbound.reply_to_address == "desk@valleynews.example"
    assert inbound.message_id == "r1@valleynews.example"
    assert inbound.message_key == "r1@valleynews.example"
    assert inbound.links == ("https://a.example/x",)
    assert inbound.date is not None and inbound.date.tzinfo is not None


def test_message_without_message_id_gets_a_digest_key():
    a = parse_message(request_message(message_id="", body="one"))
    b = parse_message(request_message(message_id="", body="two"))
    assert a.message_key.startswith("sha256:") and a.message_key != b.message_key


def test_message_ids_compare_without_brackets_and_spaces():
    assert normalise_message_id("  <abc@x.example> ") == "abc@x.example"


def test_quoted_reply_is_ignored():
    text = (
        "One more please: https://site.example/new\n\n"
        "On Fri, Nov 20, 2026 at 10:02 AM Desk <desk@site.example>\nwrote:\n"
        "> https://site.example/old\n"
    )
    assert strip_quoted_text(text) == "One more please: https://site.example/new"


def test_outlook_header_block_is_ignored():
    text = "New one: https://site.example/new\n\n________________________________\nFrom: Desk\nSent: Friday\nTo: me\nSubject: Re: republish\n\nhttps://site.example/old"
    assert "old" not in strip_quoted_text(text)


def test_quoted_html_is_ignored():
    html = ('<div>New: <a href="https://site.example/new">x</a></div>'
            '<div class="gmail_quote">On Fri wrote:<blockquote><a href="https://site.example/old">y</a></blockquote></div>')
    cleaned = strip_quoted_html(html)
    assert "new" in cleaned and "old" not in cleaned


def test_outlook_html_reply_marker_cuts_everything_after():
    html = '<div>New <a href="https://site.example/new">x</a></div><div id="divRplyFwdMsg">From: Desk</div><div><a href="https://site.example/old">y</a></div>'
    assert "old" not in strip_quoted_html(html)


def test_forwarded_message_keeps_its_content():
    raw = request_message(subject="Fwd: republish", body="---------- Forwarded message ---------\n> https://site.example/story")
    assert parse_message(raw).links == ("https://site.example/story",)


def test_links_in_html_part_are_found():
    raw = request_message(body="see html", html='<p><a href="https://site.example/a">A</a> and https://site.example/b</p>')
    assert set(parse_message(raw).links) >= {"https://site.example/a", "https://site.example/b"}


def test_control_characters_and_nul_bytes_do_not_break_parsing():
    raw = b"From: a@b.example\r\nSubject: republish\x00\r\nMessage-ID: <x@y>\r\n\r\nbody \x00 https://s.example/x\r\n"
    inbound = parse_message(raw)
    assert inbound.subject == "republish"


def test_a_message_without_message_id_keeps_one_key_across_copies():
    body = b"From: priya@valleynews.example\r\nSubject: republish\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\nRunning it\r\n"
    first = b"Received: from a.example by mx1\r\nDelivered-To: desk@x.example\r\n" + body
    second = (b"Received: from b.example by mx2\r\n" + body).replace(b"\r\n", b"\n")  # another route, LF endings
    assert parse_message(first).message_key == parse_message(second).message_key
    assert parse_message(first).message_key.startswith("sha256:")
    other = body.replace(b"Running it", b"Running the other one")
    assert parse_message(other).message_key != parse_message(first).message_key
