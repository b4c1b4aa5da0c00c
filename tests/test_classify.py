import pytest

from processor.classify import automation_reason, is_delivery_report, is_republish_subject, outlet_key, question_reason, title_key, title_spans
from processor.parse import parse_message
from tests.helpers import request_message


@pytest.mark.parametrize("subject", [
    "republish", "Republish", "REPUBLISH", "Re: republish", "RE: Republish", "Fwd: republish", "FW: RE: republish",
    "AW: republish", "SV: republish", "[External] Republish", "RE: [External] republish", "Re[2]: republish",
    "=?utf-8?q?republish?=", "  republish  ", "republish.",
])
def test_republish_subjects(subject):
    assert is_republish_subject(parse_message(request_message(subject=subject)).subject)


@pytest.mark.parametrize("subject", [
    "", "Republish rights for our newsletter?", "How to republish stories", "republishing", "Re: question",
    "Automatic reply: republish",
])
def test_other_subjects_are_not_requests(subject):
    assert not is_republish_subject(subject)


@pytest.mark.parametrize("headers, sender, expected", [
    ({"Auto-Submitted": "auto-replied"}, None, "Auto-Submitted"),
    ({"Auto-Submitted": "no"}, None, None),
    ({"Precedence": "bulk"}, None, "Precedence"),
    ({"List-Id": "<partners.lists.example>"}, None, "mailing-list"),
    ({"List-Unsubscribe": "<mailto:x@y.example>"}, None, "mailing-list"),
    ({"X-Autoreply": "yes"}, None, "auto-reply header"),
    ({"X-Autorespond": "yes"}, None, "auto-reply header"),
    ({"X-Auto-Response-Suppress": "All"}, None, "no automatic replies"),
    ({"X-Auto-Response-Suppress": "OOF, AutoReply"}, None, "no automatic replies"),
    ({"X-Auto-Response-Suppress": "DR, RN"}, None, None),
    ({"Precedence": "junk"}, None, "Precedence"),
    ({"Precedence": "list"}, None, "Precedence"),
    ({"Auto-Submitted": "auto-generated"}, None, "Auto-Submitted"),
    ({}, "postmaster@partner.example", "automated sender"),
    ({}, "do-not-reply@partner.example", "automated sender"),
    ({"Return-Path": "<>"}, None, "empty Return-Path"),
    ({}, "MAILER-DAEMON@mx.example", "automated sender"),
    ({}, "no-reply@partner.example", "automated sender"),
    ({}, "republish@riversideledger.example", "our own address"),
    ({"X-Loop": "republish@riversideledger.example"}, None, "X-Loop"),
    ({}, None, None),
])
def test_automation_rules(headers, sender, expected):
    raw = request_message(headers=headers, **({"sender": sender} if sender else {}))
    reason = automation_reason(parse_message(raw), ("republish@riversideledger.example",), "republish@riversideledger.example")
    if expected is None:
        assert reason is None
    else:
        assert expected in reason


def test_outlet_is_domain_or_free_mail_address():
    assert outlet_key("Priya@ValleyNews.example") == "valleynews.example"
    assert outlet_key("tom.writes@gmail.com") == "tom.writes@gmail.com"


def test_title_key_folds_case_quotes_and_accents():
    assert title_key("Israel’s “New” Défense Deal!") == title_key("israels new defense deal")


def test_title_spans_find_a_headline_inside_a_sentence():
    spans = title_spans("We'd like to run Library launches free tutoring for teens, thanks", 4000)
    assert title_key("Library launches free tutoring for teens") in spans


@pytest.mark.parametrize("text, needs_person", [
    ("Can we republish this story?", False),
    ("Could we also use the photos?", True),
    ("Do you have a print edition version?", True),
    ("Is there a fee?", True),
    ("When was this published?", True),
    ("Here is the link https://a.example/x?utm_source=y thanks", False),
    ("Thanks, running it tomorrow.", False),
])
def test_questions_that_need_a_person(text, needs_person):
    assert bool(question_reason(text)) is needs_person


def test_a_delivery_report_is_recognised_and_never_answered():
    report = (b"From: Mail Delivery System <MAILER-DAEMON@mx.partner.example>\r\nTo: republish@riversideledger.example\r\n"
              b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.partner.example>\r\n"
              b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
              b"--b\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n"
              b"Reporting-MTA: dns; mx.partner.example\r\n\r\nFinal-Recipient: rfc822; gone@partner.example\r\n"
              b"Action: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
              b"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <ours1@riversideledger.example>\r\n"
              b"Subject: Re: republish\r\n--b--\r\n")
    inbound = parse_message(report)
    assert is_delivery_report(inbound)
    assert inbound.embedded_message_ids == ("ours1@riversideledger.example",)
    assert inbound.report_diagnostic == "Action: failed; Status: 5.1.1; Diagnostic-Code: smtp; 550 5.1.1 no such user"
    assert "multipart/report" in automation_reason(inbound, (), "x") or "automated sender" in automation_reason(inbound, (), "x")
