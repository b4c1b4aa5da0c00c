"""Blocked and merged outlets in the worker, on a Maildir, an outbox folder and SQLite."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import func, select

from models import Outlet, Pickup, Request
from processor.app import run_once
from tests.helpers import request_message

BIKE = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def _run(maildir_pipeline, *messages: bytes):
    for number, raw in enumerate(messages):
        (maildir_pipeline["maildir"] / "new" / f"{datetime.now().timestamp()}-{number}.eml").write_bytes(raw)
    return run_once(maildir_pipeline["configure"]())


def _outlets(session, *rows: Outlet) -> None:
    session.add_all(rows)
    session.commit()


def test_request_from_a_blocked_outlet_goes_to_a_person_unanswered(maildir_pipeline):
    with maildir_pipeline["sessions"]() as session:
        _outlets(session, Outlet(key="valleynews.example", created_at=NOW, blocked=True,
                                 blocked_reason="stripped the credit line"))
    stats = _run(maildir_pipeline, request_message(body=f"May we? {BIKE}"))
    assert stats.replies_sent == 0 and not list(maildir_pipeline["outbox"].glob("*.eml"))
    with maildir_pipeline["sessions"]() as session:
        request = session.scalars(select(Request)).one()
        assert request.needs_person and request.outcome == "needs_person"
        assert request.reason.startswith("outlet valleynews.example is blocked: stripped the credit line")
        assert session.scalar(select(func.count()).select_from(Pickup)) == 0


def test_merged_outlet_counts_for_its_target_and_shares_its_block(maildir_pipeline):
    with maildir_pipeline["sessions"]() as session:
        target = Outlet(key="valleynews.example", created_at=NOW)
        _outlets(session, target)
        _outlets(session, Outlet(key="valley-news.example", created_at=NOW, merged_into_id=target.id))
    stats = _run(maildir_pipeline, request_message(sender="Priya <priya@valley-news.example>", body=f"May we? {BIKE}"))
    assert stats.replies_sent == 1
    with maildir_pipeline["sessions"]() as session:
        pickup = session.scalars(select(Pickup)).one()
        assert pickup.outlet.key == "valleynews.example"
        assert session.scalars(select(Request)).one().outlet.key == "valleynews.example"
        target = session.scalars(select(Outlet).where(Outlet.key == "valleynews.example")).one()
        target.blocked, target.blocked_reason = True, "no canonical link"
        session.commit()
    stats = _run(maildir_pipeline, request_message(sender="Priya <priya@valley-news.example>", body=f"Again? {BIKE}",
                                                   message_id="<r2@valley-news.example>"))
    assert stats.replies_sent == 0
    with maildir_pipeline["sessions"]() as session:
        request = session.scalars(select(Request).where(Request.message_id == "r2@valley-news.example")).one()
        assert request.reason.startswith("outlet valleynews.example is blocked: no canonical link")
