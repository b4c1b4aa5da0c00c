"""End to end against a real Dovecot (IMAP), a real SMTP server and SQLite / PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from models import OutboxMessage, Pickup, PickupRequest, Request
from processor.records import db
from processor.app import build_worker
from processor.mail.imap import MailboxError
from tests.helpers import (deliver, inbox_state, load, request_message, running_worker,
                           sent_folder_count, shows, wait_for_replies, wait_until, write_config)

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = Path(__file__).resolve().parents[1] / "processor" / "sample_data" / "stories"  # the demo's stories
BIKE = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
LIBRARY = "https://riversideledger.example/news/2026/11/library-launches-free-tutoring-for-teens/"
WIRE = "https://riversideledger.example/news/2026/11/israel-and-japan-sign-new-defense-agreement/"
pytestmark = pytest.mark.integration


@pytest.mark.every_mailbox
def test_requests_end_to_end(pipeline):
    user, smtp, sessions = pipeline["user"], pipeline["smtp"], pipeline["sessions"]
    deliver(
        user,
        request_message(body=f"Running this one: {BIKE[:-1]}?utm_source=nl&utm_medium=email\nThanks", message_id="<a1@valleynews.example>"),
        request_message(sender="Lena <lena@harborgazette.example>", subject="RE: [External] Republish",
                        body="see html", html=f'<p><a href="{WIRE}amp/">this</a> and <a href="{LIBRARY}#top">that</a></p>',
                        message_id="<b1@harborgazette.example>", headers={"Reply-To": "desk@harborgazette.example"}),
        request_message(body="Can we run your story about the park?", message_id="<c1@valleynews.example>"),
        request_message(body="Please: " + LIBRARY, message_id="<d1@valleynews.example>", age=timedelta(days=40)),
        request_message(subject="Re: republish", body="Out of office", message_id="<e1@harborgazette.example>",
                        sender="lena@harborgazette.example", headers={"Auto-Submitted": "auto-replied"}),
        request_message(subject="Republish rights for our newsletter?", body="decoy", message_id="<f1@other.example>"),
        request_message(body=f"Another please {LIBRARY}\n\nOn Fri, Desk <republish@riversideledger.example> wrote:\n> {BIKE}",
                        message_id="<g1@valleynews.example>"),
    )
    stats = pipeline["run"]()
    assert stats.replies_sent == 3
    assert len(smtp.messages) == 3
    replies = {message_from_bytes(raw, policy=policy.default)["In-Reply-To"]: (rcpt, message_from_bytes(raw, policy=policy.default))
               for _, rcpt, raw in smtp.messages}
    assert set(replies) == {"<a1@valleynews.example>", "<b1@harborgazette.example>", "<g1@valleynews.example>"}
    rcpt, harbor = replies["<b1@harborgazette.example>"]
    assert rcpt == ["desk@harborgazette.example"]
    harbor_text = harbor.get_body(("plain",)).get_content()
    assert "originated with JTA" in harbor_text and "Library launches free tutoring for teens" in harbor_text
    assert [p.get_filename() for p in harbor.iter_attachments()] == ["library-launches-free-tutoring-for-teens.html"]
    thread_text = replies["<g1@valleynews.example>"][1].get_body(("plain",)).get_content()
    assert "Council approves" not in thread_text  # the quoted story is not re-requested

    state = inbox_state(user)
    assert shows(user, state["<a1@valleynews.example>"], "done")
    assert shows(user, state["<c1@valleynews.example>"], "person")
    assert shows(user, state["<d1@valleynews.example>"], "done")
    assert shows(user, state["<e1@harborgazette.example>"], "ignored")
    assert state["<f1@other.example>"] == set()  # not a request: untouched, not even \Seen
    assert all(b"\\Seen" not in flags for flags in state.values())
    assert sent_folder_count(user) == 3

    with sessions() as session:
        outcomes = dict(session.execute(select(Request.message_key, Request.outcome)).all())
        assert outcomes == {
            "a1@valleynews.example": "answered", "b1@harborgazette.example": "answered",
            "c1@valleynews.example": "needs_person", "d1@valleynews.example": "backfilled",
            "e1@harborgazette.example": "ignored", "g1@valleynews.example": "answered",
        }
        # valleynews took the library story twice (backfill + thread): one pickup, two requests
        rows = session.execute(select(Pickup.id, func.count(PickupRequest.request_id))
                               .join(PickupRequest).group_by(Pickup.id)).all()
        assert sorted(count for _, count in rows) == [1, 1, 1, 2]
        assert session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.status == "sent")) == 3

    # A second run sends nothing twice.
    again = pipeline["run"]()
    assert again.replies_sent == 0 and len(smtp.messages) == 3


@pytest.mark.every_mailbox
def test_smtp_refusal_keeps_the_reply_and_retries_it_after_a_backoff(pipeline):
    user, smtp = pipeline["user"], pipeline["smtp"]
    # A first retry due within 3 s: the look-again below comes well before it, even through a proxy.
    config = replace(pipeline["config"], worker=replace(pipeline["config"].worker, retry_first_seconds=3))
    deliver(user, request_message(body=BIKE, message_id="<s1@valleynews.example>"))
    smtp.refuse("451 4.3.0 try again later")
    first = pipeline["run"](config)
    assert first.replies_sent == 0 and smtp.messages == []
    assert inbox_state(user)["<s1@valleynews.example>"] == set()  # not marked until its reply is sent
    with pipeline["sessions"]() as session:
        row = session.scalars(select(OutboxMessage)).one()
        assert (row.status, row.attempts) == ("pending", 1) and "451" in row.last_error
        wait = (row.next_attempt_at - datetime.now(timezone.utc)).total_seconds()
    assert 0 < wait <= 3.0  # retry_first_seconds, with jitter between half and all of it
    assert pipeline["run"](config).replies_sent == 0  # not due yet: the server is not hammered
    # Due within `wait` seconds: keep looking until the retry goes out (a jittered delay, not a fixed sleep).
    assert wait_until(lambda: pipeline["run"](config).replies_sent == 1, wait + 10) and len(smtp.messages) == 1
    assert shows(user, inbox_state(user)["<s1@valleynews.example>"], "done")
    with pipeline["sessions"]() as session:
        assert session.scalar(select(func.count()).select_from(Request)) == 1
        assert session.scalars(select(OutboxMessage.attempts)).one() == 2


@pytest.mark.every_mailbox
def test_permanent_smtp_refusal_goes_to_a_person(pipeline):
    user, smtp = pipeline["user"], pipeline["smtp"]
    deliver(user, request_message(body=BIKE, message_id="<p1@valleynews.example>"))
    smtp.refuse("550 5.1.1 no such user")
    pipeline["run"]()
    assert shows(user, inbox_state(user)["<p1@valleynews.example>"], "person")
    pipeline["run"]()
    assert smtp.messages == []


@pytest.mark.every_mailbox
def test_seed_story_is_declined(pipeline):
    user, smtp = pipeline["user"], pipeline["smtp"]
    deliver(user, request_message(
        body="We'd like to pick up: Israel and Japan sign new defense agreement as they mark 70 years of relations",
        message_id="<seed@valleynews.example>"))
    pipeline["run"]()
    reply = message_from_bytes(smtp.messages[0][2], policy=policy.default)
    text = reply.get_body(("plain",)).get_content()
    assert "originated with JTA" in text and "HTML to paste" not in text
    with pipeline["sessions"]() as session:
        assert session.scalar(select(Pickup.decision)) == "declined"


def test_wrong_password_is_a_clear_error_without_the_password(tmp_path, mailbox_user, smtp_server, sqlite_url):
    path = write_config(tmp_path, sqlite_url, imap=mailbox_user, smtp_port=smtp_server.port)
    config = load(path, "wrong-password-xyz")
    db.upgrade(db.make_engine(config.database_url))
    worker, engine = build_worker(config)
    with pytest.raises(MailboxError) as error:
        worker.run(once=True)
    assert "login refused" in str(error.value) and "wrong-password-xyz" not in str(error.value)
    worker.close()
    engine.dispose()


def test_tls_is_verified_against_the_configured_ca(tmp_path, mailbox_user, smtp_server, sqlite_url):
    tls_user = {**mailbox_user, "use_port": mailbox_user["tls_port"], "security": "tls", "host": "localhost"}
    path = write_config(tmp_path, sqlite_url, imap=tls_user, smtp_port=smtp_server.port)
    config = load(path, mailbox_user["password"])
    db.upgrade(db.make_engine(config.database_url))
    worker, engine = build_worker(config)
    assert worker.run(once=True).requests == 0  # connected and verified
    worker.close()
    # Without the private CA the same server is refused.
    text = path.read_text().replace(f'ca_file = "{mailbox_user["ca_file"]}"\n', "")
    path.write_text(text)
    worker, engine = build_worker(load(path, mailbox_user["password"]))
    with pytest.raises(MailboxError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
        worker.run(once=True)
    worker.close()
    engine.dispose()



@pytest.mark.every_mailbox
def test_idle_worker_answers_a_new_request_promptly(pipeline):
    # A 5-minute poll interval: only IDLE can make the answer arrive within seconds.
    with running_worker(pipeline["config"], poll_seconds=300):
        deliver(pipeline["user"], request_message(body=BIKE, message_id="<idle@valleynews.example>"))
        wait_for_replies(pipeline["smtp"], 1, 10)
        assert len(pipeline["smtp"].messages) == 1


def test_worker_survives_a_dovecot_restart(pipeline, dovecot_server):
    with running_worker(pipeline["config"], poll_seconds=2) as thread:
        dovecot_server.restart()
        deliver(pipeline["user"], request_message(body=BIKE, message_id="<restart@valleynews.example>"))
        wait_for_replies(pipeline["smtp"], 1, 20)
        assert len(pipeline["smtp"].messages) == 1 and thread.is_alive()
