"""The catalog at scale: matching a message against 100,000 stories, importing a 5,000-item feed, and
importing real article pages (../shared/articles when it is beside the checkout, else the demo's pages;
target: a median under 100 ms a page, next to the time lxml alone takes to parse each page).

    .venv/bin/python -m benchmarks.catalog [--stories 100000] [--items 5000] [--database-url URL ...]

SQLite (a temporary file), then the local PostgreSQL (a schema of its own, dropped afterwards; skipped,
saying why, when it is not there); `--database-url` (repeatable) names the databases instead. Matching is measured on the same
messages against a 3-story catalog in the same run (the baseline), then against the big one: with an
index the two stay close; a scan would grow with the catalog.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import lxml.html

from sqlalchemy import delete, insert

from benchmarks.mail import on_each_database, scratch_database
from models import Story
from processor.catalog.stories import ImportFailed, import_articles, parse_source, stories_named
from processor.catalog.titles import title_key
from processor.pipeline.classify import story_refs
from processor.pipeline.parse import parse_message
from tests.helpers import request_message

ALLOWED = ("riversideledger.example",)


def messages(count: int, stories: int) -> list:
    out = []
    for index in range(count):
        number = (index * 7919) % max(stories, 1)
        body = (f"Hi, we would like to run this one:\nhttps://riversideledger.example/news/story-{number}/\n"
                f"and also \"Council votes on budget item {number + 1}\" if that is yours.\nThanks, Priya\n")
        out.append(parse_message(request_message(body=body, message_id=f"<m{index}@valleynews.example>")))
    return out


def match_ms(sessions, inbound_messages) -> float:
    times = []
    with sessions() as session:
        for inbound in inbound_messages:
            started = time.perf_counter()
            refs = story_refs(inbound, ALLOWED)
            stories_named(session, refs.own_keys, refs.title_keys).for_refs(refs.own_keys, refs.title_keys)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def fill_catalog(sessions, count: int) -> None:
    now = datetime.now(timezone.utc)
    with sessions() as session:
        session.execute(delete(Story))
        for start in range(0, count, 10_000):
            session.execute(insert(Story), [
                {"canonical_url": f"https://riversideledger.example/news/story-{i}/",
                 "url_key": f"riversideledger.example/news/story-{i}", "title": f"Council votes on budget item {i}",
                 "title_key": title_key(f"Council votes on budget item {i}"), "slug": f"story-{i}",
                 "created_at": now, "updated_at": now}
                for i in range(start, min(count, start + 10_000))])
        session.commit()
    if sessions.kw["bind"].dialect.name == "postgresql":
        # What autovacuum does soon after a bulk load: without fresh statistics the planner may scan.
        with sessions.kw["bind"].connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE stories")


def feed(items: int) -> bytes:
    entries = "".join(
        f"<item><title>Story number {i} about the city</title><link>https://riversideledger.example/news/feed-{i}/</link>"
        f"<guid>https://riversideledger.example/news/feed-{i}/</guid><pubDate>Tue, 24 Nov 2026 10:00:00 +0000</pubDate>"
        f"<description>&lt;p&gt;First paragraph of story {i}.&lt;/p&gt;&lt;p&gt;Second paragraph.&lt;/p&gt;</description>"
        f"</item>" for i in range(items))
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>The Riverside Ledger</title>'
            f"<link>https://riversideledger.example/</link>{entries}</channel></rss>").encode()


def page_files() -> list[Path]:
    shared = Path(__file__).resolve().parents[2] / "shared" / "articles" / "pages"
    found = sorted(shared.glob("*/source.html")) if shared.is_dir() else []
    return found or sorted((Path(__file__).resolve().parents[1] / "processor" / "sample_data" / "stories").glob("*.html"))


def page_import_ms(sessions, publication, pages: list[Path]) -> tuple[float, float]:
    """Median ms to parse and import a page (its own transaction), and to parse it with lxml alone."""
    imports, parses = [], []
    for path in pages:
        data = path.read_bytes()
        started = time.perf_counter()
        lxml.html.document_fromstring(data)
        parses.append(time.perf_counter() - started)
        started = time.perf_counter()
        try:
            articles = parse_source(data, url=None, publication=publication)
        except ImportFailed:
            continue
        with sessions() as session:
            import_articles(session, articles, source=path.parent.name, now=datetime.now(timezone.utc))
            session.commit()
        imports.append(time.perf_counter() - started)
    return statistics.median(imports) * 1000, statistics.median(parses) * 1000


def measure(database_url: str | None, stories: int, items: int) -> None:
    config, engine, sessions = scratch_database(database_url)
    sample = messages(200, stories)
    fill_catalog(sessions, 3)
    small = match_ms(sessions, sample)
    fill_catalog(sessions, stories)
    big = match_ms(sessions, sample)
    print(f"{engine.dialect.name}: matching a message, median of 200: {big:.2f} ms with {stories:,} stories, "
          f"{small:.2f} ms with 3 ({big / small:.1f}x)")
    pages = page_files()
    import_ms, parse_ms = page_import_ms(sessions, config.publication, pages)
    print(f"{engine.dialect.name}: importing an article page, median of {len(pages)} real pages: {import_ms:.0f} ms "
          f"(target < 100 ms); lxml alone parsing the same pages: {parse_ms:.0f} ms")
    data = feed(items)
    started = time.perf_counter()
    articles = parse_source(data, url=None, publication=config.publication)
    with sessions() as session:
        report = import_articles(session, articles, source="bench-feed", now=datetime.now(timezone.utc))
        session.commit()
    elapsed = time.perf_counter() - started
    print(f"{engine.dialect.name}: importing a {items:,}-item feed ({len(data) / 1e6:.1f} MB): {elapsed:.1f} s, "
          f"{len(report.created)} new stories")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stories", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--database-url", action="append", dest="database_urls",
                        help="run on this database (repeatable); default: SQLite, then the local PostgreSQL")
    args = parser.parse_args()
    on_each_database(lambda url: measure(url, args.stories, args.items), args.database_urls)


if __name__ == "__main__":
    main()
