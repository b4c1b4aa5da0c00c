"""`republish demo`: the real pipeline on the embedded default, with no server and no set-up.

It writes a config (SQLite, a Maildir mailbox, an outbox folder instead of SMTP) into a fresh
demo folder, migrates the database, imports the bundled sample stories, delivers the bundled
sample requests into the Maildir, runs the worker once and reports what happened. Then the
newsroom corrects one story the outlets ran: it is read again, and each outlet that was granted it
gets a correction notice in its thread (one more worker pass sends them to the outbox folder).
"""

from __future__ import annotations

import shutil
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from importlib.resources import files
from pathlib import Path

from processor.records import db
from processor.app import run_once
from processor.catalog.stories import import_articles, parse_source
from processor.config import load_config
from processor.desk.pickup_log import LogFilter, format_pickups, pickup_records
from processor.pipeline.corrections import tell_outlets
from processor.pipeline.edges import new_message_id

DEMO_CONFIG = """\
# Written by `republish demo`. A real installation starts from config.example.toml.
[database]
url = "sqlite:///republish.sqlite3"

[worker]
source = "maildir"
sink = "outbox"
max_age_days = 14

[maildir]
path = "Maildir"

[outbox]
path = "outbox"

[publication]
name = "The Riverside Ledger"
site_url = "https://riversideledger.example/"
allowed_hosts = ["riversideledger.example"]
guidelines_url = "https://riversideledger.example/republishing-guidelines/"
contact_email = "republish@riversideledger.example"
pixel_url = "https://riversideledger.example/pixel.gif?story={story_id}&outlet={outlet_id}&t={token}"
"""


def run_demo(directory: Path) -> str:
    directory = directory.resolve()
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / "config.toml").write_text(DEMO_CONFIG, encoding="utf-8")
    config = load_config(directory / "config.toml", environ={})
    engine = db.make_engine(config.database_url)
    db.upgrade(engine)
    sessions = db.make_session_factory(engine)
    now = datetime.now(timezone.utc)
    sample = files("processor") / "sample_data"
    with sessions() as session:
        for page in sorted(p for p in (sample / "stories").iterdir() if p.name.endswith(".html")):
            articles = parse_source(page.read_bytes(), url=None, publication=config.publication)
            import_articles(session, articles, source=f"sample:{page.name}", now=now)
        session.commit()
    _deliver_requests(sample / "requests", config.worker.maildir_path, now)

    stats = run_once(config)
    replies = sorted(config.worker.outbox_path.glob("*.eml")) if config.worker.outbox_path.exists() else []
    correction = _correct_a_story(sessions, config, sample / "stories" / "bike-lanes.html")
    run_once(config)
    notices = sorted(set(config.worker.outbox_path.glob("*.eml")) - set(replies))

    with sessions() as session:
        log = format_pickups(pickup_records(session, LogFilter(), None), "table")
    engine.dispose()
    outcomes = ", ".join(f"{count} {outcome}" for outcome, count in sorted(stats.by_outcome.items()))
    return "\n".join([
        f"Demo folder: {directory}",
        f"Mailbox (Maildir): {config.worker.maildir_path} ({stats.seen} messages, {stats.requests} republish requests)",
        f"Outcomes: {outcomes}",
        "",
        "Pickup log (republish --config " + str(directory / "config.toml") + " pickups):",
        log.rstrip(),
        "",
        f"Replies written to {config.worker.outbox_path} ({len(replies)} .eml files):",
        *(f"  {path.name}" for path in replies),
        "",
        "In the Maildir: R answered, S logged without a reply, F waiting for a person. What waits for a person:",
        f"  republish --config {directory / 'config.toml'} review",
        "",
        f"Then the newsroom corrected \"{correction}\": {len(notices)} correction notice(s), one per outlet that ran it:",
        *(f"  {path.name}" for path in notices),
        f"  republish --config {directory / 'config.toml'} stories show 1",
    ]) + "\n"


# The newsroom's correction of the bike-lanes story: a sentence changed, and the note saying so.
CORRECTION = (b"most of it covered by a state grant.</p>",
              b"about half of it covered by a state grant; the rest comes from the city's road budget.</p>\n"
              b"<p><em>Correction: An earlier version of this story said a state grant would cover most of the "
              b"cost. It covers about half.</em></p>")


def _correct_a_story(sessions, config, page) -> str:
    """The page, corrected, read again the same way, as a feed poll or `stories import` would; the outlets
    granted the story are told (their notices wait in the outbox for the worker). Its title."""
    corrected = page.read_bytes().replace(*CORRECTION)
    with sessions() as session:
        articles = parse_source(corrected, url=None, publication=config.publication)
        report = import_articles(session, articles, source="sample:bike-lanes.html", now=datetime.now(timezone.utc))
        tell_outlets(session, report.revised, config=config, now=datetime.now(timezone.utc),
                     new_message_id=new_message_id)
        session.commit()
    return articles[0].title


def _deliver_requests(templates: Path, maildir: Path, now: datetime) -> None:
    """Copy the sample requests into Maildir/new as a delivery agent would, dated just now."""
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    run_id = str(int(time.time()))
    for index, template in enumerate(sorted(p for p in templates.iterdir() if p.name.endswith(".eml"))):
        text = template.read_text(encoding="utf-8")
        text = (text.replace("{date}", format_datetime(now - timedelta(minutes=30 - index)))
                    .replace("{old_date}", format_datetime(now - timedelta(days=40)))
                    .replace("{uid}", run_id))
        raw = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
        (maildir / "new" / f"{run_id}.{index:03d}.demo").write_bytes(raw)
