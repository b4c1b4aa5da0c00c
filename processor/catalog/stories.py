"""The story catalog: importing stories from pages and feeds, and the read-only view the pipeline matches against.

Import is idempotent: a story is keyed by its normalised canonical URL, so importing the same
page or feed again updates the stories in place. The session is opened and committed by the caller.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Text, any_, bindparam, delete, func, insert, or_, select
from sqlalchemy.orm import Session

from models import Story, StoryRevision, TitleRun
from processor.catalog.revisions import reader_text, revision
from processor.catalog.titles import RUN_WORDS, title_key, title_runs
from processor.config import PublicationConfig
from processor.catalog.extract import Article, NotAnArticle, decode_html, extract_article
from processor.catalog.feeds import NotAFeed, looks_like_feed, parse_feed
from processor.catalog.fetch import FetchedPage, FetchError, fetch_page
from processor.urls import host_matches, url_host, url_key


@dataclass(frozen=True)
class StoryView:
    """A catalog story as plain data, for the pure steps (decide, snippet, reply)."""

    id: int
    canonical_url: str
    title: str
    slug: str
    byline: str
    published_at: datetime | None
    body_html: str
    origin: str | None
    origin_evidence: str
    summary_only: bool = False

    @property
    def free_to_republish(self) -> bool:
        return self.origin is None


@dataclass
class ImportReport:
    source: str
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    revised: list[int] = field(default_factory=list)  # ids of the revisions made (a changed text)

    @property
    def ok(self) -> bool:
        return not self.failed


class ImportFailed(Exception):
    """A source could not be imported at all; the message says why."""


def view(story: Story) -> StoryView:
    return StoryView(
        id=story.id,
        canonical_url=story.canonical_url,
        title=story.title,
        slug=story.slug,
        byline=story.byline,
        published_at=story.published_at,
        body_html=story.body_html,
        origin=story.origin,
        origin_evidence=story.origin_evidence,
        summary_only=story.summary_only,
    )


def parse_source(data: bytes, *, url: str | None, publication: PublicationConfig, charset: str | None = None) -> list[Article]:
    """Bytes of a page or a feed -> articles. Raises ImportFailed with the reason."""
    own_names = (publication.name, *publication.allowed_hosts)
    try:
        if looks_like_feed(data):
            return parse_feed(data, wire_sources=publication.wire_sources, own_names=own_names)
        html = decode_html(data, charset)
        return [extract_article(html, url=url, wire_sources=publication.wire_sources, own_names=own_names)]
    except (NotAnArticle, NotAFeed) as exc:
        raise ImportFailed(str(exc)) from None


def read_source(source: str, *, publication: PublicationConfig, timeout: float, max_bytes: int) -> tuple[bytes, str | None, str | None]:
    """(bytes, url, charset) of a URL on the publication's hosts, or of a local file."""
    if source.startswith(("http://", "https://")):
        try:
            page = fetch_page(source, allowed_hosts=publication.allowed_hosts, timeout=timeout, max_bytes=max_bytes)
        except FetchError as exc:
            raise ImportFailed(str(exc)) from None
        return page.content, page.url, page.charset
    path = Path(source)
    try:
        if path.stat().st_size > max_bytes:
            raise ImportFailed(f"{source} is larger than the {max_bytes}-byte limit")
        return path.read_bytes(), None, None
    except OSError as exc:
        raise ImportFailed(f"{source}: {exc.strerror or exc}") from None


def import_articles(session: Session, articles: list[Article], *, source: str, now: datetime) -> ImportReport:
    report = ImportReport(source)
    for article in articles:
        key = url_key(article.canonical_url) if article.canonical_url else None
        if not key:
            report.failed.append((article.title[:80] or "?", "no canonical URL"))
            continue
        story, created, revised = upsert_story(session, article, key=key, source=source, now=now)
        (report.created if created else report.updated).append(story.canonical_url)
        if revised is not None:
            report.revised.append(revised.id)
    return report


def upsert_story(session: Session, article: Article, *, key: str, source: str, now: datetime
                 ) -> tuple[Story, bool, StoryRevision | None]:
    """The story stored or brought up to date; whether it is new; and the revision its text got, if a reader
    would notice the change (a story read whole before, and whole again now, the same way)."""
    # Locked till commit (PostgreSQL; SQLite has one writer anyway): two pollers reading the same change make
    # one revision, not two, so no outlet is told twice.
    story = session.scalars(select(Story).where(Story.url_key == key).with_for_update()).first()
    created = story is None
    if story is None:
        story = Story(url_key=key, created_at=now)
        session.add(story)
    # A revision compares two readings of one kind (two feeds' content, or the page read twice, whichever feed
    # or command read it): a story first read from its page and now from a feed's content (or back) takes the
    # new text quietly, since the two extractions of one story differ in ways that are not corrections.
    same_reading = (not created and story.reading == article.reading and not story.summary_only
                    and bool(story.body_html))
    # The same markup and title: nothing to compare (most items of a feed read again).
    unchanged = story.title == article.title and story.body_html == article.body_html
    was_read = reader_text(story.title, story.body_html) if same_reading and not unchanged else None
    story.canonical_url = article.canonical_url[:2048]
    story.title = article.title
    key_of_title = title_key(article.title)[:1024]
    retitled = created or story.title_key != key_of_title
    story.title_key = key_of_title
    story.slug = slug_for(article.canonical_url, article.title)
    story.byline = article.byline
    story.published_at = article.published_at
    story.language = article.language
    if not (article.summary_only and story.body_html and not story.summary_only):
        # A feed's summary never replaces the whole story read from its page before.
        story.body_html = article.body_html
        story.summary_only = article.summary_only
        story.reading = article.reading
    if story.origin_set_by is None:  # an editor's ruling stands until an editor changes it
        story.origin = article.origin.name[:200] if article.origin else None
        story.origin_evidence = article.origin.evidence if article.origin else ""
    story.source = source[:200]
    story.updated_at = now
    changed = (revision(was_read, reader_text(story.title, story.body_html))
               if was_read is not None and not story.summary_only else None)
    made = None
    if changed is not None:
        made = StoryRevision(story_id=story.id, created_at=now, source=source[:200], note=changed.note,
                             changes=json.dumps([list(pair) for pair in changed.changes], ensure_ascii=False))
        session.add(made)
    session.flush()
    if retitled:
        replace_title_runs(session, story.id, story.title_key)
    return story, created, made


def replace_title_runs(session: Session, story_id: int, key: str) -> None:
    session.execute(delete(TitleRun).where(TitleRun.story_id == story_id))
    runs = title_runs(key)
    if runs:
        session.execute(insert(TitleRun), [{"story_id": story_id, "run": run} for run in runs])


MAX_PAGES_PER_IMPORT = 50  # teasers completed from their pages per import; the rest at their first request


def complete_summaries(articles: list[Article], *, publication: PublicationConfig,
                       fetch: Callable[[str], FetchedPage], limit: int = MAX_PAGES_PER_IMPORT,
                       seconds: float | None = None) -> list[Article]:
    """The articles, teasers completed from their pages on the publication's own hosts (up to `limit`
    pages fetched, and none started after `seconds`); a teaser whose page cannot be had stays summary-only."""
    completed, fetched = [], 0
    deadline = time.monotonic() + seconds if seconds is not None else None
    for article in articles:
        if (article.summary_only and fetched < limit and (deadline is None or time.monotonic() < deadline)
                and host_matches(url_host(article.canonical_url), publication.allowed_hosts)):
            fetched += 1
            article = _from_page(article, publication, fetch)
        completed.append(article)
    return completed


def _from_page(teaser: Article, publication: PublicationConfig, fetch: Callable[[str], FetchedPage]) -> Article:
    try:
        page = fetch(teaser.canonical_url)
        found = parse_source(page.content, url=page.url, publication=publication, charset=page.charset)
    except (FetchError, ImportFailed):
        return teaser
    if len(found) != 1 or not found[0].paragraphs:
        return teaser
    story = found[0]
    return replace(story, title=teaser.title or story.title, byline=story.byline or teaser.byline,
                   published_at=teaser.published_at or story.published_at,
                   origin=teaser.origin or story.origin, summary_only=False)


def set_origin(session: Session, url: str, origin: str | None, *, editor: str, now: datetime) -> Story:
    """An editor's ruling: the story at `url` is free (`origin` None) or came from `origin`."""
    story = session.scalars(select(Story).where(Story.url_key == url_key(url))).first()
    if story is None:
        raise LookupError(f"{url} is not in the story catalog (import it with `republish stories import`)")
    story.origin = origin[:200] if origin else None
    story.origin_evidence = f"set by {editor} on {now:%Y-%m-%d %H:%M} UTC"[:1000]
    story.origin_set_by = editor[:320]
    story.origin_set_at = now
    return story


def slug_for(url: str, title: str) -> str:
    """A file-name-safe slug: the URL's last path segment, else the title."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    candidates = [re.sub(r"\.(html?|php|aspx?)$", "", segments[-1])] if segments else []
    candidates.append(title)
    for candidate in candidates:
        text = unicodedata.normalize("NFKD", candidate)
        text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
        slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:80].strip("-")
        if len(slug) >= 3 and not slug.isdigit():
            return slug
    return "story"


def stories_by_url_keys(session: Session, keys: tuple[str, ...]) -> dict[str, StoryView]:
    if not keys:
        return {}
    stories = session.scalars(select(Story).where(Story.url_key.in_(keys))).all()
    return {story.url_key: view(story) for story in stories}


@dataclass
class Named:
    """Catalog stories named by a group of messages, for each message to pick its own from."""

    by_url: dict[str, StoryView] = field(default_factory=dict)
    by_title: dict[str, list[StoryView]] = field(default_factory=dict)
    by_run: dict[str, list[StoryView]] = field(default_factory=dict)

    def for_refs(self, url_keys: tuple[str, ...], title_keys: tuple[str, ...]
                 ) -> tuple[dict[str, StoryView], list[StoryView], tuple[str, ...]]:
        """({url key: story} for the links, [stories named by title], longest title first, and the typed
        runs of a title that fit several stories, for a person). A run of a title's words counts only when
        no link and no whole title names a story."""
        by_url = {key: self.by_url[key] for key in url_keys if key in self.by_url}
        titled = {story.id: story for key in title_keys for story in self.by_title.get(key, ())}
        ambiguous: list[str] = []
        if not titled and not by_url:  # only when nothing else names a story: a run of words is a weaker sign
            for key in title_keys:
                fitting = {story.id: story for story in self.by_run.get(key, ())}
                if len(fitting) == 1:
                    titled.update(fitting)
                elif fitting:
                    ambiguous.append(f'{len(fitting)} stories\' titles have "{key}"')
            if titled:  # a run found in one story only names it; runs shared by several add nothing
                ambiguous = []
        # Longest titles first: "Israel and Japan sign new defense agreement" beats a story titled "Israel and Japan".
        return by_url, sorted(titled.values(), key=lambda story: -len(story.title)), tuple(dict.fromkeys(ambiguous))


KEY_SEPARATOR = "\x1f"  # ASCII unit separator: never in a URL or title key (a key holding one is left out)
_STORIES = Story.__table__  # Core columns: the ORM's statement layer would only add time to plain rows
_VIEW_COLUMNS = tuple(_STORIES.c[name] for name in ("id", "canonical_url", "title", "slug", "byline", "published_at",
                                                    "body_html", "origin", "origin_evidence", "summary_only"))


def _named_statement(postgres: bool):
    """Stories whose url_key is among :urls or whose title_key is among :titles: only the columns a
    StoryView needs, no ORM objects. On PostgreSQL `= ANY(string_to_array(:keys))`, one text parameter
    whatever the count, so the driver reuses the statement's preparation; elsewhere an expanding IN list."""
    url_key, title_key = _STORIES.c.url_key, _STORIES.c.title_key
    if postgres:  # the keys joined in one text, split by the server: no per-key escaping by the driver
        urls, titles = (func.string_to_array(bindparam(name, type_=Text), KEY_SEPARATOR) for name in ("urls", "titles"))
        condition = or_(url_key == any_(urls), title_key == any_(titles))
    else:
        condition = or_(url_key.in_(bindparam("urls", expanding=True)), title_key.in_(bindparam("titles", expanding=True)))
    return select(*_VIEW_COLUMNS, url_key, title_key).where(condition)


_NAMED = {postgres: _named_statement(postgres) for postgres in (False, True)}  # built once: statements are immutable


def stories_named(session: Session, url_keys, title_keys, chunk: int = 5000) -> Named:
    """Stories named by link or by title, for one message or a whole group: both columns are indexed,
    so this is index lookups, one round trip per `chunk` keys (well under every driver's limit)."""
    wanted = [("url", key) for key in dict.fromkeys(url_keys) if KEY_SEPARATOR not in key]
    wanted += [("title", key) for key in dict.fromkeys(title_keys) if len(key) <= 1024 and KEY_SEPARATOR not in key]
    postgres = session.get_bind().dialect.name == "postgresql"
    statement = _NAMED[postgres]
    named = Named()
    seen: set[int] = set()
    for start in range(0, len(wanted), chunk):
        part = wanted[start:start + chunk]
        keys = {kind: [key for each, key in part if each == kind] for kind in ("url", "title")}
        if postgres:
            keys = {kind: KEY_SEPARATOR.join(values) if values else None for kind, values in keys.items()}
        rows = session.execute(statement, {"urls": keys["url"], "titles": keys["title"]})
        for row in rows:
            if row.id in seen:
                continue
            seen.add(row.id)
            found = StoryView(*row[:len(_VIEW_COLUMNS)])
            named.by_url[row.url_key] = found
            named.by_title.setdefault(row.title_key, []).append(found)
    return named


def add_title_runs(session: Session, named: Named, keys, chunk: int = 5000) -> None:
    """Stories whose title holds one of these runs of RUN_WORDS words (a headline typed short, or without
    its start) into `named`: asked for only for messages that name no story otherwise, so the common case
    costs nothing."""
    wanted = [key for key in dict.fromkeys(keys) if len(key.split()) == RUN_WORDS]
    runs = TitleRun.__table__
    for start in range(0, len(wanted), chunk):
        rows = session.execute(select(*_VIEW_COLUMNS, runs.c.run).join(runs, runs.c.story_id == _STORIES.c.id)
                               .where(runs.c.run.in_(wanted[start:start + chunk])))
        for row in rows:
            named.by_run.setdefault(row.run, []).append(StoryView(*row[:len(_VIEW_COLUMNS)]))