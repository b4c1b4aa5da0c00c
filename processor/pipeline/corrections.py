"""Corrections: the catalog read again from the publication's feeds, and every outlet that ran a changed
story told, in the thread of the reply that gave it the story.

For each feed (`catalog.sync.poll_feed`), the import and the notices for the revisions it made are one
transaction: a crash leaves either both or neither, and the unique (revision, pickup) row keeps a
second poll, or a second worker, from telling an outlet twice. A notice is queued in the outbox like a
reply (sent by the same loop, with its retries, Sent copy and "never twice" bookkeeping) and counts
against the same caps; over a cap, or with `[corrections] mode = "review"`, it waits in the review
queue for an editor to send or drop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from models import CorrectionNotice, NoticeState, ReplyKind, Story, StoryRevision
from processor.catalog import stories as catalog
from processor.catalog.sync import Fetch, FeedPoll, poll_feed
from processor.config import Config
from processor.pipeline.recipients import Caps, ReplyBudget
from processor.pipeline.reply import NoticeThread, ReplyContext, build_notice
from processor.pipeline.snippet import build_snippet
from processor.records import notices, outbox, requests
from processor.records.errors import unavailable
from processor.records.notices import NoticeTarget

log = logging.getLogger(__name__)
NOTICE_INTERVAL = timedelta(hours=24)  # between two notices about one story to one outlet


@dataclass
class Told:
    queued: list[int] = field(default_factory=list)   # outbox ids of the notices queued
    waiting: int = 0                                  # notices left for an editor


@dataclass
class CatalogSync:
    polls: list[FeedPoll] = field(default_factory=list)
    told: Told = field(default_factory=Told)


def sync_catalog(sessions, config: Config, *, fetch: Fetch, now: datetime,
                 new_message_id: Callable[[str], str]) -> CatalogSync:
    """Poll every feed of [catalog] feeds; tell the outlets of what changed. One transaction per feed."""
    result = CatalogSync()
    since = now - timedelta(days=config.corrections.max_age_days)
    for url in config.catalog.feeds:
        try:
            with sessions() as session:
                poll = poll_feed(session, url, publication=config.publication, fetch=fetch, recent_since=since,
                                 now=now)
                told = tell_outlets(session, poll.revised, config=config, now=now, new_message_id=new_message_id)
                session.commit()
        except SQLAlchemyError as exc:
            if unavailable(exc):
                raise
            # Another poller wrote the same new story or feed first (PostgreSQL, two workers): this feed is
            # read again at the next poll, and the others now.
            log.warning("feed %s: not imported this time (%s); the next poll reads it again", url,
                        type(exc).__name__)
            result.polls.append(FeedPoll(url, "failed", problem=f"{type(exc).__name__}: another poller was "
                                                                 f"writing the same stories"))
            continue
        result.polls.append(poll)
        result.told.queued += told.queued
        result.told.waiting += told.waiting
        if poll.revised:
            log.info("feed %s: %d story(ies) changed; %d outlet(s) told, %d notice(s) wait for an editor",
                     url, len(poll.revised), len(told.queued), told.waiting)
    return result


def tell_outlets(session: Session, revision_ids: list[int], *, config: Config, now: datetime,
                 new_message_id: Callable[[str], str]) -> Told:
    """A notice for each outlet granted a story that these revisions changed (pickups of the last
    [corrections] max_age_days whose reply went out); queued, or left for an editor. The notices' outbox
    rows are written together, in a few statements."""
    told = Told()
    if not revision_ids:
        return told
    worker = config.worker
    budget = ReplyBudget(Caps(worker.max_replies_per_sender_per_day, worker.max_replies_per_domain_per_day,
                              worker.max_replies_per_hour), now, outbox.replies_since(session, now - timedelta(days=1)))
    since = now - timedelta(days=config.corrections.max_age_days)
    rows = requests.NewRows({})
    queued: list[tuple[int, int, requests.ReplyRow]] = []  # (revision id, pickup id, its outbox row)
    told_now: dict[int, set[int]] = {}  # story id -> pickups queued a notice above
    for revision_id in revision_ids:
        revision = session.get(StoryRevision, revision_id)
        story = catalog.view(session.get(Story, revision.story_id))
        done = notices.already_told(session, revision_id)
        # A story changing again and again (a live page) tells each outlet once a day; the rest wait.
        lately = notices.told_since(session, revision.story_id, now - NOTICE_INTERVAL) | told_now.get(
            revision.story_id, set())
        for target in notices.targets(session, revision.story_id, since):
            if target.pickup_id in done:
                continue
            why = ('waits for an editor: [corrections] mode = "review"' if config.corrections.mode == "review"
                   else f"the story now reads as not ours to give (from {story.origin}): an editor decides"
                   if not story.free_to_republish
                   else "this outlet was sent a notice about this story in the last 24 hours: an editor decides"
                   if target.pickup_id in lately else budget.over(target.recipient))
            if why:
                notices.add(session, revision_id=revision_id, pickup_id=target.pickup_id, state=NoticeState.WAITING,
                            now=now, reason=why)
                told.waiting += 1
                continue
            queued.append((revision_id, target.pickup_id, _add_notice(rows, story, revision, target, config=config,
                                                                      now=now, new_message_id=new_message_id)))
            told_now.setdefault(revision.story_id, set()).add(target.pickup_id)
            budget.spend(target.recipient)
    rows.write(session)
    for revision_id, pickup_id, row in queued:
        notices.add(session, revision_id=revision_id, pickup_id=pickup_id, state=NoticeState.QUEUED, now=now,
                    outbox_id=row.id)
        told.queued.append(row.id)
    session.flush()
    return told


def queue_notice(session: Session, revision: StoryRevision, target: NoticeTarget, *, config: Config, now: datetime,
                 new_message_id: Callable[[str], str]) -> int:
    """One notice built and put in the outbox, in the thread of the reply `target` names; its outbox id."""
    rows = requests.NewRows({})
    row = _add_notice(rows, catalog.view(session.get(Story, revision.story_id)), revision, target, config=config,
                      now=now, new_message_id=new_message_id)
    rows.write(session)
    return row.id


def _add_notice(rows: requests.NewRows, story: catalog.StoryView, revision: StoryRevision, target: NoticeTarget, *,
                config: Config, now: datetime, new_message_id: Callable[[str], str]) -> requests.ReplyRow:
    snippet = build_snippet(story, config.publication, outlet_id=target.outlet_id, token=target.token)
    message_id = new_message_id(config.reply_domain)
    context = ReplyContext(config.publication, config.reply_from, message_id, now, from_name=config.reply_name)
    thread = NoticeThread(target.recipient, target.request_message_id, target.reply_message_id, target.from_name)
    changes = [tuple(pair) for pair in json.loads(revision.changes or "[]")]
    raw = build_notice(story, revision.note, changes, snippet, thread, context)
    return rows.add_reply(requests.RequestRef(None, target.request_id), raw=raw, message_id=message_id,
                          recipient=target.recipient, now=now, kind=ReplyKind.CORRECTION)


EVER = datetime(1970, 1, 1, tzinfo=timezone.utc)  # an editor's decision is not bound by max_age_days


class NoticeError(Exception):
    """The notice cannot be sent or dropped that way; the message says why, for the editor."""


def decide_notice(session: Session, notice_id: int, send: bool, *, editor: str, config: Config, now: datetime,
                  new_message_id: Callable[[str], str]) -> str:
    """An editor sends (queues) or drops a notice that waits; a one-line summary. The caller commits."""
    notice = session.get(CorrectionNotice, notice_id, with_for_update=True)  # two editors at once: one decides
    if notice is None:
        raise NoticeError(f"there is no correction notice {notice_id}")
    if notice.state != NoticeState.WAITING:
        raise NoticeError(f"correction notice {notice_id} was already {notice.state}"
                          f"{' by ' + notice.decided_by if notice.decided_by else ''}")
    outlet = notice.pickup.outlet_id
    if send:
        target = next((t for t in notices.targets(session, notice.pickup.story_id, EVER)
                       if t.pickup_id == notice.pickup_id), None)
        if target is None:
            raise NoticeError(f"correction notice {notice_id}: the reply it would answer is gone; drop it")
        notice.outbox_id = queue_notice(session, notice.revision, target, config=config, now=now,
                                        new_message_id=new_message_id)
    notice.state = NoticeState.QUEUED if send else NoticeState.DROPPED
    notice.decided_by = editor[:320]
    notice.decided_at = now
    session.flush()
    verb = "queued" if send else "dropped"
    log.info("correction notice %d (outlet %d) %s by %s", notice_id, outlet, verb, editor)
    return f"correction notice {notice_id} {verb}"
