"""The catalog as an editor reads it: every story with how often it was granted and declined."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from models import Decision, Pickup, Story


@dataclass(frozen=True)
class StoryRow:
    id: int
    url: str
    title: str
    published_at: datetime | None
    origin: str  # "" for our own stories
    granted: int
    declined: int


def story_counts(session: Session, *, search: str | None = None, limit: int | None = None) -> list[StoryRow]:
    granted = func.coalesce(func.sum(case((Pickup.decision == Decision.GRANTED, 1), else_=0)), 0)
    declined = func.coalesce(func.sum(case((Pickup.decision == Decision.DECLINED, 1), else_=0)), 0)
    query = (select(Story, granted, declined).outerjoin(Pickup, Pickup.story_id == Story.id)
             .group_by(Story.id).order_by(Story.published_at.desc(), Story.id.desc()))
    if search:
        words = search.strip().lower()  # "%" and "_" typed in a search are themselves, not wildcards
        query = query.where(or_(func.lower(Story.title).contains(words, autoescape=True),
                                func.lower(Story.canonical_url).contains(words, autoescape=True)))
    if limit:
        query = query.limit(limit)
    return [StoryRow(story.id, story.canonical_url, story.title, story.published_at, story.origin or "", g, d)
            for story, g, d in session.execute(query).all()]
