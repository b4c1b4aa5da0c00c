"""No mail cannon: where a reply may go, and how many may go out (processor/pipeline/recipients.py)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from models import Request
from processor.pipeline.recipients import (Caps, ReplyBudget, choose_recipient, mailbox_key,
                                           organisational_domain)
from tests.helpers import request_message

BIKE = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)


def test_reply_to_is_followed_only_inside_the_senders_organisation_or_when_the_outlet_used_it():
    assert choose_recipient("priya@valleynews.example", None).address == "priya@valleynews.example"
    assert choose_recipient("priya@valleynews.example", "desk@valleynews.example").address == "desk@valleynews.example"
    assert choose_recipient("priya@news.bbc.co.uk", "desk@bbc.co.uk").address == "desk@bbc.co.uk"
    # Another organisation on the same public suffix is not the sender's.
    elsewhere = choose_recipient("priya@valleynews.co.uk", "victim@other.co.uk")
    assert elsewhere.address == "priya@valleynews.co.uk" and "victim@other.co.uk not followed" in elsewhere.note
    known = frozenset({mailbox_key("Priya.Desk+x@Gmail.com")})
    assert choose_recipient("priya@valleynews.example", "priyadesk@googlemail.com", known).address == \
        "priyadesk@googlemail.com"
    assert choose_recipient("not an address", "desk@valleynews.example").address is None


def test_one_mailbox_however_spelled():
    assert mailbox_key("Victim+1@Example.org") == mailbox_key("victim+2@example.org") == "victim@example.org"
    assert mailbox_key("v.i.c.tim@googlemail.com") == mailbox_key("victim@gmail.com")
    assert mailbox_key("v.ictim@example.org") != mailbox_key("victim@example.org")  # dots matter elsewhere
    assert organisational_domain("mail.news.valleynews.example") == "valleynews.example"


def test_each_cap_stops_the_next_reply_and_names_itself():
    caps = Caps(per_mailbox_per_day=2, per_domain_per_day=3, per_hour=4)
    budget = ReplyBudget(caps, NOW, [("victim+1@example.org", NOW - timedelta(hours=5)),
                                     ("Victim@example.org", NOW - timedelta(hours=3))])
    assert "max_replies_per_sender_per_day" in budget.over("victim+9@example.org")
    assert budget.over("other@example.org") is None
    budget.spend("other@example.org")
    assert "max_replies_per_domain_per_day" in budget.over("third@example.org")
    assert budget.over("a@elsewhere.example") is None
    for address in ("a@one.example", "b@two.example", "c@three.example"):
        budget.spend(address)
    assert "max_replies_per_hour" in budget.over("d@four.example")  # 4 in the last hour
    assert ReplyBudget(caps, NOW, [("x@one.example", NOW - timedelta(hours=2))] * 3).over("y@two.example") is None


def _run(maildir_pipeline, messages: list[bytes], extra: str = "") -> dict[str, str]:
    new = maildir_pipeline["maildir"] / "new"
    for number, raw in enumerate(messages):
        new.joinpath(f"{number}.eml").write_bytes(raw)
    maildir_pipeline["run"](extra)
    with maildir_pipeline["sessions"]() as session:
        return dict(session.execute(select(Request.message_key, Request.outcome)).all())


def _recipients(maildir_pipeline) -> list[str]:
    return [re.search(rb"^To: (.+?)\r$", path.read_bytes(), re.M).group(1).decode()
            for path in maildir_pipeline["outbox"].glob("*.eml")]


def test_forged_requests_cannot_aim_replies_at_a_victim(maildir_pipeline):
    """The attack: 28 requests from one attacker domain, Reply-To the victim's mailbox in many spellings.
    Before, 25 replies (630 KB) went to the victim; now none: the Reply-To is not the sender's."""
    forged = [request_message(sender=f"desk{i}@attacker.example", body=BIKE, message_id=f"<cannon{i}@attacker.example>",
                              headers={"Reply-To": "victim@victim.example" if i % 2 else f"victim+{i}@victim.example"})
              for i in range(28)]
    _run(maildir_pipeline, forged)
    sent = _recipients(maildir_pipeline)
    assert not [address for address in sent if "victim" in address]
    assert len(sent) == 20  # and the attacker's own domain gets no more than its daily cap
    with maildir_pipeline["sessions"]() as session:
        reasons = [reason for reason, in session.execute(select(Request.reason))]
    assert sum("max_replies_per_domain_per_day" in reason for reason in reasons) == 8
    assert sum("Reply-To victim" in reason and "not followed" in reason for reason in reasons) == 20


def test_forged_senders_get_at_most_the_mailbox_cap(maildir_pipeline):
    """From itself forged, in spellings of one mailbox: the per-mailbox cap counts them as one."""
    forged = [request_message(sender=f"Victim+{i}@victim.example", body=BIKE, message_id=f"<from{i}@attacker.example>")
              for i in range(12)]
    outcomes = _run(maildir_pipeline, forged)
    assert len(_recipients(maildir_pipeline)) == 5
    assert sorted(outcomes.values()).count("needs_person") == 7


def test_strict_mode_does_not_trust_a_reply_to_outside_the_senders_organisation(maildir_pipeline):
    ours = "mx.riversideledger.example"
    passing = f"{ours}; dkim=pass header.d=valleynews.example; dmarc=pass header.from=valleynews.example"
    outcomes = _run(maildir_pipeline, [
        request_message(body=BIKE, message_id="<aligned@valleynews.example>",
                        headers={"Authentication-Results": passing, "Reply-To": "desk@valleynews.example"}),
        request_message(body=BIKE, message_id="<elsewhere@valleynews.example>",
                        headers={"Authentication-Results": passing, "Reply-To": "someone@elsewhere.example"}),
    ], f'require_authenticated_sender = true\nauthserv_id = "{ours}"\n')
    assert outcomes == {"aligned@valleynews.example": "answered", "elsewhere@valleynews.example": "needs_person"}
    assert _recipients(maildir_pipeline) == ["desk@valleynews.example"]
