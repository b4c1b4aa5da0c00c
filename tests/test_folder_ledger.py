"""The folder ledger: a pass asks the server only for what is new since the last one, and for the few
messages it left waiting, whether or not the server keeps our keywords."""

from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, update

from models import FolderLedger, OutboxMessage
from processor.records import ledger
from tests.helpers import deliver, imap_client, request_message

BIKE = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
LIBRARY = "https://riversideledger.example/news/2026/11/library-launches-free-tutoring-for-teens/"
NOW = datetime(2026, 12, 6, tzinfo=timezone.utc)


def _forget_keywords(user) -> None:
    """What a server that keeps no keywords looks like to the next pass: nothing marks the handled mail."""
    client = imap_client(user)
    client.select_folder("INBOX")
    client.remove_flags(client.search("ALL"), [b"$RepublishDone", b"$RepublishPerson", b"$RepublishIgnored"])
    client.logout()


def _requests(prefix: str, count: int) -> list[bytes]:
    return [request_message(sender=f"desk@{prefix}{n}.example", body=BIKE, message_id=f"<{prefix}{n}@x.example>")
            for n in range(count)]


def test_a_pass_downloads_only_what_is_new_when_nothing_is_marked(pipeline):
    user, smtp = pipeline["user"], pipeline["smtp"]
    deliver(user, *_requests("old", 5))
    assert pipeline["run"]().seen == 5 and len(smtp.messages) == 5
    _forget_keywords(user)
    deliver(user, *_requests("new", 1))
    second = pipeline["run"]()
    assert (second.seen, second.replies_sent) == (1, 1)  # without the ledger: all 6 again
    assert pipeline["run"]().seen == 0


def test_a_message_whose_reply_is_still_to_send_is_looked_at_again_until_it_is_done(pipeline):
    user, smtp = pipeline["user"], pipeline["smtp"]
    deliver(user, *_requests("wait", 2))
    smtp.refuse("451 4.3.0 try again later", "451 4.3.0 try again later")
    first = pipeline["run"]()
    assert (first.seen, first.replies_sent, smtp.scripted) == (2, 0, [])
    _forget_keywords(user)
    with pipeline["sessions"]() as session:
        assert ledger.load(session, f"imap://{user['username']}@{user['host']}/INBOX").waiting  # both wait
    with pipeline["sessions"]() as session:  # the retry is due now
        session.execute(update(OutboxMessage).values(next_attempt_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
        session.commit()
    second = pipeline["run"]()
    assert second.replies_sent == 2 and second.seen == 2  # looked at again: their marks were still to make
    assert pipeline["run"]().seen == 0


def test_a_lost_ledger_costs_one_full_search_and_never_a_second_reply(pipeline):
    user, smtp = pipeline["user"], pipeline["smtp"]
    deliver(user, *_requests("lost", 3))
    pipeline["run"]()
    _forget_keywords(user)
    with pipeline["sessions"]() as session:
        session.execute(delete(FolderLedger))
        session.commit()
    again = pipeline["run"]()
    assert (again.seen, again.replies_sent, len(smtp.messages)) == (3, 0, 3)
    assert pipeline["run"]().seen == 0


def test_two_workers_merging_their_positions_never_skip_a_waiting_message(sqlite_url):
    from processor.records import db

    engine = db.make_engine(sqlite_url)
    db.upgrade(engine)
    sessions = db.make_session_factory(engine)
    with sessions() as session:
        # Worker A searched up to 100 and left 50 waiting; worker B searched up to 105 and left 50 and 101.
        ledger.save(session, "m", ledger.Position(7, 105, frozenset({50, 101})), frozenset(), NOW)
        merged = ledger.save(session, "m", ledger.Position(7, 100, frozenset({50})), frozenset({60, 70}), NOW)
        assert merged == ledger.Position(7, 105, frozenset({50, 101}))
        # A later pass found 101 finished: it stops waiting; the mark never moves down.
        merged = ledger.save(session, "m", ledger.Position(7, 103, frozenset()), frozenset({50, 101}), NOW)
        assert merged == ledger.Position(7, 105, frozenset())
        # A renumbered folder starts over.
        assert ledger.save(session, "m", ledger.Position(8, 3, frozenset({1})), frozenset(), NOW) == \
            ledger.Position(8, 3, frozenset({1}))
        session.commit()
        assert ledger.load(session, "m") == ledger.Position(8, 3, frozenset({1}))
    engine.dispose()
