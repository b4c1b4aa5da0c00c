"""The pickup log at scale: `republish pickups` and the dashboard's pages over a million pickups.

    .venv/bin/python -m benchmarks.pickup_log [--pickups 1000000] [--database-url URL]

SQLite by default (a temporary file); `--database-url` for PostgreSQL. Pickups are bulk-inserted over
1,000 outlets and 1,000 stories, one hour apart. Each figure is the median of 5 calls.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timezone

from sqlalchemy import insert

from benchmarks.mail import scratch_database
from models import Story
from processor.store import list_pickups
from processor.web.app import build_app
from tests.web_fixtures import add_pickups, log_in, story_ids


def median_ms(call, times: int = 5) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    from starlette.testclient import TestClient

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pickups", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    config, engine, sessions = scratch_database(args.database_url, web=True)
    now = datetime.now(timezone.utc)
    started = time.perf_counter()
    with sessions() as session:
        session.execute(insert(Story), [
            {"canonical_url": f"https://riversideledger.example/news/story-{i}/",
             "url_key": f"riversideledger.example/news/story-{i}", "title": f"Story {i}", "title_key": f"story {i}",
             "slug": f"story-{i}", "created_at": now, "updated_at": now} for i in range(1000)])
        outlets = [f"outlet{i}.example" for i in range(1000)]
        add_pickups(session, story_ids(session), outlets, start=now, count=args.pickups, granted_every=4)
        session.commit()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")
    print(f"{engine.dialect.name}: {args.pickups:,} pickups inserted in {time.perf_counter() - started:.0f} s")
    with sessions() as session:
        print(f"republish pickups (latest 100): {median_ms(lambda: list_pickups(session, limit=100)):.0f} ms")
        print(f"republish pickups --outlet outlet7.example (latest 100): "
              f"{median_ms(lambda: list_pickups(session, outlet='outlet7.example', limit=100)):.0f} ms")
    with TestClient(build_app(config, engine)) as client:
        log_in(client)
        for path in ("/", "/pickups", "/pickups?outlet=outlet7.example&decision=granted", "/outlets/1",
                     "/stories/1", "/review"):
            print(f"dashboard {path}: {median_ms(lambda: client.get(path).raise_for_status()):.0f} ms")
    engine.dispose()


if __name__ == "__main__":
    main()
