"""The review queue: requests the worker left for a person, and what the person decides about them.

A person grants, declines, answers or dismisses a request. Granting or declining records the pickups
and puts the reply in the outbox, built by the same function as the worker's own replies; answering
puts the editor's own words, with the guidelines, in the outbox (after the worker's reply, if one
went out). Every resolution, and a reopening, is also noted for the mailbox (`Request.mailbox_sync`):
the worker unflags or flags the message on its next pass. The
caller commits, then sends that one reply through the pipeline's sending loop (`send_now`, with a
sender handed in by the wiring), which gives it the same retries, Sent copy and "never twice"
bookkeeping; or a running worker sends it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Decision, MailboxSync, Outcome, Pickup, PickupRequest, ReplyKind, Request, SendStatus, Story
from processor.catalog import stories as catalog
from processor.config import Config
from processor.pipeline.answer import compose_reply, story_decisions
from processor.pipeline.classify import outlet_key
from processor.pipeline.decide import Plan, StoryDecision
from processor.pipeline.recipients import choose_recipient, mailbox_key
from processor.pipeline.reply import StoredMessage
from processor.records import outbox, pickups as pickup_rows, requests
from processor.urls import url_key

log = logging.getLogger(__name__)
ACTIONS = ("grant", "decline", "answer", "dismiss")
RESOLUTIONS = {"grant": "granted", "decline": "declined", "answer": "answered", "dismiss": "dismissed"}


class ReviewError(Exception):
    """The request cannot be resolved that way; the message says why, for the editor."""


@dataclass(frozen=True)
class ReviewItem:
    request_id: int
    processed_at: datetime
    outlet: str
    from_address: str
    subject: str
    reason: str
    stories: tuple[tuple[int, str, str, str], ...]  # (story id, canonical url, title, decision or "")
    has_reply: bool
    words: str = ""   # what the partner wrote
    automated: bool = False  # a delivery report or an auto-reply: nobody to answer, only to dismiss


def review_queue(session: Session, limit: int | None = None) -> list[ReviewItem]:
    """Requests that need a person and have not been resolved, oldest first."""
    query = (select(Request).where(Request.needs_person.is_(True), Request.resolution.is_(None))
             .order_by(Request.processed_at, Request.id))
    if limit:
        query = query.limit(limit)
    return [review_item(session, request) for request in session.scalars(query)]


def review_item(session: Session, request: Request) -> ReviewItem:
    return ReviewItem(
        request_id=request.id,
        processed_at=request.processed_at,
        outlet=request.outlet.key if request.outlet else "",
        from_address=request.from_address,
        subject=request.subject,
        reason=request.reason,
        stories=tuple((story.id, story.canonical_url, story.title, decision)
                      for story, decision in _request_stories(session, request.id)),
        has_reply=bool(request.replies),
        words=request.words,
        automated=request.outcome == Outcome.IGNORED,
    )


def recent_titles(session: Session, limit: int = 300) -> list[str]:
    """The newest stories' titles, offered while an editor types which story a request means."""
    return list(session.scalars(select(Story.title).where(Story.title != "")
                                .order_by(Story.published_at.desc(), Story.id.desc()).limit(limit)))


def resolve(session: Session, request_id: int, action: str, *, editor: str, config: Config, now: datetime,
            story_refs: tuple[str, ...] = (), note: str = "",
            new_token: Callable[[], str] = lambda: secrets.token_urlsafe(16),
            new_message_id: Callable[[str], str] = lambda domain: make_msgid(domain=domain).strip("<>")) -> str:
    """Record what the editor decided; for grant/decline, queue the reply. Returns a one-line summary."""
    if action not in ACTIONS:
        raise ReviewError(f"unknown action {action[:40]!r}: use one of {', '.join(ACTIONS)}")
    if len(note.strip()) > ANSWER_CHARS:  # never cut an editor's words without saying so
        raise ReviewError(f"your text is {len(note.strip()):,} characters long; at most {ANSWER_CHARS:,} go in a reply")
    # Locked till commit (PostgreSQL): two editors clicking at once, or a form sent twice, resolve it once;
    # the second finds it resolved. (SQLite has one writer: the second is told the database is busy.)
    request = session.get(Request, request_id, with_for_update=True)
    if request is None:
        raise ReviewError(f"there is no request {request_id}")
    if request.resolution is not None:
        raise ReviewError(f"request {request_id} was already resolved ({request.resolution} by "
                          f"{request.resolved_by or 'someone'})")
    summary = f"request {request_id} dismissed"
    if action in ("grant", "decline"):
        summary = _grant_or_decline(session, request, Decision.GRANTED if action == "grant" else Decision.DECLINED,
                                    editor=editor, config=config, now=now, story_refs=story_refs, note=note,
                                    new_token=new_token, new_message_id=new_message_id)
    elif action == "answer":
        summary = _answer_in_own_words(session, request, editor=editor, config=config, now=now, text=note,
                                       new_message_id=new_message_id)
    request.resolution = RESOLUTIONS[action]
    request.resolved_at = now
    request.resolved_by = editor[:320]
    request.mailbox_sync = MailboxSync.RESOLVED
    session.flush()
    log.info("%s by %s", summary, editor)
    return summary


def reopen(session: Session, request_id: int, *, editor: str, now: datetime) -> str:
    """Put a resolved request back on the queue (dismissed by mistake, say); what was sent stays sent."""
    request = session.get(Request, request_id, with_for_update=True)
    if request is None:
        raise ReviewError(f"there is no request {request_id}")
    if request.resolution is None and request.needs_person:
        raise ReviewError(f"request {request_id} is on the queue already")
    was = f"{request.resolution} by {request.resolved_by or 'someone'}" if request.resolution else str(request.outcome)
    request.resolution = None
    request.resolved_at = None
    request.resolved_by = ""
    request.needs_person = True
    request.mailbox_sync = MailboxSync.REOPENED
    request.reason = f"{request.reason}; reopened by {editor} on {now:%Y-%m-%d %H:%M} UTC (was {was})"[:4000]
    session.flush()
    log.info("request %d reopened by %s", request_id, editor)
    return f"request {request_id} reopened (was {was})"


def _grant_or_decline(session: Session, request: Request, decision: Decision, *, editor: str, config: Config,
                      now: datetime, story_refs: tuple[str, ...], note: str, new_token: Callable[[], str],
                      new_message_id: Callable[[str], str]) -> str:
    if request.replies or request.reply_message_id:
        raise ReviewError(f"request {request.id} was already answered (reply {request.reply_message_id}): "
                          f"answer it in your own words, or dismiss it")
    recipient = _recipient(session, request)
    stories = _catalog_stories(session, story_refs) if story_refs else [
        catalog.view(story) for story, _ in _request_stories(session, request.id)]
    if not stories:
        raise ReviewError(f"no story was identified in request {request.id}: say which story it is about")
    outlet = (requests.merge_target(session, request.outlet) if request.outlet is not None
              else requests.outlet_for(session, outlet_key(request.from_address), "", now))
    request.outlet = outlet
    verb = "granted" if decision == Decision.GRANTED else "declined"
    plan = Plan(Outcome.ANSWERED, needs_person=False, reply=True, reasons=(f"{verb} by {editor}",),
                stories=tuple(StoryDecision(story, decision, f"{verb} by {editor}") for story in stories))
    rows = requests.NewRows(pickup_rows.pickups_for(session, [(outlet.id, story.id) for story in stories]))
    answered = requests.RequestRef(None, request.id)
    pickups = rows.add_pickups(answered, outlet.id, story_decisions(plan), when=request.sent_at or now,
                               new_token=new_token)
    message_id = new_message_id(config.reply_domain)
    reply = compose_reply(plan, _stored(request), recipient=recipient, outlet_id=outlet.id, pickups=pickups,
                          config=config, message_id=message_id, now=now, answered_by=editor, note=note.strip())
    rows.add_reply(answered, raw=reply, message_id=message_id, recipient=recipient, now=now)
    rows.write(session)
    request.reply_message_id = message_id
    request.outcome = Outcome.PENDING
    titles = ", ".join(f'"{story.title}"' for story in stories)
    return f"request {request.id} {verb} ({titles}): reply to {recipient} queued"


def _answer_in_own_words(session: Session, request: Request, *, editor: str, config: Config, now: datetime,
                         text: str, new_message_id: Callable[[str], str]) -> str:
    """The editor's own reply, in the thread, with the guidelines; it records no pickup (grant does that)."""
    text = text.strip()
    if not text:
        raise ReviewError(f"say what to answer to request {request.id}: the text is empty")
    recipient = _recipient(session, request)
    plan = Plan(Outcome.ANSWERED, needs_person=False, reply=True, reasons=(f"answered by {editor}",))
    message_id = new_message_id(config.reply_domain)
    outlet_id = request.outlet_id or 0  # the reply carries no snippet, so no pixel names the outlet
    reply = compose_reply(plan, _stored(request), recipient=recipient, outlet_id=outlet_id, pickups={},
                          config=config, message_id=message_id, now=now, answered_by=editor,
                          note=text, guidelines=True)
    rows = requests.NewRows({})
    rows.add_reply(requests.RequestRef(None, request.id), raw=reply, message_id=message_id, recipient=recipient,
                   now=now, kind=ReplyKind.ANSWER)
    rows.write(session)
    request.outcome = Outcome.PENDING
    return f"request {request.id} answered: reply to {recipient} queued"


ANSWER_CHARS = 20_000  # an editor's answer: a few paragraphs, never a whole story pasted in


def _recipient(session: Session, request: Request) -> str:
    if request.outcome == Outcome.IGNORED:
        # A delivery report or an auto-reply: answering it would write to a mail system, not a person.
        raise ReviewError(f"request {request.id} is an automated message ({request.reason[:200]}): dismiss it")
    known = (requests.addresses_used(session, [request.outlet_id]).get(request.outlet_id, set())
             if request.outlet_id is not None else set())
    recipient = choose_recipient(request.from_address, request.reply_to,
                                 frozenset(mailbox_key(address) for address in known if address)).address
    if recipient is None:
        raise ReviewError(f"request {request.id} has no usable address to reply to: answer it by hand, then dismiss it")
    return recipient


def _stored(request: Request) -> StoredMessage:
    return StoredMessage(from_address=request.from_address, reply_to_address=request.reply_to,
                         message_id=request.message_id, from_name=request.from_name)


def send_now(sessions, request_id: int, send_reply: Callable[[int], bool | None]) -> str:
    """Send the reply just queued (and committed) for a resolved request with `send_reply` (outbox id -> sent
    now?, None when a running worker sends it); what became of it, in one line for the editor."""
    with sessions() as session:
        outbox_id = outbox.latest_reply_of(session, request_id)
    if outbox_id is not None:
        send_reply(outbox_id)
    with sessions() as session:
        return reply_status(session, request_id)


def _request_stories(session: Session, request_id: int) -> list[tuple[Story, str]]:
    rows = session.execute(
        select(Story, PickupRequest.decision)
        .join(Pickup, Pickup.story_id == Story.id)
        .join(PickupRequest, PickupRequest.pickup_id == Pickup.id)
        .where(PickupRequest.request_id == request_id)
        .order_by(Story.id)
    ).all()
    return [(story, decision or "") for story, decision in rows]


def _catalog_stories(session: Session, story_refs: tuple[str, ...]) -> list[catalog.StoryView]:
    """The stories an editor named, each by its URL (any form of it) or by words of its title."""
    urls = [ref for ref in story_refs if "://" in ref]
    found = catalog.stories_by_url_keys(session, tuple(url_key(url) for url in urls))
    missing = [url for url in urls if url_key(url) not in found]
    if missing:
        raise ReviewError(f"not in the story catalog: {', '.join(missing)} (import it with `republish stories import`)")
    chosen = [found[url_key(url)] for url in urls]
    for words in (ref for ref in story_refs if "://" not in ref):
        chosen.append(_story_by_title_words(session, words))
    unique = {story.id: story for story in chosen}
    return list(unique.values())


def _story_by_title_words(session: Session, words: str) -> catalog.StoryView:
    from processor.desk.story_stats import story_counts

    matches = story_counts(session, search=words, limit=4)
    if not matches:
        raise ReviewError(f"no story in the catalog has {words!r} in its title or address")
    if len(matches) > 1:
        titles = "; ".join(f'"{row.title}"' for row in matches[:3])
        raise ReviewError(f"more than one story matches {words!r} ({titles}{'; …' if len(matches) > 3 else ''}): "
                          f"type more of the title, or its address")
    return catalog.view(session.get(Story, matches[0].id))


def reply_status(session: Session, request_id: int) -> str:
    """What became of the latest reply to a resolved request, in one line for the editor."""
    request = session.get(Request, request_id)
    outbox = request.replies[-1] if request is not None and request.replies else None
    if outbox is None:
        return "no reply queued"
    if outbox.status == SendStatus.SENT:
        return f"reply sent to {outbox.recipients}"
    if outbox.status == SendStatus.PENDING:
        why = f" (last attempt: {outbox.last_error})" if outbox.last_error else ""
        return f"reply to {outbox.recipients} queued: the worker sends it{why}"
    return f"reply to {outbox.recipients} {outbox.status}: {outbox.last_error}"
