"""The pickup log at scale: `republish pickups` and the dashboard's pages over a million pickups.

    .venv/bin/python -m benchmarks.pickup_log [--pickups 1000000] [--database-url URL ...]

Without `--database-url`, on SQLite (a temporary file) and then on the local PostgreSQL (127.0.0.1:5432,
database `test`, in a schema of its own dropped afterwards; skipped, saying why, when it is not there).
`--database-url` (repeatable) names the databases instead. Pickups are bulk-inserted over 1,000 outlets
and 1,000 stories, one hour apart, one in four granted. Each figure is the median of 5 calls.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import insert

from benchmarks.mail import on_each_database, scratch_database
from models import Story
from processor.desk.pickup_log import LogFilter, pickup_records
from processor.desk.web.app import build_app
from tests.web_fixtures import add_pickups, log_in, story_ids

PAGES = ("/", "/pickups", "/pickups?outlet=outlet7.example&decision=granted", "/outlets/1", "/stories/1", "/review")


def median_ms(call, times: int = 5) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def fill(sessions, engine, pickups: int) -> None:
    now = datetime.now(timezone.utc)
    with sessions() as session:
        session.execute(insert(Story), [
            {"canonical_url": f"https://riversideledger.example/news/story-{i}/",
             "url_key": f"riversideledger.example/news/story-{i}", "title": f"Story {i}", "title_key": f"story {i}",
             "slug": f"story-{i}", "created_at": now, "updated_at": now} for i in range(1000)])
        outlets = [f"outlet{i}.example" for i in range(1000)]
        add_pickups(session, story_ids(session), outlets, start=now, count=pickups, granted_every=4)
        session.commit()
    if engine.dialect.name == "postgresql":  # as autovacuum does after a bulk load
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")


def measure(database_url: str | None, pickups: int) -> tuple[str, dict[str, float]]:
    """(database, {what: median ms}) over `pickups` pickups on a new database, printed as they come."""
    from starlette.testclient import TestClient

    config, engine, sessions = scratch_database(database_url, web=True)
    started = time.perf_counter()
    fill(sessions, engine, pickups)
    database = engine.dialect.name
    print(f"{database}: {pickups:,} pickups inserted in {time.perf_counter() - started:.0f} s", flush=True)
    figures = {}
    with sessions() as session:
        figures["republish pickups (latest 100)"] = median_ms(lambda: pickup_records(session, LogFilter(), 100))
        figures["republish pickups --outlet outlet7.example"] = median_ms(
            lambda: pickup_records(session, LogFilter(outlet="outlet7.example"), 100))
    with TestClient(build_app(config, engine)) as client:
        log_in(client)
        for path in PAGES:
            figures[f"dashboard {path}"] = median_ms(lambda: client.get(path).raise_for_status())
    engine.dispose()
    if database_url is None:  # the temporary SQLite file: hundreds of megabytes
        shutil.rmtree(Path(engine.url.database).parent)
    for what, ms in figures.items():
        print(f"  {what}: {ms:.0f} ms", flush=True)
    return database, figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pickups", type=int, default=1_000_000)
    parser.add_argument("--database-url", action="append", dest="database_urls",
                        help="a database to measure on (repeatable); default: SQLite and the local PostgreSQL")
    args = parser.parse_args()
    results = on_each_database(lambda url: measure(url, args.pickups), args.database_urls)
    width = max(len(what) for what in results[0][1])
    print(f"\nmedian of 5, {args.pickups:,} pickups")
    print(" " * width + "".join(f"{database:>12}" for database, _ in results))
    for what in results[0][1]:
        print(f"{what:{width}}" + "".join(f"{figures[what]:>9.0f} ms" for _, figures in results))


if __name__ == "__main__":
    main()
