"""Where a republished copy went live: from the partner's email, and from a pixel hit on a real page."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select

from models import LiveCopy, Pickup
from processor.app import build_worker
from processor.pipeline.classify import live_copy_links
from processor.pipeline.parse import parse_message
from processor.desk.web.hits import Hit, write_hits
from tests.helpers import request_message

BIKE = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
OURS = ("riversideledger.example",)


def test_links_to_the_outlets_own_site_are_its_live_copy():
    inbound = parse_message(request_message(body=(
        f"We ran {BIKE}\nHere it is: https://www.valleynews.example/local/2026/bike-lanes-main-street\n"
        "Our home page https://valleynews.example/ and a tip https://elsewhere.example/x")))
    assert live_copy_links(inbound, "valleynews.example", OURS) == (
        "https://www.valleynews.example/local/2026/bike-lanes-main-street",)
    assert live_copy_links(inbound, "priya@gmail.com", OURS) == ()  # a free-mail sender's site is unknown


def test_the_worker_and_the_pixel_record_live_copies(maildir_pipeline):
    copy_url = "https://valleynews.example/local/2026/bike-lanes-main-street"
    (maildir_pipeline["maildir"] / "new" / "1.eml").write_bytes(
        request_message(body=f"Running {BIKE}\nOur copy: {copy_url}"))
    worker, engine = build_worker(maildir_pipeline["configure"]())
    worker.run(once=True)
    worker.close()
    engine.dispose()
    sessions = maildir_pipeline["sessions"]
    with sessions() as session:
        pickup = session.scalars(select(Pickup)).one()
        copy = session.scalars(select(LiveCopy)).one()
        assert (copy.url, copy.source, copy.pickup_id, copy.status) == (copy_url, "email", pickup.id, "unchecked")
        now = datetime.now(timezone.utc)
        write_hits(session, [
            Hit(token=pickup.token, story_id=None, hit_at=now, page_url=copy_url, page_host="valleynews.example",
                counted=True, reason=""),  # the same page again: no second row
            Hit(token=pickup.token, story_id=None, hit_at=now, page_url="https://valleynews.example/",
                page_host="valleynews.example", counted=True, reason=""),  # an origin only: says nothing
            Hit(token=pickup.token, story_id=None, hit_at=now, page_url="https://news.valleynews.example/amp/bike",
                page_host="news.valleynews.example", counted=True, reason=""),
            Hit(token=pickup.token, story_id=None, hit_at=now, page_url="https://slack.example/preview/1",
                page_host="slack.example", counted=False, reason="link preview"),
        ])
        session.commit()
        copies = sorted((c.url, c.source) for c in session.scalars(select(LiveCopy)))
    assert copies == [("https://news.valleynews.example/amp/bike", "pixel"), (copy_url, "email")]
