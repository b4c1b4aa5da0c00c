"""The counts kept beside the pickups (processor/records/pickup_counts.py) stay equal to counting the pickups
afresh, through every change: the worker recording requests (new pickups, repeats, an older request
moving a pickup to an earlier week), pixel views, a merge of two outlets, a grant and a decline from the
review queue, two transactions at once, and the migration that counts an existing log; on SQLite and
PostgreSQL. The dashboard's figures read from them equal the aggregates over the pickups."""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from sqlalchemy import Boolean, column, exists, func, select, table

from models import Decision, Outlet, Pickup, PickupWeek, PixelHit, Request, Story
from models.base import UTCDateTime
from processor.records import db
from processor.desk.outlets import merge
from processor.records.pickup_counts import recount
from processor.desk.review import resolve
from processor.records.pickups import pickups_for
from processor.records.requests import NewRows, RequestRef
from processor.desk.web import queries
from processor.desk.web.hits import Hit, write_hits
from tests.conftest import SAMPLES
from processor.app import run_once
from tests.helpers import import_pages, load, request_message, write_config

BIKE = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
LIBRARY = "https://riversideledger.example/news/2026/11/library-launches-free-tutoring-for-teens/"
WIRE = "https://riversideledger.example/news/2026/11/israel-and-japan-sign-new-defense-agreement/"


def fresh(session) -> dict:
    """The counts, from the pickups and pixel hits themselves."""
    viewed = set(session.scalars(select(PixelHit.pickup_id).where(PixelHit.counted.is_(True),
                                                                  PixelHit.pickup_id.is_not(None))))
    weeks, unviewed, outlets, stories = Counter(), Counter(), Counter(), Counter()
    for pickup in session.scalars(select(Pickup)):
        day = pickup.first_requested_at.astimezone(timezone.utc).date()
        key = (day - timedelta(days=day.weekday()), pickup.decision)
        weeks[key] += 1
        unviewed[key] += pickup.id not in viewed
        outlets[pickup.outlet_id] += 1
        stories[pickup.story_id] += 1
    return {"weeks": {key: (n, unviewed[key]) for key, n in weeks.items()}, "outlets": dict(outlets),
            "stories": dict(stories), "viewed": viewed}


def kept(session) -> dict:
    session.expire_all()
    return {"weeks": {(w.week, w.decision): (w.pickups, w.unviewed) for w in session.scalars(select(PickupWeek))
                      if w.pickups or w.unviewed},
            "outlets": {o.id: o.pickup_count for o in session.scalars(select(Outlet)) if o.pickup_count},
            "stories": {s.id: s.pickup_count for s in session.scalars(select(Story)) if s.pickup_count},
            "viewed": set(session.scalars(select(Pickup.id).where(Pickup.viewed.is_(True))))}


def assert_counts_right(sessions) -> dict:
    with sessions() as session:
        expected = fresh(session)
        assert kept(session) == expected
    return expected


@pytest.fixture
def log(tmp_path, database_url):
    """A migrated database with the demo's three stories (one from a wire service), and a worker on a Maildir."""
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    config = load(write_config(tmp_path, database_url, maildir=maildir, outbox=tmp_path / "outbox"))
    engine = db.make_engine(config.database_url)
    db.upgrade(engine)
    sessions = db.make_session_factory(engine)
    import_pages(sessions, config.publication, sorted(SAMPLES.glob("*.html")))

    def run(*messages: bytes) -> None:
        for number, raw in enumerate(messages):
            (maildir / "new" / f"{time.time()}-{number}.eml").write_bytes(raw)
        run_once(config)

    yield {"config": config, "engine": engine, "sessions": sessions, "run": run}
    engine.dispose()


def _pickup(session, outlet: str, url: str) -> Pickup:
    return session.scalars(select(Pickup).join(Outlet, Pickup.outlet_id == Outlet.id).join(
        Story, Pickup.story_id == Story.id).where(Outlet.key == outlet, Story.canonical_url == url)).one()


def _hit(token: str, *, counted: bool = True) -> Hit:
    return Hit(token=token, story_id=None, hit_at=datetime.now(timezone.utc), page_url="https://x.example/a/",
               page_host="x.example", counted=counted, reason="" if counted else "bot")


def test_counts_follow_every_change_to_the_pickups(log):
    run, sessions = log["run"], log["sessions"]
    run(request_message(body=f"May we? {BIKE} {LIBRARY}"),
        request_message(sender="Ed <ed@harbor.example>", body=f"These two: {BIKE} {WIRE}",
                        message_id="<h1@harbor.example>"))
    assert assert_counts_right(sessions)["weeks"]
    # An old request for a story already picked up: the pickup moves to the week of that request.
    run(request_message(body=f"From our archive: {BIKE}", message_id="<old@valleynews.example>",
                        age=timedelta(days=60)))
    with sessions() as session:
        moved = _pickup(session, "valleynews.example", BIKE).first_requested_at
        assert moved < datetime.now(timezone.utc) - timedelta(days=59)
    assert_counts_right(sessions)

    run(request_message(sender="Priya <priya@valley-news.example>", body=f"Also {LIBRARY} {WIRE}",
                        message_id="<v2@valley-news.example>"))
    with sessions() as session:
        tokens = {name: _pickup(session, outlet, url).token for name, outlet, url in (
            ("bike", "valleynews.example", BIKE), ("library2", "valley-news.example", LIBRARY),
            ("harbor", "harbor.example", BIKE))}
        write_hits(session, [_hit(tokens["bike"]), _hit(tokens["bike"]), _hit(tokens["library2"]),
                             _hit(tokens["harbor"], counted=False), _hit("no-such-token")])
        session.commit()
    assert len(assert_counts_right(sessions)["viewed"]) == 2
    with sessions() as session:  # a second view changes nothing
        write_hits(session, [_hit(tokens["bike"])])
        session.commit()
    assert_counts_right(sessions)
    # A viewed pickup moved to an earlier week again: it stays out of the "unviewed" counts.
    run(request_message(body=f"Even earlier: {BIKE}", message_id="<older@valleynews.example>",
                        age=timedelta(days=120)))
    assert_counts_right(sessions)

    with sessions() as session:  # library is combined with the target's own (carrying its view), wire moved
        merge(session, "valley-news.example", "valleynews.example")
        session.commit()
    counts = assert_counts_right(sessions)
    with sessions() as session:
        assert _pickup(session, "valleynews.example", LIBRARY).id in counts["viewed"]
        assert session.scalars(select(Outlet).where(Outlet.key == "valley-news.example")).one().pickup_count == 0

    run(request_message(sender="Lu <lu@lake.example>", body="Can we run your piece about the park?",
                        message_id="<l1@lake.example>"),
        request_message(sender="Ed <ed@harbor.example>", body="Can we run the one about the park?",
                        message_id="<h2@harbor.example>"))
    with sessions() as session:
        flagged = dict(session.execute(select(Request.message_id, Request.id)
                                       .where(Request.needs_person.is_(True))).all())
        for message_id, action in (("l1@lake.example", "grant"), ("h2@harbor.example", "decline")):
            resolve(session, flagged[message_id], action, editor="maria", config=log["config"],
                    now=datetime.now(timezone.utc), story_refs=(BIKE,))
        session.commit()
        assert _pickup(session, "harbor.example", BIKE).decision == Decision.DECLINED
    assert_counts_right(sessions)
    with sessions() as session:
        before = kept(session)
        recount(session)
        session.commit()
        assert kept(session) == before


def test_the_overview_figures_equal_aggregates_over_the_pickups(log):
    """The counts read as the dashboard shows them, against the same figures counted over every pickup."""
    run, sessions = log["run"], log["sessions"]
    run(request_message(body=f"May we? {BIKE} {LIBRARY}"),
        request_message(sender="Ed <ed@harbor.example>", body=f"These two: {BIKE} {WIRE}",
                        message_id="<h1@harbor.example>"),
        request_message(sender="Lu <lu@lake.example>", body=f"This one: {WIRE}", message_id="<l1@lake.example>",
                        age=timedelta(days=40)),
        request_message(sender="Mo <mo@mountain.example>", body=f"This one: {LIBRARY}",
                        message_id="<m1@mountain.example>", age=timedelta(days=3)))
    with sessions() as session:
        write_hits(session, [_hit(_pickup(session, "valleynews.example", BIKE).token)])
        session.commit()
    now = datetime.now(timezone.utc)
    with sessions() as session:
        totals = queries.totals(session)
        assert (totals.pickups, totals.granted, totals.declined, totals.outlets) == (
            6, session.scalar(select(func.count()).where(Pickup.decision == Decision.GRANTED)),
            session.scalar(select(func.count()).where(Pickup.decision == Decision.DECLINED)),
            session.scalar(select(func.count(Pickup.outlet_id.distinct()))))
        assert totals.granted == 4
        per_week = Counter(week for (week, _), (n, _) in fresh(session)["weeks"].items() for _ in range(n))
        assert {week: n for week, n in queries.pickups_per_week(session, weeks=26, today=now.date()) if n} == per_week
        assert len(per_week) >= 2
        for top, column in ((queries.top_stories, Pickup.story_id), (queries.top_outlets, Pickup.outlet_id)):
            ranked = session.execute(select(column, func.count()).group_by(column)
                                     .order_by(func.count().desc(), column).limit(3)).all()
            assert [(r.id, r.count) for r in top(session, limit=3)] == [tuple(row) for row in ranked]
        assert [r.count for r in queries.top_outlets(session)] == [2, 2, 1, 1]
        no_view = ~exists().where(PixelHit.pickup_id == Pickup.id, PixelHit.counted.is_(True))
        missing_total, missing_rows = queries.pixel_missing(session, now)
        assert missing_total == session.scalar(select(func.count()).select_from(Pickup).where(
            Pickup.decision == Decision.GRANTED, Pickup.first_requested_at < now - queries.PIXEL_GRACE, no_view)) == 1
        assert [r.outlet for r in missing_rows] == ["mountain.example"]
        assert queries.log_total(session, queries.LogFilter()) == 6
        assert queries.log_total(session, queries.LogFilter(decision="declined")) == 2
        assert queries.log_total(session, queries.LogFilter(outlet="harbor.example", decision="declined")) == 1


def _record(sessions, pickup_id: int, when: datetime, decision: Decision, ready: threading.Event | None = None):
    """A repeat request for an existing pickup, recorded the way the worker records one."""
    with sessions() as session:
        outlet_id, story_id = session.execute(select(Pickup.outlet_id, Pickup.story_id)
                                              .where(Pickup.id == pickup_id)).one()
        request = Request(message_key=secrets.token_hex(8), processed_at=when, sent_at=when, outcome="answered")
        session.add(request)
        session.flush()
        rows = NewRows(pickups_for(session, [(outlet_id, story_id)]))
        rows.add_pickups(RequestRef(None, request.id), outlet_id, [(story_id, decision, "test")], when=when,
                         new_token=lambda: secrets.token_hex(8))
        rows.write(session)
        if ready is not None:
            ready.set()
            time.sleep(0.5)  # the other transaction is waiting for this pickup meanwhile
        session.commit()


def test_two_transactions_changing_one_pickup_count_it_once(log):
    """Each reads the pickup as the other left it: a repeat request waits for the pickup's row, and of two
    first views at once only one leaves the "unviewed" count."""
    run, sessions = log["run"], log["sessions"]
    run(request_message(body=f"May we? {BIKE}"))
    with sessions() as session:
        pickup_id, token = session.execute(select(Pickup.id, Pickup.token)).one()
    ready = threading.Event()
    early = threading.Thread(target=_record, args=(sessions, pickup_id, datetime.now(timezone.utc) - timedelta(days=30),
                                                   Decision.DECLINED, ready))
    early.start()
    ready.wait(10)
    _record(sessions, pickup_id, datetime.now(timezone.utc) - timedelta(days=90), Decision.GRANTED)
    early.join()
    counts = assert_counts_right(sessions)
    assert sum(n for n, _ in counts["weeks"].values()) == 1

    first = sessions()
    write_hits(first, [_hit(token)])
    second = threading.Thread(target=_view, args=(sessions, token))
    second.start()
    time.sleep(0.5)
    first.commit()
    first.close()
    second.join()
    assert assert_counts_right(sessions)["viewed"] == {pickup_id}
    with sessions() as session:
        assert session.scalar(select(func.sum(PickupWeek.unviewed))) == 0


def _view(sessions, token: str) -> None:
    with sessions() as session:
        write_hits(session, [_hit(token)])
        session.commit()


def test_the_migration_counts_the_pickups_already_recorded(tmp_path, database_url):
    engine = db.make_engine(database_url)
    config = db.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
    now = datetime.now(timezone.utc)
    # The tables as they were at 0005, without the columns this revision adds.
    stories = table("stories", column("id"), column("canonical_url"), column("url_key"), column("title"),
                    column("title_key"), column("slug"), column("byline"), column("language"), column("body_html"),
                    column("origin_evidence"), column("source"), column("created_at", UTCDateTime()),
                    column("updated_at", UTCDateTime()))
    outlets = table("outlets", column("id"), column("key"), column("display_name"), column("created_at", UTCDateTime()))
    pickups = table("pickups", column("id"), column("outlet_id"), column("story_id"), column("decision"),
                    column("reason"), column("token"), column("first_requested_at", UTCDateTime()),
                    column("last_requested_at", UTCDateTime()))
    hits = table("pixel_hits", column("pickup_id"), column("token"), column("hit_at", UTCDateTime()),
                 column("page_url"), column("page_host"), column("counted", Boolean()), column("reason"))
    with engine.begin() as connection:
        story_ids = [connection.execute(stories.insert().values(
            canonical_url=f"https://riversideledger.example/{i}", url_key=f"riversideledger.example/{i}",
            title=f"Story {i}", title_key=f"story {i}", slug=f"s{i}", byline="", language="", body_html="",
            origin_evidence="", source="", created_at=now, updated_at=now).returning(stories.c.id)).scalar()
            for i in range(4)]
        outlet_ids = [connection.execute(outlets.insert().values(
            key=f"outlet{i}.example", display_name="", created_at=now).returning(outlets.c.id)).scalar()
            for i in range(3)]
        pickup_ids = []
        for index, (outlet_id, story_id) in enumerate((o, s) for o in outlet_ids for s in story_ids):
            when = now - timedelta(days=5 * index)
            pickup_ids.append(connection.execute(pickups.insert().values(
                outlet_id=outlet_id, story_id=story_id, decision="granted" if index % 3 else "declined", reason="",
                token=f"t{index}", first_requested_at=when, last_requested_at=when).returning(pickups.c.id)).scalar())
        connection.execute(hits.insert(), [
            {"pickup_id": pickup_id, "token": "", "hit_at": now, "page_url": "", "page_host": "", "counted": counted,
             "reason": ""} for pickup_id, counted in ((pickup_ids[1], True), (pickup_ids[1], False),
                                                      (pickup_ids[2], False), (pickup_ids[4], True))])
    db.upgrade(engine)
    sessions = db.make_session_factory(engine)
    counts = assert_counts_right(sessions)
    assert counts["viewed"] == {pickup_ids[1], pickup_ids[4]} and len(counts["weeks"]) > 4
    engine.dispose()
