"""The editor's commands (stories, outlets, requests, review, pickups) on a Maildir, an outbox folder and SQLite."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from processor.cli import main
from tests.helpers import request_message

BIKE = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"


@pytest.fixture
def cli(maildir_pipeline, tmp_path):
    """`republish --config ...` on the Maildir pipeline, with three requests handled by `run --once`."""
    maildir_pipeline["configure"]()
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, ["--config", str(tmp_path / "config.toml"), *args], env={"USER": "desk", "COLUMNS": "250"})
        assert result.exit_code == code, result.output
        return result.output

    for name, raw in {
        "1": request_message(body=f"May we run {BIKE}", message_id="<a1@valleynews.example>"),
        "2": request_message(sender="Sam <sam@valleynews.example>", body="Can we run your piece about the park?", message_id="<p1@valleynews.example>",
                             age=timedelta(minutes=4)),
        "3": request_message(sender="Lena <lena@harborgazette.example>", body=f"Us too: {BIKE}",
                             message_id="<h1@harborgazette.example>", age=timedelta(minutes=3)),
    }.items():
        (maildir_pipeline["maildir"] / "new" / f"{name}.eml").write_bytes(raw)
    assert "3 request(s) handled, 2 reply(ies) sent" in invoke("run", "--once")
    return invoke


def _requests(cli, *args):
    return {r["from"]: r for r in json.loads(cli("requests", "--format", "json", *args))}


def test_stories_with_pickup_counts(cli):
    rows = json.loads(cli("stories", "--format", "json"))
    assert [(r["url"], r["granted"], r["declined"]) for r in rows] == [(BIKE, 2, 0)]
    assert "Council approves" in cli("stories", "--search", "BIKE LANES")
    assert "no stories match" in cli("stories", "--search", "zebra")
    assert cli("stories", "--format", "csv").splitlines()[0] == "id,published,granted,declined,origin,title,url,free"
    table = cli("stories")  # which stories are not free shows in the table, not only in JSON
    assert " FREE " in table.splitlines()[0] and " yes " in table


def test_requests_log_and_one_request_in_full(cli):
    rows = _requests(cli)
    assert {r["outcome"] for r in rows.values()} == {"answered", "needs_person (person)"}
    assert "no story could be identified" in rows["sam@valleynews.example"]["reason"]
    assert list(_requests(cli, "--outcome", "needs_person")) == ["sam@valleynews.example"]
    assert list(_requests(cli, "--outlet", "harborgazette.example")) == ["lena@harborgazette.example"]
    assert _requests(cli, "--since", "2099-01-01") == {}
    answered = next(r for r in json.loads(cli("requests", "--format", "json", "--outlet", "harborgazette.example")))
    shown = cli("requests", "show", str(answered["id"]))
    assert "Message-ID:  h1@harborgazette.example" in shown and "Outcome:     answered" in shown
    assert f"granted   {BIKE}" in shown
    assert "Reply (sent):" in shown and "To: lena@harborgazette.example" in shown and "HTML to paste" in shown
    assert "Attached: council-approves-protected-bike-lanes.html" in shown
    assert "there is no request 999" in cli("requests", "show", "999", code=1)


def test_outlets_rename_block_merge(cli):
    listing = cli("outlets")
    assert "valleynews.example" in listing and "harborgazette.example" in listing
    assert "is now shown as 'Harbor Gazette'" in cli("outlets", "rename", "harborgazette.example", "Harbor Gazette")
    assert "Harbor Gazette" in cli("outlets")
    assert "Missing option '--reason'" in cli("outlets", "block", "valleynews.example", code=2)
    assert "blocked" in cli("outlets", "block", "valleynews.example", "--reason", "dropped the credit line")
    assert "BLOCKED: dropped the credit line" in cli("outlets")
    assert "unblocked" in cli("outlets", "unblock", "valleynews.example")
    assert "BLOCKED:" not in cli("outlets")
    assert "there is no outlet" in cli("outlets", "block", "nowhere.example", "--reason", "x", code=1)

    merged = cli("outlets", "merge", "harborgazette.example", "valleynews.example")
    assert "0 pickup(s) moved, 1 combined" in merged and "1 request(s) moved" in merged
    pickups = json.loads(cli("pickups", "--format", "json"))
    assert [(p["outlet"], p["requests"]) for p in pickups] == [("valleynews.example", 2)]
    assert "valleynews.example" in cli("outlets").split("harborgazette.example", 1)[1].splitlines()[0]
    assert set(_requests(cli, "--outlet", "valleynews.example")) == {
        "lena@harborgazette.example", "sam@valleynews.example", "priya@valleynews.example"}
    assert "already an alias" in cli("outlets", "merge", "harborgazette.example", "valleynews.example", code=1)
    assert "nothing to merge" in cli("outlets", "merge", "valleynews.example", "harborgazette.example", code=1)


def test_review_grant_sends_the_reply(cli, maildir_pipeline):
    queue = cli("review")
    park = _requests(cli)["sam@valleynews.example"]
    assert str(park["id"]) in queue and "no story could be identified" in queue
    before = len(list(maildir_pipeline["outbox"].glob("*.eml")))
    assert "say which story it is about" in cli("review", "grant", str(park["id"]), code=1)
    out = cli("review", "grant", str(park["id"]), "--story", BIKE, "--editor", "maria")
    assert "granted" in out and "reply sent to sam@valleynews.example" in out
    assert len(list(maildir_pipeline["outbox"].glob("*.eml"))) == before + 1
    assert "nothing to review" in cli("review")
    assert "already resolved (granted by maria)" in cli("review", "dismiss", str(park["id"]), code=1)
    assert "Resolution:  granted by maria" in cli("requests", "show", str(park["id"]))


def test_review_decline_and_dismiss(cli, maildir_pipeline):
    park = _requests(cli)["sam@valleynews.example"]
    before = len(list(maildir_pipeline["outbox"].glob("*.eml")))
    assert "dismissed" in cli("review", "dismiss", str(park["id"]))
    assert len(list(maildir_pipeline["outbox"].glob("*.eml"))) == before
    assert "Resolution:  dismissed by desk" in cli("requests", "show", str(park["id"]))
    assert "nothing to review" in cli("review")


def test_review_decline_sends_a_polite_no(cli, maildir_pipeline):
    park = _requests(cli)["sam@valleynews.example"]
    out = cli("review", "decline", str(park["id"]), "--story", BIKE)
    assert "declined" in out and "reply sent" in out
    assert "is not available for republishing" in cli("requests", "show", str(park["id"]))


def test_pickups_date_range(cli):
    # The day the fixture recorded the pickups, not today's: the suite may cross midnight in between.
    recorded = {row["first_requested"][:10] for row in json.loads(cli("pickups", "--format", "json"))}
    assert len(recorded) == 1
    day = datetime.fromisoformat(recorded.pop()).date()
    assert len(json.loads(cli("pickups", "--format", "json", "--since", str(day), "--until", str(day)))) == 2
    assert "no pickups" in cli("pickups", "--until", str(day - timedelta(days=1)))
    assert "no pickups" in cli("pickups", "--since", str(day + timedelta(days=1)))


def test_review_grant_while_a_worker_runs_leaves_the_reply_to_it(cli, maildir_pipeline):
    from processor.app import build_worker

    park = _requests(cli)["sam@valleynews.example"]
    worker, engine = build_worker(maildir_pipeline["configure"]())  # holds the SQLite database's one-worker lock
    try:
        out = cli("review", "grant", str(park["id"]), "--story", BIKE)
        assert "queued: the worker sends it" in out
    finally:
        worker.close()
        engine.dispose()
    assert "1 reply(ies) sent" in cli("run", "--once")
    assert "Reply (sent):" in cli("requests", "show", str(park["id"]))


def test_tables_fit_the_terminal():
    from processor.desk.listings import render

    records = [{"id": 1, "outlet": "valleynews.example", "reason": "no story could be identified " * 4, "url": BIKE}]
    text = render(records, ["id", "outlet", "reason", "url"], "table", empty="", width=60)
    assert max(len(line) for line in text.splitlines()) <= 60
    assert "valleynews.example" in text and "https://riversidel" in text  # a long URL folds, it is not cut


def test_an_automated_message_can_only_be_dismissed(cli, maildir_pipeline):
    from models import Request

    park = _requests(cli)["sam@valleynews.example"]
    with maildir_pipeline["sessions"]() as session:
        session.get(Request, park["id"]).outcome = "ignored"  # as a delivery failure report is recorded
        session.commit()
    assert "automated message" in cli("review", "grant", str(park["id"]), "--story", BIKE, code=1)
    assert "dismissed" in cli("review", "dismiss", str(park["id"]))


def test_the_editor_reads_what_the_partner_wrote(cli):
    """`requests show` and the review queue gave headers and a reason ("asks a question"), never the question."""
    rows = json.loads(cli("requests", "--format", "json"))
    asked = next(row["id"] for row in rows if row["outcome"].startswith("needs_person"))
    shown = cli("requests", "show", str(asked))
    assert "They wrote:\n  Can we run your piece about the park?" in shown


def test_an_editors_reply_greets_the_partner_by_name_carries_the_note_and_is_signed(cli, maildir_pipeline):
    """A review reply greeted "Hello," and ended "(This reply was sent automatically.)"; grant took no note."""
    from email import message_from_bytes, policy

    park = _requests(cli)["sam@valleynews.example"]
    cli("review", "grant", str(park["id"]), "--story", BIKE, "--editor", "Maria Lopez",
        "--note", "Yes for the web; for print, please write to me first.")
    newest = max(maildir_pipeline["outbox"].glob("reply-to-sam@*.eml"), key=lambda path: path.stat().st_mtime)
    reply = message_from_bytes(newest.read_bytes(), policy=policy.default)
    text = reply.get_body(("plain",)).get_content()
    assert text.startswith("Hello Sam,") and "Yes for the web; for print, please write to me first." in text
    assert "Maria Lopez\nThe Riverside Ledger" in text and "sent automatically" not in text
    html = reply.get_body(("html",)).get_content()
    assert "<p>Maria Lopez<br>The Riverside Ledger</p>" in html and "sent automatically" not in html
    automatic = message_from_bytes(next(maildir_pipeline["outbox"].glob("reply-to-lena@*.eml")).read_bytes(),
                                   policy=policy.default)
    assert "(This reply was sent automatically.)" in automatic.get_body(("plain",)).get_content()  # the worker's


def test_a_request_dismissed_by_mistake_is_reopened(cli):
    """An editor dismissed the wrong request, and there was no way back."""
    park = _requests(cli)["sam@valleynews.example"]
    cli("review", "dismiss", str(park["id"]), "--editor", "maria")
    assert "nothing to review" in cli("review")
    assert f"request {park['id']} reopened (was dismissed by maria)" in cli("review", "reopen", str(park["id"]),
                                                                          "--editor", "ana")
    assert str(park["id"]) in cli("review") and "reopened by ana" in cli("requests", "show", str(park["id"]))
    assert "on the queue already" in cli("review", "reopen", str(park["id"]), "--editor", "ana", code=1)
    assert "there is no request 999" in cli("review", "reopen", "999", "--editor", "ana", code=1)


def _maildir_flags(maildir_pipeline, message_id: str) -> str:
    import mailbox

    box = mailbox.Maildir(maildir_pipeline["maildir"], factory=None, create=False)
    (flags,) = [message.get_flags() for message in box if message["Message-ID"] == message_id]
    return flags


def test_answer_show_reopen_and_the_maildir_follows(cli, maildir_pipeline):
    park = _requests(cli)["sam@valleynews.example"]
    assert "F" in _maildir_flags(maildir_pipeline, "<p1@valleynews.example>")
    before = len(list(maildir_pipeline["outbox"].glob("*.eml")))
    assert "Missing option '--text'" in cli("review", "answer", str(park["id"]), code=2)
    out = cli("review", "answer", str(park["id"]), "--text", "Which park? We ran three.", "--editor", "maria")
    assert "answered" in out and "reply sent to sam@valleynews.example" in out
    assert len(list(maildir_pipeline["outbox"].glob("*.eml"))) == before + 1
    shown = cli("review", "show", str(park["id"]))
    assert shown == cli("requests", "show", str(park["id"]))
    assert "Answer from the desk (sent):" in shown and "Which park? We ran three." in shown and "\n  maria\n" in shown
    assert "Earlier requests from this outlet:" in shown  # priya's, from the same newsroom
    cli("run", "--once")
    assert "F" not in _maildir_flags(maildir_pipeline, "<p1@valleynews.example>")
    assert "reopened" in cli("review", "reopen", str(park["id"]))
    assert str(park["id"]) in cli("review")
    cli("run", "--once")
    assert "F" in _maildir_flags(maildir_pipeline, "<p1@valleynews.example>")


def test_a_request_without_a_message_id_leaves_the_other_messages_alone(maildir_pipeline):
    """Resolving a request whose message had no Message-ID unflagged every such message, and moved unread
    ones out of new/, where the worker would never have seen them."""
    import mailbox

    from processor.desk.review import resolve, review_queue
    from processor.mail.maildir import MaildirSource

    config = maildir_pipeline["configure"]()
    new = maildir_pipeline["maildir"] / "new"
    for name, sender, topic in (("1", "Sam <sam@valleynews.example>", "park"), ("2", "Lena <lena@harborgazette.example>", "zoo")):
        (new / f"{name}.eml").write_bytes(request_message(sender=sender, message_id="",
                                                          body=f"Can we run your piece about the {topic}?"))
    maildir_pipeline["run"]()
    (new / "3.eml").write_bytes(request_message(sender="Tom <tom@lakeside.example>", message_id="", body="Hello?"))
    with maildir_pipeline["sessions"]() as session:
        sam = next(i.request_id for i in review_queue(session) if i.from_address.startswith("sam"))
        resolve(session, sam, "dismiss", editor="maria", config=config, now=datetime.now(timezone.utc))
        session.commit()
    assert MaildirSource(maildir_pipeline["maildir"]).follow_desk([""], for_person=False) == 0
    assert (new / "3.eml").exists()  # still unread, still the worker's to see
    maildir_pipeline["run"]()
    flags = {m["From"]: m.get_flags() for m in mailbox.Maildir(maildir_pipeline["maildir"], factory=None, create=False)}
    assert "F" in flags["Lena <lena@harborgazette.example>"], flags  # her request still waits for a person
