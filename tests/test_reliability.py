"""Never lose a request, never answer twice, never start a mail loop: against the real Dovecot, SMTP and databases."""

from __future__ import annotations

import imaplib
import logging
import signal
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from contextlib import contextmanager
from email import message_from_bytes, policy

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from models import OutboxMessage, Request, make_engine
from processor.app import build_edges, build_worker
from processor.mail.imap import ImapSource
from processor.pipeline.sending import Sending
from processor.records.claims import AnotherWorkerRunning
from processor.records.errors import DatabaseUnavailable
from tests.helpers import (deliver, folder_flags, imap_client, load, request_message, running_worker,
                           shows, start_worker_process, wait_for_replies, wait_until, write_config)

BIKE = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
LIBRARY = "https://riversideledger.example/news/2026/11/library-launches-free-tutoring-for-teens/"
OURS = "republish@riversideledger.example"
pytestmark = [pytest.mark.integration, pytest.mark.every_mailbox]


@contextmanager
def sending_edges(config):
    """The edges a sending loop needs, as the wiring builds them, closed afterwards; one SMTP connection, so
    that the loop's transactions come in a known order."""
    config = replace(config, worker=replace(config.worker, smtp_connections=1))
    engine = make_engine(config.database_url)
    edges = build_edges(config, engine)
    try:
        yield edges
    finally:
        edges.source.close()
        edges.claims.close()
        engine.dispose()


def delivery_report(returned_message_id: str, *, report_id: str, action: str = "failed",
                    status: str = "5.1.1") -> bytes:
    """A multipart/report DSN, as Postfix sends it, returning the message with `returned_message_id`."""
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.valleynews.example>\r\n"
        f"To: {OURS}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <{report_id}>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n"
        f"--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        f"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.valleynews.example\r\n\r\n"
        f"Final-Recipient: rfc822; gone@valleynews.example\r\nAction: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <gone@valleynews.example>: mailbox unknown\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: {OURS}\r\nSubject: Re: republish\r\n"
        f"Message-ID: <{returned_message_id}>\r\n--b--\r\n"
    ).encode()


def test_the_same_message_twice_and_a_copy_in_another_folder_get_one_reply(pipeline):
    user, smtp = pipeline["user"], pipeline["smtp"]
    raw = request_message(body=BIKE, message_id="<twice@valleynews.example>")
    deliver(user, raw, raw)
    pipeline["run"]()
    assert len(smtp.messages) == 1
    assert [shows(user, flags, "done") for _, flags in folder_flags(user)] == [True, True]
    client = imap_client(user)
    client.create_folder("Archive")
    client.append("Archive", raw)
    client.logout()
    config = pipeline["config"]
    pipeline["run"](replace(config, imap=replace(config.imap, folder="Archive")))
    assert len(smtp.messages) == 1
    assert shows(user, folder_flags(user, "Archive")[0][1], "done")


def test_lost_flags_and_a_new_uidvalidity_repeat_nothing(pipeline):
    """The server rebuilt the folder: new UIDVALIDITY, new UIDs, no flags. The database still knows."""
    user, smtp = pipeline["user"], pipeline["smtp"]
    client = imap_client(user)
    client.create_folder("Desk")
    first = request_message(body=BIKE, message_id="<uv1@valleynews.example>")
    decoy = request_message(subject="Lunch?", message_id="<uv-decoy@valleynews.example>")
    client.append("Desk", first)
    client.append("Desk", decoy)
    old_validity = client.select_folder("Desk")[b"UIDVALIDITY"]
    client.logout()
    # A folder rebuilt under a live session is noticed when the folder is next selected afresh: at the
    # latest one IDLE renewal later (here 3 s).
    with running_worker(pipeline["config"], poll_seconds=1, imap={"folder": "Desk", "idle_renew_minutes": 0.05}) as thread:
        wait_for_replies(smtp, 1, 15)
        assert wait_until(lambda: shows(user, folder_flags(user, "Desk")[0][1], "done"), 10)
        client = imap_client(user)
        client.delete_folder("Desk")
        client.create_folder("Desk")
        client.logout()
        for raw in (decoy, first, request_message(body=LIBRARY, message_id="<uv2@valleynews.example>")):
            # Dovecot may answer an APPEND racing the worker's own session on the rebuilt folder with
            # "Mailbox was deleted under us": the rebuild is this test's doing, so it tries again, each time
            # on a new session (one that saw the folder go may keep saying so).
            assert wait_until(lambda: _appended(user, "Desk", raw), 10)
        client = imap_client(user)
        new_validity = client.select_folder("Desk")[b"UIDVALIDITY"]
        client.logout()
        assert new_validity != old_validity
        wait_for_replies(smtp, 2, 20)
        assert wait_until(lambda: all(shows(user, flags, "done") for mid, flags in folder_flags(user, "Desk")
                                      if "decoy" not in mid), 15)
        time.sleep(1.5)
        assert thread.is_alive()
    assert smtp.replies_by_request() == {"uv1@valleynews.example": 1, "uv2@valleynews.example": 1}


def test_a_second_worker_on_one_sqlite_database_refuses_to_start(tmp_path, sqlite_url):
    maildir = tmp_path / "mail"
    config = load(write_config(tmp_path, sqlite_url, maildir=maildir, outbox=tmp_path / "outbox"))
    worker, engine = build_worker(config)
    with pytest.raises(AnotherWorkerRunning, match="another worker is already running on this SQLite database"):
        build_worker(config)
    worker.close()
    again, engine_again = build_worker(config)  # free again once the first one stopped
    again.close()
    engine.dispose()
    engine_again.dispose()


def test_a_bounce_of_our_reply_marks_it_failed_and_goes_to_a_person(pipeline):
    user, smtp, sessions = pipeline["user"], pipeline["smtp"], pipeline["sessions"]
    deliver(user, request_message(body=BIKE, message_id="<bounced@valleynews.example>"))
    pipeline["run"]()
    reply_id = message_from_bytes(smtp.messages[0][2], policy=policy.default)["Message-ID"].strip("<>")
    deliver(user,
            delivery_report(reply_id, report_id="dsn1@mx.valleynews.example"),
            delivery_report("someone-else@other.example", report_id="dsn2@mx.valleynews.example"),
            delivery_report(reply_id, report_id="dsn3@mx.valleynews.example", action="delayed", status="4.4.1"))
    pipeline["run"]()
    assert len(smtp.messages) == 1  # never an answer to a report
    flags = dict(folder_flags(user))
    assert shows(user, flags["<dsn1@mx.valleynews.example>"], "person")
    assert flags["<dsn2@mx.valleynews.example>"] == set()  # not about our mail: untouched
    assert shows(user, flags["<dsn3@mx.valleynews.example>"], "ignored")  # a delay is only logged
    with sessions() as session:
        outbox = session.scalars(select(OutboxMessage)).one()
        assert outbox.status == "bounced" and "mailbox unknown" in outbox.last_error
        request = session.scalars(select(Request).where(Request.message_key == "bounced@valleynews.example")).one()
        assert request.needs_person and "the reply bounced" in request.reason
        report = session.scalars(select(Request).where(Request.message_key == "dsn1@mx.valleynews.example")).one()
        assert report.outcome == "ignored" and report.needs_person and "delivery failure report" in report.reason


LOOP_CASES = {
    "auto-submitted": {"headers": {"Auto-Submitted": "auto-replied"}},
    "precedence-bulk": {"headers": {"Precedence": "bulk"}},
    "precedence-junk": {"headers": {"Precedence": "junk"}},
    "precedence-list": {"headers": {"Precedence": "list"}},
    "list-id": {"headers": {"List-Id": "Partners <partners.lists.example>"}},
    "list-unsubscribe": {"headers": {"List-Unsubscribe": "<mailto:leave@lists.example>"}},
    "empty-return-path": {"headers": {"Return-Path": "<>"}},
    "mailer-daemon": {"sender": "MAILER-DAEMON@mx.valleynews.example"},
    "postmaster": {"sender": "postmaster@valleynews.example"},
    "no-reply": {"sender": "Valley News <no-reply@valleynews.example>"},
    "our-own-address": {"sender": f"Desk <{OURS}>"},
    "our-x-loop": {"headers": {"X-Loop": OURS}},
    "x-autoreply": {"headers": {"X-Autoreply": "yes"}},
    "x-autorespond": {"headers": {"X-Autorespond": "vacation"}},
    "x-auto-response-suppress": {"headers": {"X-Auto-Response-Suppress": "All"}},
}


def test_automated_mail_is_never_answered_and_the_rule_is_logged(pipeline):
    user, smtp, sessions = pipeline["user"], pipeline["smtp"], pipeline["sessions"]
    messages = [request_message(body=f"Running {BIKE}", message_id=f"<{name}@valleynews.example>", **case)
                for name, case in LOOP_CASES.items()]
    report = delivery_report("x@elsewhere.example", report_id="report@valleynews.example").replace(
        b"Subject: Undelivered Mail Returned to Sender", b"Subject: republish").replace(
        b"MAILER-DAEMON@mx.valleynews.example", b"desk@valleynews.example").replace(b"Auto-Submitted: auto-replied\r\n", b"")
    deliver(user, *messages, report)
    pipeline["run"]()
    assert smtp.messages == []
    with sessions() as session:
        reasons = dict(session.execute(select(Request.message_key, Request.reason)).all())
        outcomes = set(session.scalars(select(Request.outcome)))
    assert outcomes == {"ignored"} and len(reasons) == len(LOOP_CASES) + 1
    assert "multipart/report" in reasons["report@valleynews.example"]
    assert "X-Auto-Response-Suppress" in reasons["x-auto-response-suppress@valleynews.example"]
    assert "X-Loop" in reasons["our-x-loop@valleynews.example"]
    assert all(shows(user, flags, "ignored") and b"\\Seen" not in flags for _, flags in folder_flags(user))


def test_a_sender_gets_at_most_the_daily_number_of_replies(pipeline):
    user, smtp, sessions = pipeline["user"], pipeline["smtp"], pipeline["sessions"]
    config = pipeline["config"]
    capped = replace(config, worker=replace(config.worker, max_replies_per_sender_per_day=3))
    deliver(user, *(request_message(body=BIKE, message_id=f"<cap{i}@valleynews.example>") for i in range(5)))
    pipeline["run"](capped)
    assert len(smtp.messages) == 3
    with sessions() as session:
        flagged = session.scalars(select(Request.reason).where(Request.needs_person)).all()
    assert len(flagged) == 2 and all("limit 3" in reason for reason in flagged)


def test_a_request_naming_too_many_stories_is_answered_for_the_first_and_flagged(pipeline):
    user, smtp, sessions = pipeline["user"], pipeline["smtp"], pipeline["sessions"]
    config = pipeline["config"]
    one_story = replace(config, worker=replace(config.worker, max_stories_per_request=1))
    deliver(user, request_message(body=f"{BIKE}\n{LIBRARY}", message_id="<many@valleynews.example>"))
    pipeline["run"](one_story)
    text = message_from_bytes(smtp.messages[0][2], policy=policy.default).get_body(("plain",)).get_content()
    assert "Council approves" in text and "Library launches" not in text
    assert shows(user, dict(folder_flags(user))["<many@valleynews.example>"], "person")
    with sessions() as session:
        assert "names 2 stories: answered the first 1" in session.scalars(select(Request.reason)).one()


def test_idle_is_renewed_before_the_server_drops_it(pipeline):
    source = ImapSource(pipeline["config"].imap, idle_renew_seconds=1.0)
    assert list(source.batches(10, 10_000_000)) == []  # searched: nothing new, so the wait goes into IDLE
    started = time.monotonic()
    source.wait(3600, threading.Event())  # without renewal this would sit in one IDLE for an hour
    elapsed = time.monotonic() - started
    source.close()
    assert 0.9 <= elapsed < 10


def test_a_missing_folder_is_logged_once_and_retried_until_it_exists(pipeline, caplog):
    user, smtp = pipeline["user"], pipeline["smtp"]
    caplog.set_level(logging.WARNING, logger="processor")
    with running_worker(pipeline["config"], poll_seconds=1, imap={"folder": "Later"}) as thread:
        time.sleep(3.5)  # reconnect attempts after 0.5, 1 and 2 s
        client = imap_client(user)
        client.create_folder("Later")
        client.append("Later", request_message(body=BIKE, message_id="<later@valleynews.example>"))
        client.logout()
        wait_for_replies(smtp, 1, 15)
        assert thread.is_alive()
    assert smtp.replies_by_request() == {"later@valleynews.example": 1}
    missing = [r for r in caplog.records if "cannot open IMAP folder 'Later'" in r.getMessage()]
    assert len(missing) == 1, [r.getMessage() for r in caplog.records]
    assert any("working again" in r.getMessage() for r in caplog.records)


# How the process stops and what it logs: the same on every server, and the slowest test here.
@pytest.mark.every_mailbox(but=("exchange", "gmail", "no_sent"))
def test_sigterm_finishes_and_exits_0_and_no_password_reaches_the_log(pipeline, tmp_path):
    user, smtp = pipeline["user"], pipeline["smtp"]
    worker = start_worker_process(pipeline["path"], pipeline["env"], "-v", "run")
    try:
        deliver(user, request_message(body=BIKE, message_id="<term@valleynews.example>"))
        wait_for_replies(smtp, 1, 30)
        assert smtp.replies_by_request() == {"term@valleynews.example": 1}
        if pipeline["config"].database_url.startswith("sqlite"):
            second = start_worker_process(pipeline["path"], pipeline["env"], "run", "--once")
            _, second_err = second.communicate(timeout=30)
            assert second.returncode == 1 and b"another worker is already running" in second_err
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err.decode()[-2000:]
    assert b"finishing the message in hand" in err
    # A wrong password: retried and logged, never printed.
    wrong = {"TEST_IMAP_PASSWORD": "Wr0ng-S3cret-Value"}
    failing = start_worker_process(pipeline["path"], wrong, "-v", "run")
    time.sleep(6)  # Dovecot answers a failed login after a delay of its own: about two attempts
    failing.send_signal(signal.SIGTERM)
    _, failing_err = failing.communicate(timeout=30)
    assert failing.returncode == 0
    attempts = [line for line in failing_err.splitlines() if b"login refused" in line]
    assert len(attempts) >= 2 and sum(b" WARNING " in line for line in attempts) == 1, failing_err.decode()[-2000:]
    for log_text in (err, failing_err):
        assert user["password"].encode() not in log_text and b"Wr0ng-S3cret-Value" not in log_text


def test_an_oversized_message_is_not_downloaded_and_goes_to_a_person_once(pipeline):
    user, smtp, sessions = pipeline["user"], pipeline["smtp"], pipeline["sessions"]
    config = pipeline["config"]
    small_limit = replace(config, worker=replace(config.worker, max_message_bytes=20_000))
    deliver(user, request_message(body=BIKE + "\n" + "x" * 60_000, message_id="<huge@valleynews.example>"),
            request_message(body=BIKE, message_id="<small@valleynews.example>"))
    pipeline["run"](small_limit)
    pipeline["run"](small_limit)  # a second pass finds it recorded, by its Message-ID
    assert smtp.replies_by_request() == {"small@valleynews.example": 1}
    assert shows(user, dict(folder_flags(user))["<huge@valleynews.example>"], "person")
    with sessions() as session:
        huge = session.scalars(select(Request).where(Request.message_key == "huge@valleynews.example")).one()
    assert huge.outcome == "needs_person" and "over the 20000-byte limit: not downloaded" in huge.reason


def test_a_connection_lost_after_the_reply_was_handed_over_is_never_resent(pipeline):
    """The server kept the reply but its "250 OK" never arrived: sending again could deliver it twice."""
    user, smtp, sessions = pipeline["user"], pipeline["smtp"], pipeline["sessions"]
    config = pipeline["config"]
    impatient = replace(config, smtp=replace(config.smtp, timeout=1.0))
    smtp.stall_after_accepting = 3.0
    deliver(user, request_message(body=BIKE, message_id="<stall@valleynews.example>"))
    pipeline["run"](impatient)
    smtp.stall_after_accepting = 0.0
    with sessions() as session:  # settled at once: never scheduled for a retry, so no wait can make it due
        assert session.scalars(select(OutboxMessage.status)).one() == "unknown"
    pipeline["run"](impatient)
    assert smtp.replies_by_request() == {"stall@valleynews.example": 1}
    with sessions() as session:
        outbox = session.scalars(select(OutboxMessage)).one()
        assert outbox.status == "unknown" and "may or may not have reached" in outbox.last_error
    assert shows(user, dict(folder_flags(user))["<stall@valleynews.example>"], "person")


def test_replies_left_in_flight_by_a_stopped_worker_and_one_past_retrying(pipeline):
    """A reply a stopped worker left "handed_over" (its final "." on the way) goes to a person; one left
    "sending" never reached the server and is sent; one still waiting after retry_give_up_hours is not."""
    user, smtp, sessions = pipeline["user"], pipeline["smtp"], pipeline["sessions"]
    deliver(user, *(request_message(sender=f"desk@outlet{i}.example", body=BIKE, message_id=f"<stale{i}@x.example>")
                    for i in range(4)))
    config = pipeline["config"]
    # No copies in Sent: a worker stopped inside the SMTP transaction had not saved one (a copy there would
    # prove the reply went out, and it would be recorded sent: tests/test_reply_doubts.py).
    pipeline["run"](replace(config, imap=replace(config.imap, save_sent="never")))
    assert len(smtp.messages) == 4
    now = datetime.now(timezone.utc)
    with sessions() as session:
        ids = {request.message_key: request.replies[0].id for request in session.scalars(select(Request))}
        session.execute(update(OutboxMessage).where(OutboxMessage.id == ids["stale0@x.example"])
                        .values(status="handed_over"))
        session.execute(update(OutboxMessage).where(OutboxMessage.id == ids["stale1@x.example"])
                        .values(status="pending", next_attempt_at=now - timedelta(minutes=1),
                                created_at=now - timedelta(hours=49), last_error="451 try later"))
        session.execute(update(OutboxMessage).where(OutboxMessage.id == ids["stale2@x.example"])
                        .values(status="pending", next_attempt_at=now - timedelta(minutes=1)))
        session.execute(update(OutboxMessage).where(OutboxMessage.id == ids["stale3@x.example"])
                        .values(status="sending"))
        session.commit()
    pipeline["run"]()
    # sent (again: the test put them back) only the one pending within its time and the one left "sending"
    assert len(smtp.messages) == 6
    assert sorted(recipients[0] for _, recipients, _ in smtp.messages[4:]) == ["desk@outlet2.example",
                                                                              "desk@outlet3.example"]
    with sessions() as session:
        rows = {request.message_key: (request.replies[0].status, request.replies[0].last_error, request.outcome)
                for request in session.scalars(select(Request))}
    assert rows["stale0@x.example"][0] == "unknown" and "worker stopped" in rows["stale0@x.example"][1]
    assert rows["stale1@x.example"][0] == "failed" and "within 48 hours (last error: 451" in rows["stale1@x.example"][1]
    assert rows["stale0@x.example"][2] == rows["stale1@x.example"][2] == "needs_person"
    assert rows["stale2@x.example"][0] == rows["stale3@x.example"][0] == "sent"
    assert rows["stale2@x.example"][2] == rows["stale3@x.example"][2] == "answered"


def test_a_reply_settled_by_someone_else_is_not_sent_again(pipeline):
    """Sending looks at each reply's state when it claims it: one sent meanwhile (by another worker, or the
    desk) is left alone, one due again is sent."""
    user, smtp, sessions = pipeline["user"], pipeline["smtp"], pipeline["sessions"]
    deliver(user, *(request_message(sender=f"desk@outlet{i}.example", body=BIKE, message_id=f"<mem{i}@x.example>")
                    for i in range(2)))
    pipeline["run"]()
    assert len(smtp.messages) == 2
    with sessions() as session:
        rows = {request.message_key: request.replies[0].id for request in session.scalars(select(Request))}
        again, settled = rows["mem0@x.example"], rows["mem1@x.example"]
        session.execute(update(OutboxMessage).where(OutboxMessage.id == again).values(status="pending"))
        session.commit()
    with sending_edges(pipeline["config"]) as edges:
        sent = Sending(edges).send_due(only=[again, settled])
    assert len(sent) == 1 and len(smtp.messages) == 3
    with sessions() as session:
        attempts = dict(session.execute(select(OutboxMessage.id, OutboxMessage.attempts)).all())
    assert attempts == {again: 2, settled: 1}


def _due_again(sessions) -> list[int]:
    """Every reply back to pending and due: as if the server had asked to try again later."""
    with sessions() as session:
        ids = session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id)).all()
        session.execute(update(OutboxMessage).values(status="pending", next_attempt_at=datetime.now(timezone.utc)))
        session.commit()
    return list(ids)


def _failing_commits(sessions, failing: set[int], error: Exception):
    """A session factory whose n-th sessions (counted from 1) fail to commit."""
    opened = [0]

    def factory():
        opened[0] += 1
        session = sessions()
        if opened[0] in failing:
            session.commit = lambda: (_ for _ in ()).throw(error)
        return session

    return factory


def test_each_reply_costs_two_commits_its_hand_over_and_one_that_records_it_and_claims_the_next(pipeline):
    """Between two SMTP transactions a connection commits once: what the server said about its reply and the
    claim of its next one together, so that never more than one reply per connection is in flight; inside
    one, "handed_over" is committed before the final "." that makes the server keep the reply."""
    user, sessions = pipeline["user"], pipeline["sessions"]
    deliver(user, *(request_message(sender=f"desk@outlet{i}.example", body=BIKE, message_id=f"<one{i}@x.example>")
                    for i in range(3)))
    pipeline["run"]()
    _due_again(sessions)
    after_each_commit: list[list[str]] = []

    def observed():
        session = sessions()
        commit = session.commit

        def commit_and_look():
            commit()
            with sessions() as look:
                after_each_commit.append(list(look.scalars(select(OutboxMessage.status).order_by(OutboxMessage.id))))

        session.commit = commit_and_look
        return session

    with sending_edges(pipeline["config"]) as edges:
        edges.sessions = observed
        assert len(Sending(edges).send_due()) == 3
    assert after_each_commit == [["sending", "pending", "pending"], ["handed_over", "pending", "pending"],
                                 ["sent", "sending", "pending"], ["sent", "handed_over", "pending"],
                                 ["sent", "sent", "sending"], ["sent", "sent", "handed_over"],
                                 ["sent", "sent", "sent"]]


def test_a_claim_whose_commit_fails_is_given_back(pipeline):
    """Kept, the claim would stop this worker from ever sending that reply (it would take it for another
    worker's)."""
    user, smtp, sessions = pipeline["user"], pipeline["smtp"], pipeline["sessions"]
    deliver(user, request_message(body=BIKE, message_id="<claim@valleynews.example>"))
    pipeline["run"]()
    _due_again(sessions)
    with sending_edges(pipeline["config"]) as edges:
        working = edges.sessions
        edges.sessions = _failing_commits(working, {1}, RuntimeError("commit failed"))
        sending = Sending(edges)
        with pytest.raises(RuntimeError):
            sending.send_due()
        edges.sessions = working
        assert len(sending.send_due()) == 1  # found again as due, and sent
    assert len(smtp.messages) == 2


def test_a_reply_accepted_while_the_database_was_away_is_recorded_as_sent(pipeline):
    """The server took the reply, then "sent" could not be committed: the next attempt records it as sent,
    rather than flagging it as maybe delivered or sending it again."""
    user, smtp, sessions = pipeline["user"], pipeline["smtp"], pipeline["sessions"]
    deliver(user, request_message(body=BIKE, message_id="<away@valleynews.example>"))
    pipeline["run"]()
    outbox_id, = _due_again(sessions)
    lost = OperationalError("UPDATE outbox", {}, Exception("server closed the connection unexpectedly"))
    with sending_edges(pipeline["config"]) as edges:
        working = edges.sessions
        # 1: the claim, 2: "handed_over", 3: recording what the server said
        edges.sessions = _failing_commits(working, {3}, lost)
        sending = Sending(edges)
        with pytest.raises(DatabaseUnavailable):
            sending.send_due()
        assert len(smtp.messages) == 2
        with sessions() as session:
            assert session.get(OutboxMessage, outbox_id).status == "handed_over"
        edges.sessions = working
        assert sending.send_due() == []
    assert len(smtp.messages) == 2
    with sessions() as session:
        row = session.get(OutboxMessage, outbox_id)
        assert (row.status, row.request.outcome, row.request.needs_person) == ("sent", "answered", False)


def test_a_sent_folder_that_refuses_the_copy_does_not_stop_the_batch(pipeline, caplog):
    user, smtp = pipeline["user"], pipeline["smtp"]
    config = pipeline["config"]
    broken_sent = replace(config, imap=replace(config.imap, sent_folder="NoSuchFolder"),
                          worker=replace(config.worker, batch_size=1))
    deliver(user, *(request_message(sender=f"desk@outlet{i}.example", body=BIKE, message_id=f"<sent{i}@x.example>")
                    for i in range(3)))
    caplog.set_level(logging.WARNING, logger="processor")
    stats = pipeline["run"](broken_sent)
    assert stats.replies_sent == 3 and len(smtp.messages) == 3
    assert all(shows(user, flags, "done") for _, flags in folder_flags(user))
    # Copies go to Sent a settled round at a time: one warning may name several replies, none is left out.
    warnings = " ".join(r.getMessage() for r in caplog.records if "not saved to Sent" in r.getMessage())
    with pipeline["sessions"]() as session:
        reply_ids = session.scalars(select(OutboxMessage.message_id)).all()
    assert len(reply_ids) == 3 and all(reply_id in warnings for reply_id in reply_ids)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_an_outlet_inserted_by_another_worker_meanwhile_does_not_cost_the_reply(pipeline):
    """Two workers, two requests from a new outlet at once: the second insert of the outlet loses the race."""
    user, smtp, sessions = pipeline["user"], pipeline["smtp"], pipeline["sessions"]
    from datetime import datetime, timezone

    from models import Outlet

    deliver(user, request_message(sender="Ana <ana@brandnew.example>", body=BIKE, message_id="<race@brandnew.example>"))
    other = sessions()
    other.add(Outlet(key="brandnew.example", display_name="", created_at=datetime.now(timezone.utc)))
    other.flush()  # inserted, not committed: the worker's own insert of this outlet waits for this transaction
    timer = threading.Timer(1.5, other.commit)
    timer.start()
    try:
        pipeline["run"]()
    finally:
        timer.join()
        other.close()
    assert smtp.replies_by_request() == {"race@brandnew.example": 1}
    with sessions() as session:
        assert session.scalars(select(Request.outcome)).one() == "answered"


def test_a_request_arriving_while_the_worker_is_busy_is_answered_without_waiting_for_the_poll(pipeline):
    """Its EXISTS notice comes with the answer to some other command, not during IDLE: it must not be missed."""
    user, smtp = pipeline["user"], pipeline["smtp"]
    smtp.delay = 1.0  # the first reply keeps the worker busy for a second
    with running_worker(pipeline["config"], poll_seconds=300):
        deliver(user, request_message(body=BIKE, message_id="<busy1@valleynews.example>"))
        assert wait_until(lambda: _replies_sending(pipeline["sessions"]), 15)  # busy inside the first SMTP transaction
        deliver(user, request_message(sender="desk@harborgazette.example", body=BIKE,
                                      message_id="<busy2@harborgazette.example>"))
        wait_for_replies(smtp, 2, 15)
    assert smtp.replies_by_request() == {"busy1@valleynews.example": 1, "busy2@harborgazette.example": 1}


@pytest.mark.every_mailbox(but=("exchange",))  # marks a server keeps no keywords for show nothing to wait on
def test_mail_that_arrives_after_the_first_marks_is_marked_too(pipeline):
    """Marks go out on a connection of their own, opened with the first marks: a message delivered later must
    not be skipped by it (a STORE on a view that has not seen the message yet changes nothing)."""
    user, smtp = pipeline["user"], pipeline["smtp"]
    with running_worker(pipeline["config"], poll_seconds=300):
        deliver(user, request_message(body=BIKE, message_id="<first@valleynews.example>"))
        wait_until(lambda: shows(user, dict(folder_flags(user)).get("<first@valleynews.example>", set()), "done"), 15)
        deliver(user, request_message(sender="desk@harborgazette.example", body=BIKE,
                                      message_id="<later@harborgazette.example>"))
        wait_until(lambda: shows(user, dict(folder_flags(user)).get("<later@harborgazette.example>", set()), "done"),
                   15)
    assert len(smtp.messages) == 2
    assert all(shows(user, flags, "done") for _, flags in folder_flags(user))


def _appended(user, folder: str, raw: bytes) -> bool:
    client = imap_client(user)
    try:
        client.append(folder, raw)
        return True
    except imaplib.IMAP4.error as exc:
        if "deleted under us" not in str(exc):
            raise
        return False
    finally:
        client.logout()


def _replies_sending(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.status.in_(("sending", "handed_over"))))
