"""The pickup log, one query behind `republish pickups` and the dashboard's log, CSV and pages.

A pickup is dated by when it was first requested: `since` and `until` keep the pickups first requested
in that span (whole days, UTC, `until` inclusive), newest first, paged by keyset on
(first_requested_at, id), which is indexed, so no page reads the whole log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from models import Outlet, Pickup, PickupRequest, PickupWeek, Request, Story
from processor.desk.csv_export import csv_text
from processor.urls import url_key


@dataclass(frozen=True)
class LogFilter:
    outlet: str = ""        # an outlet key (domain, or an address for free-mail senders)
    story: str = ""         # a story id or any form of its URL
    since: date | None = None
    until: date | None = None  # inclusive
    decision: str = ""

    def as_params(self) -> dict[str, str]:
        """The filter as query parameters (a link to the same view)."""
        return {k: v for k, v in {"outlet": self.outlet, "story": self.story, "decision": self.decision,
                                  "since": self.since.isoformat() if self.since else "",
                                  "until": self.until.isoformat() if self.until else ""}.items() if v}


@dataclass(frozen=True)
class LogRow:
    pickup_id: int
    outlet_id: int
    outlet: str
    story_id: int
    story_title: str
    story_url: str
    decision: str
    first_requested_at: datetime
    last_requested_at: datetime


LOG_COLUMNS = (Pickup.id, Outlet.id, Outlet.key, Story.id, Story.title, Story.canonical_url, Pickup.decision,
               Pickup.first_requested_at, Pickup.last_requested_at)
NEWEST_FIRST = (Pickup.first_requested_at.desc(), Pickup.id.desc())


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.utc)


def log_query(columns, flt: LogFilter) -> Select:
    """`columns` of the pickups the filter keeps (unordered: callers order or count)."""
    query = select(*columns).select_from(Pickup).join(Outlet, Pickup.outlet_id == Outlet.id).join(
        Story, Pickup.story_id == Story.id)
    if flt.outlet:
        wanted = flt.outlet.strip().lower()
        if "." in wanted or "@" in wanted:  # a domain or an address: that outlet exactly
            query = query.where(Outlet.key == wanted)
        else:  # words: in an outlet's domain or its name ("valley", "Harbor Gazette")
            query = query.where(or_(Outlet.key.contains(wanted, autoescape=True),
                                    func.lower(Outlet.display_name).contains(wanted, autoescape=True)))
    if flt.story:
        wanted = flt.story.strip()
        if wanted.isdigit():
            query = query.where(Pickup.story_id == int(wanted))
        elif "/" in wanted and " " not in wanted:  # a link: that story exactly
            query = query.where(Story.url_key == url_key(wanted))
        else:  # words of its title ("whale")
            query = query.where(func.lower(Story.title).contains(wanted.lower(), autoescape=True))
    if flt.since:
        query = query.where(Pickup.first_requested_at >= _start_of(flt.since))
    if flt.until:
        query = query.where(Pickup.first_requested_at < _start_of(flt.until + timedelta(days=1)))
    if flt.decision:
        query = query.where(Pickup.decision == flt.decision)
    return query


def encode_cursor(row: LogRow) -> str:
    return f"{row.first_requested_at.timestamp():.6f}_{row.pickup_id}"


def decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    try:
        stamp, pickup_id = cursor.split("_", 1)
        return datetime.fromtimestamp(float(stamp), timezone.utc), int(pickup_id)
    except (ValueError, OverflowError, OSError):
        return None


def log_rows(session: Session, flt: LogFilter, *, after: str = "", limit: int) -> list[LogRow]:
    """Up to `limit` rows, newest first, after the row the cursor names."""
    query = log_query(LOG_COLUMNS, flt)
    position = decode_cursor(after) if after else None
    if position:
        when, pickup_id = position
        query = query.where(or_(Pickup.first_requested_at < when,
                                and_(Pickup.first_requested_at == when, Pickup.id < pickup_id)))
    return [LogRow(*r) for r in session.execute(query.order_by(*NEWEST_FIRST).limit(limit)).all()]


def all_log_rows(session: Session, flt: LogFilter, *, batch: int = 1000) -> Iterator[LogRow]:
    """Every row the filter keeps, newest first, read a batch at a time by keyset."""
    after = ""
    while rows := log_rows(session, flt, after=after, limit=batch):
        yield from rows
        if len(rows) < batch:
            return
        after = encode_cursor(rows[-1])


def log_total(session: Session, flt: LogFilter) -> int:
    """How many pickups the filter keeps: from the weekly counts when it keeps every week."""
    if flt.outlet or flt.story or flt.since or flt.until:
        return session.scalar(log_query((func.count(),), flt)) or 0
    query = select(func.sum(PickupWeek.pickups))
    if flt.decision:
        query = query.where(PickupWeek.decision == flt.decision)
    return int(session.scalar(query) or 0)


def request_counts(session: Session, pickup_ids: list[int]) -> dict[int, int]:
    if not pickup_ids:
        return {}
    return dict(session.execute(select(PickupRequest.pickup_id, func.count()).where(
        PickupRequest.pickup_id.in_(pickup_ids)).group_by(PickupRequest.pickup_id)).all())


def reply_message_ids(session: Session, pickup_ids: list[int]) -> dict[int, list[str]]:
    """{pickup id: the Message-IDs of the replies to its requests, oldest first}."""
    replies: dict[int, list[str]] = {}
    for start in range(0, len(pickup_ids), 5000):
        for pickup_id, message_id in session.execute(
                select(PickupRequest.pickup_id, Request.reply_message_id)
                .join(Request, PickupRequest.request_id == Request.id)
                .where(PickupRequest.pickup_id.in_(pickup_ids[start:start + 5000]), Request.reply_message_id != "")
                .order_by(PickupRequest.request_id)):
            if message_id:
                replies.setdefault(pickup_id, []).append(message_id)
    return replies


def pickup_records(session: Session, flt: LogFilter, limit: int | None) -> list[dict]:
    """The log as plain records (what `republish pickups` prints), newest first; `limit` None: all."""
    rows = (log_rows(session, flt, limit=limit) if limit else list(all_log_rows(session, flt)))
    ids = [row.pickup_id for row in rows]
    requests, replies = request_counts(session, ids), reply_message_ids(session, ids)
    return [{
        "id": row.pickup_id,
        "outlet": row.outlet,
        "story": row.story_url,
        "title": row.story_title,
        "decision": row.decision,
        "first_requested": row.first_requested_at.isoformat(timespec="seconds"),
        "last_requested": row.last_requested_at.isoformat(timespec="seconds"),
        "requests": requests.get(row.pickup_id, 0),
        "replies": replies.get(row.pickup_id, []),
    } for row in rows]


PICKUP_COLUMNS = ["id", "outlet", "story", "title", "decision", "first_requested", "last_requested", "requests",
                  "replies"]


def format_pickups(records: list[dict], output: str) -> str:
    """The records as a terminal table, CSV or JSON."""
    if output == "json":
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    if output == "csv":
        return csv_text([{**record, "replies": " ".join(record["replies"])} for record in records], PICKUP_COLUMNS)
    if not records:
        return "no pickups yet\n"
    columns = ["first_requested", "outlet", "decision", "requests", "story"]
    table = [[str(r[c]) for c in columns] for r in records]
    widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in table]
    return "\n".join(line.rstrip() for line in lines) + "\n"
