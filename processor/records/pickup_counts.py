"""Counts kept beside the pickups, so the dashboard's overview never aggregates the whole log.

`pickup_weeks` holds per week (the Monday, UTC, of the first request) and decision how many pickups
there are and how many of them never had a counted pixel view; `outlets.pickup_count` and
`stories.pickup_count` how many pickups each has; `pickups.viewed` whether a counted view was recorded.

Every change to a pickup goes through `PickupCounts`, in the transaction that changes the pickup: take
the pickup out (`remove`) before changing it, put it back (`add`) after, then `write` what changed.
`write` updates the rows in one statement per table and in one order (weeks, outlets, stories, each
sorted), so two transactions counting at once wait for each other instead of deadlocking. `recount`
rebuilds everything from the pickups (after a bulk load that went around this module).
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Date, bindparam, case, cast, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from models import Outlet, Pickup, PickupWeek, PixelHit, Story


def week_of(when: datetime) -> date:
    """The Monday (UTC) of the week `when` falls in."""
    day = when.astimezone(timezone.utc).date()
    return day - timedelta(days=day.weekday())


class PickupCounts:
    """The differences to the counts made by some changes to pickups, written at once by `write`."""

    def __init__(self) -> None:
        self.weeks: Counter[tuple[date, str]] = Counter()
        self.unviewed: Counter[tuple[date, str]] = Counter()
        self.outlets: Counter[int] = Counter()
        self.stories: Counter[int] = Counter()

    def add(self, pickup, sign: int = 1) -> None:
        """A pickup (or a row, or a PickupState: its outlet_id, story_id, first_requested_at,
        decision and viewed) into the counts."""
        key = (week_of(pickup.first_requested_at), pickup.decision)
        self.weeks[key] += sign
        if not pickup.viewed:
            self.unviewed[key] += sign
        self.outlets[pickup.outlet_id] += sign
        self.stories[pickup.story_id] += sign

    def remove(self, pickup) -> None:
        self.add(pickup, -1)

    def write(self, session: Session) -> None:
        weeks = [{"week": week, "decision": decision, "pickups": self.weeks[week, decision],
                  "unviewed": self.unviewed[week, decision]}
                 for week, decision in sorted(self.weeks.keys() | self.unviewed.keys())
                 if self.weeks[week, decision] or self.unviewed[week, decision]]
        if weeks:
            table = PickupWeek.__table__
            upsert = (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert(table)
            session.execute(upsert.on_conflict_do_update(
                index_elements=[table.c.week, table.c.decision],
                set_={"pickups": table.c.pickups + upsert.excluded.pickups,
                      "unviewed": table.c.unviewed + upsert.excluded.unviewed}), weeks)
        for model, deltas in ((Outlet, self.outlets), (Story, self.stories)):
            changes = [{"item": item, "delta": deltas[item]} for item in sorted(deltas) if deltas[item]]
            if changes:
                table = model.__table__
                session.execute(update(table).where(table.c.id == bindparam("item"))
                                .values(pickup_count=table.c.pickup_count + bindparam("delta")), changes)


def mark_viewed(session: Session, pickup_ids: set[int]) -> None:
    """These pickups had a counted view: those seen for the first time leave the "unviewed" counts.
    Setting the flag and reading what it was are one statement, so two writers never count one view twice."""
    if not pickup_ids:
        return
    counts = PickupCounts()
    for first_requested_at, decision in session.execute(
            update(Pickup).where(Pickup.id.in_(sorted(pickup_ids)), Pickup.viewed.is_(False)).values(viewed=True)
            .returning(Pickup.first_requested_at, Pickup.decision).execution_options(synchronize_session=False)):
        counts.unviewed[(week_of(first_requested_at), decision)] -= 1
    counts.write(session)


def week_expression(session: Session, column):
    """`week_of` in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.date_trunc("week", func.timezone("UTC", column)), Date)
    # SQLite keeps UTC text: back to the Monday on or before the day, as the text a Date column holds.
    return func.date(column, "-6 days", "weekday 1")


def recount(session: Session) -> None:
    """Every count again from the pickups and their pixel hits."""
    counted = select(PixelHit.pickup_id).where(PixelHit.counted.is_(True), PixelHit.pickup_id.is_not(None))
    for viewed, found in ((False, Pickup.id.not_in(counted)), (True, Pickup.id.in_(counted))):
        session.execute(update(Pickup).where(Pickup.viewed.is_(not viewed), found).values(viewed=viewed)
                        .execution_options(synchronize_session=False))
    for model, column in ((Outlet, Pickup.outlet_id), (Story, Pickup.story_id)):
        session.execute(update(model).values(pickup_count=select(func.count()).where(column == model.id)
                                             .scalar_subquery()).execution_options(synchronize_session=False))
    session.execute(delete(PickupWeek))
    week = week_expression(session, Pickup.first_requested_at)
    session.execute(insert(PickupWeek).from_select(
        ["week", "decision", "pickups", "unviewed"],
        select(week, Pickup.decision, func.count(), func.sum(case((Pickup.viewed.is_(True), 0), else_=1)))
        .group_by(week, Pickup.decision)))
