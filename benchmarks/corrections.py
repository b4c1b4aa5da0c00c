"""Corrections at scale: polling a 5,000-item feed on loopback, and telling outlets of 50 changed stories.

    .venv/bin/python -m benchmarks.corrections [--items 5000] [--changed 50] [--outlets 3] [--database-url URL ...]

Targets: a poll of a feed that has not changed costs one conditional GET (a 304) and nothing else; with
50 changed stories (each granted to --outlets outlets), the revisions and the notices are worked out in
under a second. The baseline, measured in the same run: the same poll of the feed re-read with no story
changed (its channel's build date moved). The revisions' own work (reading both texts as a reader sees
them and comparing them: `reader_text` and `revision`, timed by wrapping them) and the notices (building
each message with its snippet and queueing it) are timed on their own; their sum is held to the target.

SQLite (a temporary file), then the local PostgreSQL (a schema of its own, dropped afterwards; skipped,
saying why, when it is not there); `--database-url` (repeatable) names the databases instead.
"""

from __future__ import annotations

import argparse
import secrets
import time
from dataclasses import replace
from datetime import datetime, timezone

from sqlalchemy import func, select

from benchmarks.mail import on_each_database, scratch_database
from models import CorrectionNotice, OutboxMessage, Outlet, Pickup, PickupRequest, Request, Story, StoryRevision
from processor.catalog import stories as catalog_stories
from processor.catalog.fetch import fetch_page
from processor.catalog.sync import poll_feed
from processor.config import CatalogConfig
from processor.pipeline.corrections import tell_outlets
from processor.pipeline.edges import new_message_id
from tests.feed_site import FeedSite, rss

PARAGRAPH = ("The council met on Tuesday evening to hear from residents about the plan, which would change how the "
             "city spends its road budget over the next five years and who decides where the money goes first. ")


def items(count: int, changed: int = 0) -> list[tuple[str, str, str]]:
    """Full-content items (over the 1,500 characters of a teaser); the first `changed` with one figure corrected."""
    out = []
    for i in range(count):
        figure = "4.1 million" if i < changed else "3.4 million"
        body = "".join(f"<p>{PARAGRAPH}Paragraph {n} of story {i}.</p>" for n in range(7))
        out.append((f"Council weighs road plan, part {i}", f"https://riversideledger.example/news/c-{i}/",
                    body + f"<p>The plan would cost {figure} dollars.</p>"))
    return out


def grant(sessions, count: int, outlets: int) -> None:
    """Pickups of the first `count` stories by `outlets` outlets each, with the replies that carried them sent."""
    now = datetime.now(timezone.utc)
    with sessions() as session:
        stories = list(session.scalars(select(Story).where(Story.url_key.in_(
            [f"riversideledger.example/news/c-{i}" for i in range(count)]))))
        for o in range(outlets):
            outlet = Outlet(key=f"outlet{o}.example", display_name="", created_at=now)
            session.add(outlet)
            session.flush()
            for story in stories:
                request = Request(message_key=f"m{o}-{story.id}@outlet{o}.example", message_id=f"m{o}-{story.id}@x",
                                  processed_at=now, outcome="answered", outlet_id=outlet.id,
                                  from_address=f"desk@outlet{o}.example")
                session.add(request)
                session.flush()
                pickup = Pickup(outlet_id=outlet.id, story_id=story.id, token=secrets.token_urlsafe(12),
                                decision="granted", reason="", first_requested_at=now, last_requested_at=now)
                session.add(pickup)
                session.flush()
                session.add(PickupRequest(pickup_id=pickup.id, request_id=request.id, decision="granted"))
                session.add(OutboxMessage(request_id=request.id, message_id=f"r{o}-{story.id}@riversideledger.example",
                                          recipients=f"desk@outlet{o}.example", status="sent", attempts=1,
                                          last_error="", created_at=now, kind="reply"))
        session.commit()


class Timed:
    """A function wrapped to add up the time spent in it."""

    def __init__(self, function) -> None:
        self.function, self.seconds, self.calls = function, 0.0, 0

    def __call__(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started
            self.calls += 1


def measure(database_url: str | None, count: int, changed: int, outlets: int) -> None:
    config, engine, sessions = scratch_database(database_url)
    site = FeedSite()
    feed_url = site.put("/feed.xml", rss(items(count)))
    config = replace(config, catalog=CatalogConfig(feeds=(feed_url,)),
                     publication=replace(config.publication, allowed_hosts=("riversideledger.example", "127.0.0.1")),
                     worker=replace(config.worker, fetch_max_bytes=64 * 1024 * 1024, fetch_timeout=60,
                                    max_replies_per_sender_per_day=1000, max_replies_per_domain_per_day=1000,
                                    max_replies_per_hour=10_000))
    fetch = lambda url, **validators: fetch_page(url, allowed_hosts=config.publication.allowed_hosts,  # noqa: E731
                                                  timeout=60, max_bytes=64 * 1024 * 1024, **validators)
    name = engine.dialect.name

    def poll():
        started = time.perf_counter()
        with sessions() as session:
            result = poll_feed(session, feed_url, publication=config.publication, fetch=fetch,
                               recent_since=datetime(2000, 1, 1, tzinfo=timezone.utc), now=datetime.now(timezone.utc))
            polled = time.perf_counter() - started
            started = time.perf_counter()
            told = tell_outlets(session, result.revised, config=config, now=datetime.now(timezone.utc),
                                new_message_id=new_message_id)
            session.commit()
            return result, told, polled, time.perf_counter() - started

    try:
        result, _, first, _ = poll()
        size = len(site.files["/feed.xml"]) / 1e6
        print(f"{name}: first poll of a {count:,}-item feed ({size:.1f} MB): {result.created:,} stories imported "
              f"in {first:.1f} s")
        grant(sessions, changed, outlets)
        before = len(site.requests)
        result, _, unchanged, _ = poll()
        asked = site.requests[before:]
        print(f"{name}: poll of the unchanged feed: {len(asked)} request(s), answered {[s for _, s in asked]}, "
              f"{unchanged * 1000:.0f} ms (target: one conditional GET)")
        site.put("/feed.xml", rss(items(count), title="The Riverside Ledger (rebuilt)"))
        result, _, baseline, _ = poll()
        assert not result.revised, "a feed re-read with no story changed made revisions"
        site.put("/feed.xml", rss(items(count, changed), title="The Riverside Ledger (corrected)"))
        reading, comparing = Timed(catalog_stories.reader_text), Timed(catalog_stories.revision)
        catalog_stories.reader_text, catalog_stories.revision = reading, comparing
        try:
            result, told, corrected, notices_s = poll()
        finally:
            catalog_stories.reader_text, catalog_stories.revision = reading.function, comparing.function
        revisions_s = reading.seconds + comparing.seconds
        with sessions() as session:
            revisions = session.scalar(select(func.count()).select_from(StoryRevision))
            queued = session.scalar(select(func.count()).select_from(CorrectionNotice))
        print(f"{name}: re-reading the changed feed, no story changed (baseline): {baseline:.2f} s")
        print(f"{name}: re-reading it with {changed} stories changed: {corrected:.2f} s, {revisions} revisions "
              f"worked out in {revisions_s * 1000:.0f} ms ({reading.calls} texts read as a reader sees them, "
              f"{comparing.calls} compared)")
        print(f"{name}: the {queued} notices ({len(told.queued)} queued) built and queued in {notices_s * 1000:.0f} ms; "
              f"revisions and notices together {(revisions_s + notices_s) * 1000:.0f} ms (target < 1000 ms)")
    finally:
        site.close()
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--changed", type=int, default=50)
    parser.add_argument("--outlets", type=int, default=3)
    parser.add_argument("--database-url", action="append", dest="database_urls",
                        help="run on this database (repeatable); default: SQLite, then the local PostgreSQL")
    args = parser.parse_args()
    on_each_database(lambda url: measure(url, args.items, args.changed, args.outlets), args.database_urls)


if __name__ == "__main__":
    main()
