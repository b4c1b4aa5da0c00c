"""What the dashboard shows, read with aggregates in SQL: nothing here loads the whole log.

Every list is limited or paged by keyset (the newest pickups first, by `first_requested_at`, which
is indexed), and every figure is a GROUP BY or COUNT in the database. Figures over the whole log
(totals, pickups per week, top stories and outlets, "pixel missing") read the counts kept as pickups
change (processor/records/pickup_counts.py), not the pickups themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Select, case, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from models import (Decision, LiveCopy, OutboxMessage, Outlet, Pickup, PickupWeek, PixelHit, Request,
                    Story)
from processor.desk.pickup_log import (LOG_COLUMNS, NEWEST_FIRST, LogFilter, LogRow, all_log_rows, encode_cursor,
                                       log_query, log_rows, log_total, request_counts)

PAGE_SIZE = 50
PIXEL_GRACE = timedelta(days=2)


def parse_filter(params) -> tuple[LogFilter, list[str]]:
    """The filter from query parameters, and what was ignored because it made no sense."""
    problems = []

    def day(name: str) -> date | None:
        value = (params.get(name) or "").strip()
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            problems.append(f"{name}: not a date (YYYY-MM-DD): {value}")
            return None

    decision = (params.get("decision") or "").strip()
    if decision and decision not in (Decision.GRANTED, Decision.DECLINED):
        problems.append(f"decision: granted or declined, not {decision}")
        decision = ""
    return LogFilter(outlet=(params.get("outlet") or "").strip().lower(), story=(params.get("story") or "").strip(),
                     since=day("since"), until=day("until"), decision=decision), problems


@dataclass(frozen=True)
class PixelStats:
    views: int = 0
    not_counted: int = 0
    first_hit: datetime | None = None
    last_hit: datetime | None = None
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class LogPage:
    rows: list[LogRow]
    total: int
    next_cursor: str | None
    pixels: dict[int, PixelStats]
    requests: dict[int, int]


def log_page(session: Session, flt: LogFilter, *, after: str = "", page_size: int = PAGE_SIZE) -> LogPage:
    rows = log_rows(session, flt, after=after, limit=page_size + 1)
    more = len(rows) > page_size
    rows = rows[:page_size]
    ids = [r.pickup_id for r in rows]
    return LogPage(rows=rows, total=log_total(session, flt), next_cursor=encode_cursor(rows[-1]) if more else None,
                   pixels=pixel_stats(session, ids), requests=request_counts(session, ids))


def log_rows_for_export(session: Session, flt: LogFilter, batch: int = 1000):
    """Every row of the filtered log with its pixel figures and request count, a batch at a time."""
    rows = all_log_rows(session, flt, batch=batch)
    while page := list(islice(rows, batch)):
        ids = [row.pickup_id for row in page]
        pixels, requests = pixel_stats(session, ids), request_counts(session, ids)
        yield from ((row, pixels.get(row.pickup_id, PixelStats()), requests.get(row.pickup_id, 0)) for row in page)


def pixel_stats(session: Session, pickup_ids: list[int]) -> dict[int, PixelStats]:
    """Views (counted hits), hits not counted, first and last counted hit and the hosts, per pickup."""
    if not pickup_ids:
        return {}
    counted = case((PixelHit.counted.is_(True), 1), else_=0)
    counted_at = case((PixelHit.counted.is_(True), PixelHit.hit_at), else_=None)
    totals = session.execute(
        select(PixelHit.pickup_id, func.sum(counted), func.count(), func.min(counted_at), func.max(counted_at))
        .where(PixelHit.pickup_id.in_(pickup_ids)).group_by(PixelHit.pickup_id)).all()
    hosts: dict[int, list[str]] = {}
    for pickup_id, host in session.execute(
            select(PixelHit.pickup_id, PixelHit.page_host).where(
                PixelHit.pickup_id.in_(pickup_ids), PixelHit.counted.is_(True), PixelHit.page_host != "")
            .group_by(PixelHit.pickup_id, PixelHit.page_host).order_by(PixelHit.page_host)).all():
        hosts.setdefault(pickup_id, []).append(host)
    return {pickup_id: PixelStats(views=int(views or 0), not_counted=int(all_hits) - int(views or 0),
                                  first_hit=_aware(first), last_hit=_aware(last),
                                  hosts=tuple(hosts.get(pickup_id, ())))
            for pickup_id, views, all_hits, first, last in totals}


def _aware(value) -> datetime | None:
    """MIN/MAX over a CASE loses the column type: SQLite hands back text, and no time zone."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


# -- the overview --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Totals:
    pickups: int
    granted: int
    declined: int
    outlets: int
    views: int
    review: int


def totals(session: Session) -> Totals:
    per_decision = dict(session.execute(select(PickupWeek.decision, func.sum(PickupWeek.pickups))
                                        .group_by(PickupWeek.decision)).all())
    return Totals(
        pickups=int(sum(per_decision.values())), granted=int(per_decision.get(Decision.GRANTED, 0)),
        declined=int(per_decision.get(Decision.DECLINED, 0)),
        outlets=session.scalar(select(func.count()).select_from(Outlet).where(Outlet.pickup_count > 0)) or 0,
        views=session.scalar(select(func.count()).select_from(PixelHit).where(PixelHit.counted.is_(True))) or 0,
        review=review_count(session),
    )


def review_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Request).where(
        Request.needs_person.is_(True), Request.resolution.is_(None))) or 0


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def pickups_per_week(session: Session, *, weeks: int, today: date) -> list[tuple[date, int]]:
    """Pickups per week (Monday to Sunday, UTC) for the last `weeks` weeks, empty weeks included."""
    first = week_start(today) - timedelta(weeks=weeks - 1)
    counts = dict(session.execute(select(PickupWeek.week, func.sum(PickupWeek.pickups))
                                  .where(PickupWeek.week >= first).group_by(PickupWeek.week)).all())
    return [(first + timedelta(weeks=i), int(counts.get(first + timedelta(weeks=i), 0))) for i in range(weeks)]


@dataclass(frozen=True)
class Ranked:
    id: int
    label: str
    detail: str
    count: int


def top_stories(session: Session, limit: int = 10) -> list[Ranked]:
    return _top(session, Story, (Story.title, Story.canonical_url), limit)


def top_outlets(session: Session, limit: int = 10) -> list[Ranked]:
    return _top(session, Outlet, (Outlet.key, Outlet.display_name), limit)


def _top(session: Session, model, labels: tuple, limit: int) -> list[Ranked]:
    """The `limit` stories or outlets with the most pickups, by their kept count (indexed)."""
    rows = session.execute(select(model.id, *labels, model.pickup_count).where(model.pickup_count > 0)
                           .order_by(model.pickup_count.desc(), model.id).limit(limit)).all()
    return [Ranked(*row) for row in rows]


def _granted_without_view(columns, when) -> Select:
    return select(*columns).select_from(Pickup).where(
        Pickup.decision == Decision.GRANTED, Pickup.viewed.is_(False), when)


def pixel_missing(session: Session, now: datetime, limit: int = 20) -> tuple[int, list[LogRow]]:
    """Granted pickups older than two days whose pixel never loaded in a browser: the snippet may have
    been pasted without it, or the story not published (yet). The count is every granted pickup without
    a view (kept per week) less the ones of the last two days (an index range)."""
    cutoff = now - PIXEL_GRACE
    all_weeks = session.scalar(select(func.sum(PickupWeek.unviewed)).where(
        PickupWeek.decision == Decision.GRANTED)) or 0
    recent = session.scalar(_granted_without_view((func.count(),), Pickup.first_requested_at >= cutoff)) or 0
    rows = session.execute(_granted_without_view(LOG_COLUMNS, Pickup.first_requested_at < cutoff)
                           .join(Outlet, Pickup.outlet_id == Outlet.id).join(Story, Pickup.story_id == Story.id)
                           .order_by(Pickup.first_requested_at.desc(), Pickup.id.desc()).limit(limit)).all()
    return int(all_weeks) - recent, [LogRow(*r) for r in rows]


@dataclass(frozen=True)
class Unreported:
    story_id: int
    story_title: str
    page_host: str
    page_url: str
    views: int
    first_hit: datetime
    last_hit: datetime


def unreported_pickups(session: Session, own_hosts: tuple[str, ...], limit: int = 20) -> list[Unreported]:
    """Pages that showed a story's pixel on a host that belongs to no outlet that picked the story up:
    copied from the site's own republish button, or passed along by a partner."""
    # An outlet's key comes from a sender's address: "%" or "_" in it must match only themselves.
    escaped_key = func.replace(func.replace(func.replace(Outlet.key, "/", "//"), "%", "/%"), "_", "/_")
    outlet_host = or_(PixelHit.page_host == Outlet.key,
                      PixelHit.page_host.like(literal("%.").concat(escaped_key), escape="/"))
    known = exists().where(Pickup.story_id == PixelHit.story_id, Pickup.outlet_id == Outlet.id, outlet_host)
    own = ([PixelHit.page_host == h for h in own_hosts] +
           [PixelHit.page_host.endswith(f".{h}", autoescape=True) for h in own_hosts])
    query = (select(PixelHit.story_id, Story.title, PixelHit.page_host, func.min(PixelHit.page_url), func.count(),
                    func.min(PixelHit.hit_at), func.max(PixelHit.hit_at))
             .join(Story, PixelHit.story_id == Story.id)
             .where(PixelHit.counted.is_(True), PixelHit.page_host != "", ~known)
             .group_by(PixelHit.story_id, Story.title, PixelHit.page_host)
             .order_by(func.max(PixelHit.hit_at).desc()).limit(limit))
    if own:
        query = query.where(~or_(*own))
    return [Unreported(s, t, h, u, n, _aware(a), _aware(b)) for s, t, h, u, n, a, b in session.execute(query).all()]


# -- one outlet, one story --------------------------------------------------------------------------

@dataclass(frozen=True)
class Contact:
    address: str
    requests: int
    last_seen: datetime


@dataclass(frozen=True)
class Reply:
    request_id: int
    subject: str
    recipient: str
    status: str
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class OutletPage:
    outlet: Outlet
    contacts: list[Contact]
    pickups: list[LogRow]
    pickup_total: int
    pixels: dict[int, PixelStats]
    replies: list[Reply]
    replies_sent: int
    views: int


def outlet_page(session: Session, outlet_id: int, limit: int = 200) -> OutletPage | None:
    outlet = session.get(Outlet, outlet_id)
    if outlet is None:
        return None
    contacts = [Contact(a, n, _aware(last)) for a, n, last in session.execute(
        select(Request.from_address, func.count(), func.max(Request.processed_at))
        .where(Request.outlet_id == outlet_id, Request.from_address != "")
        .group_by(Request.from_address).order_by(func.count().desc()).limit(50)).all()]
    flt = LogFilter(outlet=outlet.key)
    rows = [LogRow(*r) for r in session.execute(log_query(LOG_COLUMNS, flt).order_by(*NEWEST_FIRST).limit(limit)).all()]
    replies_query = select(OutboxMessage.request_id, Request.subject, OutboxMessage.recipients, OutboxMessage.status,
                           OutboxMessage.created_at, OutboxMessage.sent_at).join(
        Request, OutboxMessage.request_id == Request.id).where(Request.outlet_id == outlet_id)
    replies = [Reply(*r) for r in session.execute(replies_query.order_by(OutboxMessage.created_at.desc()).limit(50))]
    sent = session.scalar(select(func.count()).select_from(OutboxMessage).join(
        Request, OutboxMessage.request_id == Request.id).where(Request.outlet_id == outlet_id,
                                                               OutboxMessage.status == "sent")) or 0
    views = session.scalar(select(func.count()).select_from(PixelHit).join(Pickup, PixelHit.pickup_id == Pickup.id)
                           .where(Pickup.outlet_id == outlet_id, PixelHit.counted.is_(True))) or 0
    return OutletPage(outlet=outlet, contacts=contacts, pickups=rows,
                      pickup_total=session.scalar(log_query((func.count(),), flt)) or 0,
                      pixels=pixel_stats(session, [r.pickup_id for r in rows]), replies=replies,
                      replies_sent=sent, views=views)


@dataclass(frozen=True)
class LivePage:
    url: str
    host: str
    source: str  # "pixel" (seen by its pixel), or a LiveCopy's source: "email", "editor"
    views: int
    first_seen: datetime | None


@dataclass(frozen=True)
class StoryPage:
    story: Story
    pickups: list[LogRow]
    pickup_total: int
    pixels: dict[int, PixelStats]
    live: list[LivePage]
    preview: object = None  # a StoryPreview (processor/desk/story_preview.py): what a partner gets
    revisions: tuple = ()   # RevisionShown (processor/desk/corrections.py): its changes and who was told
    revision_total: int = 0


def story_page(session: Session, story_id: int, limit: int = 500) -> StoryPage | None:
    story = session.get(Story, story_id)
    if story is None:
        return None
    flt = LogFilter(story=str(story_id))
    rows = [LogRow(*r) for r in session.execute(log_query(LOG_COLUMNS, flt).order_by(*NEWEST_FIRST).limit(limit)).all()]
    live = [LivePage(url, host, "pixel", n, _aware(first)) for url, host, n, first in session.execute(
        select(PixelHit.page_url, PixelHit.page_host, func.count(), func.min(PixelHit.hit_at))
        .where(PixelHit.story_id == story_id, PixelHit.counted.is_(True), PixelHit.page_url != "")
        .group_by(PixelHit.page_url, PixelHit.page_host).order_by(func.count().desc()).limit(100)).all()]
    seen = {page.url for page in live}
    for copy in session.scalars(select(LiveCopy).where(LiveCopy.story_id == story_id).limit(100)):
        if copy.url not in seen:
            host = copy.url.split("/")[2] if copy.url.count("/") >= 2 else ""
            live.append(LivePage(copy.url, host, copy.source, 0, copy.first_seen_at))
    return StoryPage(story=story, pickups=rows, pickup_total=session.scalar(log_query((func.count(),), flt)) or 0,
                     pixels=pixel_stats(session, [r.pickup_id for r in rows]), live=live)

