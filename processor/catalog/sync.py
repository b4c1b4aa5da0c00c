"""Keeping the catalog current from the publication's own feeds ([catalog] feeds).

Each feed is asked with a conditional GET (the ETag and Last-Modified of the copy read before), so a
feed that has not changed costs one request and a 304. A changed feed is imported: new stories added,
known ones brought up to date, and a story whose text changed gets a revision (`upsert_story`). A feed
carrying summaries only is completed from the story pages, on the publication's own hosts, for new
stories and for those outlets were granted lately (the ones whose corrections someone must hear of),
at most MAX_PAGES_PER_IMPORT pages a poll and none started after PAGES_SECONDS: the worker polls between
passes over the mailbox, and a slow site must not hold the requests back (a new story whose page was not
read stays summary-only until its first request, or the next poll).

A feed that is down, malformed or suddenly empty changes nothing, and its problem is logged once (and
its recovery once), not on every poll. A story that leaves the feed stays in the catalog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Decision, FeedState, Pickup, Story
from processor.catalog.extract import Article
from processor.catalog.feeds import looks_like_feed
from processor.catalog.fetch import FetchedPage, FetchError
from processor.catalog.stories import (MAX_PAGES_PER_IMPORT, ImportFailed, complete_summaries, import_articles,
                                       parse_source)
from processor.config import PublicationConfig
from processor.urls import url_key

log = logging.getLogger(__name__)
PAGES_SECONDS = 30.0  # of page reading a poll, at most (then the pages wait for the next poll)

# fetch(url, etag=..., last_modified=...) -> the page, or a `not_modified` one (`fetch.fetch_page`, bound to
# the publication's hosts and the limits); FetchError when it cannot be had
Fetch = Callable[..., FetchedPage]


@dataclass
class FeedPoll:
    url: str
    outcome: str = "read"      # "read", "not modified", "failed" (the problem says why)
    created: int = 0
    updated: int = 0
    revised: list[int] = field(default_factory=list)  # revision ids
    problem: str = ""


def poll_feed(session: Session, url: str, *, publication: PublicationConfig, fetch: Fetch, recent_since: datetime,
              now: datetime, pages_seconds: float = PAGES_SECONDS) -> FeedPoll:
    """Read one feed if it changed and import it; the caller commits."""
    state = session.scalars(select(FeedState).where(FeedState.url == url)).first()
    if state is None:
        state = FeedState(url=url, etag="", last_modified="", items=0, problem="")
        session.add(state)
    state.checked_at = now
    try:
        page = fetch(url, etag=state.etag, last_modified=state.last_modified)
        if page.not_modified:
            return _fine(state, FeedPoll(url, "not modified"))
        if not looks_like_feed(page.content):  # an error page served with 200 is no story
            raise ImportFailed(f"{url} is not an RSS or Atom feed")
        articles = parse_source(page.content, url=page.url, publication=publication, charset=page.charset)
    except (FetchError, ImportFailed) as exc:
        return _trouble(state, url, str(exc))
    articles = _completed(session, articles, publication, fetch, recent_since, pages_seconds)
    report = import_articles(session, articles, source=url, now=now)
    state.etag, state.last_modified, state.items = page.etag, page.last_modified, len(articles)
    return _fine(state, FeedPoll(url, "read", len(report.created), len(report.updated), report.revised))


def _completed(session: Session, articles: list[Article], publication: PublicationConfig, fetch: Fetch,
               recent_since: datetime, pages_seconds: float) -> list[Article]:
    """The feed's summaries completed from their pages: new stories first, then those granted to an outlet
    since `recent_since`; the rest keep the text read before (a summary never replaces it)."""
    teasers = [article for article in articles if article.summary_only]
    if not teasers:
        return articles
    keys = {url_key(article.canonical_url): article for article in teasers}
    known = set(session.scalars(select(Story.url_key).where(Story.url_key.in_(list(keys)),
                                                            Story.summary_only.is_(False))))
    granted = set(session.scalars(
        select(Story.url_key).join(Pickup, Pickup.story_id == Story.id)
        .where(Story.url_key.in_(list(known)), Pickup.decision == Decision.GRANTED,
               Pickup.first_requested_at >= recent_since)))
    wanted = [a for key, a in keys.items() if key not in known] + [a for key, a in keys.items() if key in granted]
    chosen = {id(article) for article in wanted[:MAX_PAGES_PER_IMPORT]}
    read = iter(complete_summaries([article for article in articles if id(article) in chosen],
                                   publication=publication, fetch=fetch, seconds=pages_seconds))
    return [next(read) if id(article) in chosen else article for article in articles]


def _fine(state: FeedState, poll: FeedPoll) -> FeedPoll:
    if state.problem:
        log.info("feed %s is readable again (%s)", state.url, poll.outcome)
        state.problem = ""
    return poll


def _trouble(state: FeedState, url: str, problem: str) -> FeedPoll:
    if problem != state.problem:  # once, not on every poll
        log.warning("feed %s: %s (the catalog keeps what it has; logged once until this changes)", url, problem)
        state.problem = problem[:2000]
    return FeedPoll(url, "failed", problem=problem)
