"""Corrections as an editor reads them: a story's revisions and who was told of each, and the notices
waiting in the review queue for an editor to send or drop."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import NoticeState, StoryRevision
from processor.desk.listings import printable
from processor.records import notices
from processor.records.notices import NoticeRow


@dataclass(frozen=True)
class RevisionShown:
    id: int
    created_at: datetime
    source: str
    note: str
    changes: tuple[tuple[str, str], ...]
    told: tuple[NoticeRow, ...]


REVISIONS_SHOWN = 20  # the newest; a live page may have thousands


def revisions_of(session: Session, story_id: int, limit: int = REVISIONS_SHOWN) -> list[RevisionShown]:
    """A story's newest revisions, newest first, each with the outlets told of it (or waiting to be)."""
    revisions = list(session.scalars(select(StoryRevision).where(StoryRevision.story_id == story_id)
                                     .order_by(StoryRevision.id.desc()).limit(limit)))
    told: dict[int, list[NoticeRow]] = {}
    for row in notices.listed(session, revision_ids=[revision.id for revision in revisions], limit=limit * 100):
        told.setdefault(row.revision_id, []).append(row)
    return [RevisionShown(revision.id, revision.created_at, revision.source, revision.note,
                          tuple(tuple(pair) for pair in json.loads(revision.changes or "[]")),
                          tuple(told.get(revision.id, ())))
            for revision in revisions]


def revision_count(session: Session, story_id: int) -> int:
    return session.scalar(select(func.count()).select_from(StoryRevision)
                          .where(StoryRevision.story_id == story_id)) or 0


def waiting_notices(session: Session, limit: int = 200) -> list[NoticeRow]:
    return notices.listed(session, state=NoticeState.WAITING, limit=limit)


def notice_status(row: NoticeRow) -> str:
    """What became of one notice, in a few words."""
    if row.state == NoticeState.QUEUED:
        return {"sent": "told", "pending": "queued", "sending": "being sent"}.get(row.send_status, row.send_status)
    if row.state == NoticeState.DROPPED:
        return f"dropped by {row.decided_by or '?'}"
    return f"waiting for an editor ({row.reason})"


def format_revisions(revisions: list[RevisionShown], total: int | None = None) -> str:
    if not revisions:
        return "Revisions:  none (the text has not changed since it was first read)\n"
    shown = f" (the newest {len(revisions)} of {total})" if total and total > len(revisions) else ""
    lines = [f"Revisions:{shown}"]
    for revision in revisions:
        lines.append(f"  {revision.created_at:%Y-%m-%d %H:%M} UTC, read from {revision.source}")
        if revision.note:
            lines.append(f"    Note:  {revision.note}")
        for before, after in revision.changes:
            lines += ([f"    Was:   {before}"] if before else []) + ([f"    Now:   {after}"] if after else [])
        for row in revision.told or ():
            lines.append(f"    {row.outlet}: {notice_status(row)} (notice {row.id})")
        if not revision.told:
            lines.append("    no outlet to tell (none was granted it lately)")
    return printable("\n".join(lines)) + "\n"


def format_waiting(rows: list[NoticeRow]) -> str:
    if not rows:
        return ""
    lines = ["Correction notices waiting (republish review send-notice ID / drop-notice ID):"]
    lines += [f"  {row.id:>6}  {row.outlet}: \"{row.story_title}\" changed; {row.reason}" for row in rows]
    return printable("\n".join(lines)) + "\n"
