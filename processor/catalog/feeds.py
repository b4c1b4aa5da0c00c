"""RSS 2.0 / Atom feeds -> `Article`s (feedparser underneath). Pure.

Uses the full content (`content:encoded`, Atom `<content>`) where the feed carries it, the
summary otherwise. Real feeds are often broken (no XML declaration, undeclared Latin-1,
truncated documents); feedparser recovers what it can and a feed with no items is an error.
"""

from __future__ import annotations

import calendar
import html
import re
from datetime import datetime, timezone

import feedparser
import lxml.html
from lxml import etree

from processor.catalog.extract import BODY_BLOCKS, Article, sanitise_body
from processor.catalog.metadata import clean_byline
from processor.catalog.origin import find_origin

_FEED_ROOT = re.compile(rb"<(?:rss|feed|rdf:RDF)\b", re.I)
_HTML_ROOT = re.compile(rb"<(?:!doctype\s+html|html)\b", re.I)


class NotAFeed(Exception):
    """The document has no feed items to import."""


def looks_like_feed(data: bytes) -> bool:
    head = data[:4096]
    feed = _FEED_ROOT.search(head)
    page = _HTML_ROOT.search(head)
    return bool(feed) and (page is None or feed.start() < page.start())

# "Continue reading...", "Read more", "[…]": a summary pointing at the story, not the story.
_TEASER = re.compile(r"continue\s+reading|read\s+more|read\s+the\s+full|\[(?:…|\.\.\.)\]|…\s*$", re.I)
# Blocks that are the feed's furniture, not the story's text.
_CLUTTER = re.compile(r"^(?:related\s*:|continue\s+reading|read\s+more\b)", re.I)
FULL_TEXT_CHARS = 1500  # a summary without full content, shorter than this, is taken for a teaser


def parse_feed(data: bytes, *, wire_sources: tuple[str, ...] = (), own_names: tuple[str, ...] = ()) -> list[Article]:
    parsed = feedparser.parse(data, sanitize_html=False, resolve_relative_uris=True)
    if not parsed.entries:
        reason = getattr(parsed, "bozo_exception", None)
        raise NotAFeed(f"no feed items found{f' ({reason})' if reason else ''}")
    feed_title = parsed.feed.get("title", "")
    language = (parsed.feed.get("language") or "").split("-")[0].split("_")[0].lower()
    articles = []
    for entry in parsed.entries:
        article = _entry_article(entry, feed_title, language, wire_sources, own_names)
        if article is not None:
            articles.append(article)
    return articles


def _entry_article(entry, feed_title: str, language: str, wire_sources, own_names) -> Article | None:
    link = (entry.get("link") or "").strip()
    title = " ".join((entry.get("title") or "").split())
    if not link.startswith(("http://", "https://")) or not title:
        return None
    content = ""
    if entry.get("content"):
        content = max((c.get("value", "") for c in entry.content), key=len)
    content = content or entry.get("summary", "")
    blocks_html, paragraphs = _blocks(content, link)
    # A feed item is taken for a teaser when it says there is more to read, or is short: the story is then
    # completed from its page (stories.complete_summaries), and never sent as it is. A short story whose
    # page says no more is simply complete then.
    summary_only = bool(_TEASER.search(content)) or sum(map(len, paragraphs)) < FULL_TEXT_CHARS
    byline = " ".join((entry.get("author") or "").split())
    byline = re.sub(r"^\S+@\S+\s+\((.*)\)$", r"\1", byline)  # RSS "email (Name)"
    origin_byline, byline = byline, clean_byline(byline)  # the agency is read from the byline as printed
    # dc:rights ("Copyright 2026 The Associated Press") reads as a closing line; dc:source, or an RSS
    # <source> naming the channel an item came from, as a page's dc.source.
    rights = " ".join((entry.get("rights") or "").split())
    source = entry.get("dc_source") or (entry.get("source") or {}).get("title", "")
    origin = find_origin(
        [*paragraphs, rights] if rights else paragraphs,
        byline=origin_byline,
        own_names=own_names,
        site_names=(feed_title,) if feed_title else (),
        wire_sources=wire_sources,
        meta_source=" ".join(str(source).split())[:200],
    )
    return Article(
        canonical_url=link,
        title=title,
        byline=byline,
        published_at=_entry_date(entry),
        language=language,
        body_html=sanitise_body(blocks_html),
        paragraphs=tuple(paragraphs),
        site_name=feed_title,
        origin=origin,
        summary_only=summary_only,
        reading="feed",
    )


def _blocks(content: str, base: str) -> tuple[str, list[str]]:
    if not content.strip():
        return "", []
    try:
        root = lxml.html.fragment_fromstring(content, create_parent="div")
    except (etree.ParserError, ValueError):
        return "", []
    root.make_links_absolute(base, handle_failures="discard")
    blocks = [b for b in root.iter(*BODY_BLOCKS) if not any(a.tag in BODY_BLOCKS for a in b.iterancestors())]
    if not blocks:
        text = " ".join(root.text_content().split())
        return (f"<p>{html.escape(text)}</p>" if text else ""), ([text] if text else [])
    blocks = [b for b in blocks if not _CLUTTER.match(" ".join(b.text_content().split()))]
    markup = "".join(lxml.html.tostring(b, encoding="unicode", with_tail=False) for b in blocks)
    texts = [" ".join(b.text_content().split()) for b in blocks]
    return markup, [t for t in texts if t]


def _entry_date(entry) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = dict.get(entry, key)  # plain lookup: no deprecated updated->published fallback
        if value:
            return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)
    return None
