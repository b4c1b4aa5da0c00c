"""Checking a republished copy against the guidelines: `check_copy` is pure, `verify_*` are the edges.

What the guidelines ask, and what is checked on the partner's page: the credit line (a link to
our story naming the publication), our tracking pixel with the pickup's token, the canonical
link to our story, no image inside the story's body, and the text not edited (the share of our
paragraphs found word for word). The result is stored on the LiveCopy; a copy with violations
goes to the review queue as a note carrying the evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import lxml.html
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import LiveCopy, Outcome, Pickup, Request, Story
from processor.catalog.stories import StoryView, view
from processor.config import PublicationConfig
from processor.catalog.extract import decode_html
from processor.catalog.fetch import FetchError, FetchedPage
from processor.pipeline.snippet import pixel_url
from processor.records.pickups import record_live_copy
from processor.urls import url_key

MIN_VERBATIM_SHARE = 0.9  # below this share of our paragraphs found word for word, the text was edited


@dataclass(frozen=True)
class CopyCheck:
    problems: tuple[str, ...]
    verbatim_share: float  # of our paragraphs, found word for word on the page

    @property
    def status(self) -> str:
        return "violations" if self.problems else "ok"


@dataclass(frozen=True)
class Verified:
    url: str
    story_url: str
    status: str  # ok | violations | unreachable
    problems: str
    review_request_id: int | None


def check_copy(page_html: str, story: StoryView, publication: PublicationConfig, *, pixel: str | None) -> CopyCheck:
    """What of the guidelines the page keeps. `pixel` is the pickup's pixel URL (None: no pickup known)."""
    root = lxml.html.document_fromstring(page_html or "<html></html>")
    own = url_key(story.canonical_url)
    problems = []
    credit = [a for a in root.iter("a") if _same(a.get("href"), own)
              and publication.name.lower() in " ".join(a.text_content().split()).lower()]
    if not credit:
        problems.append(f"no credit line: no link to {story.canonical_url} naming {publication.name}")
    canonical = [link for link in root.iter("link") if "canonical" in (link.get("rel") or "").lower().split()]
    if not any(_same(link.get("href"), own) for link in canonical):
        found = canonical[0].get("href") if canonical else None
        problems.append(f"canonical link missing or pointing elsewhere ({found or 'none'})")
    images = [img.get("src") or "" for img in root.iter("img")]
    if pixel is not None and pixel not in images:
        problems.append("our tracking pixel (with this pickup's token) is missing")
    ours = _paragraphs(lxml.html.fragment_fromstring(story.body_html or "<p></p>", create_parent="div"))
    on_page = {}
    for element in root.iter("p", "li", "h2", "h3", "h4", "blockquote"):
        on_page.setdefault(" ".join(element.text_content().split()), element)
    matched = [on_page[text] for text in ours if text in on_page]
    share = len(matched) / len(ours) if ours else 1.0
    if share < MIN_VERBATIM_SHARE:
        problems.append(f"text edited: {len(matched)} of our {len(ours)} paragraphs found word for word "
                        f"({share:.0%})")
    inside = [src for src in _images_within(matched) if src != pixel]
    if inside:
        problems.append(f"{len(inside)} image(s) inside the story's body (first: {inside[0][:200]})")
    return CopyCheck(tuple(problems), share)


def verify_copy(session: Session, copy: LiveCopy, publication: PublicationConfig,
                fetch: Callable[[str], FetchedPage], now: datetime) -> Verified:
    """Fetch one live copy, check it, store the result; violations become a review note."""
    story = session.get(Story, copy.story_id)
    pickup = session.get(Pickup, copy.pickup_id) if copy.pickup_id else None
    copy.checked_at = now
    try:
        page = fetch(copy.url)
    except FetchError as exc:
        copy.status, copy.problems = "unreachable", str(exc)
        session.flush()
        return Verified(copy.url, story.canonical_url, copy.status, copy.problems, None)
    html = decode_html(page.content, page.charset) if page.content else ""
    pixel = (pixel_url(publication.pixel_url, story_id=story.id, outlet_id=pickup.outlet_id, token=pickup.token)
             if pickup is not None else None)
    result = check_copy(html, view(story), publication, pixel=pixel)
    copy.status, copy.problems = result.status, "\n".join(result.problems)
    note = None
    if result.problems:
        note = _review_note(session, copy, story, pickup, result, now)
    session.flush()
    return Verified(copy.url, story.canonical_url, copy.status, copy.problems, note.id if note else None)


def copies_to_verify(session: Session, *, pickup_id: int | None = None) -> list[LiveCopy]:
    query = select(LiveCopy).order_by(LiveCopy.id)
    if pickup_id is not None:
        query = query.where(LiveCopy.pickup_id == pickup_id)
    return list(session.scalars(query))


def copy_for_url(session: Session, url: str, story_url: str, now: datetime) -> LiveCopy:
    """The LiveCopy an editor names (made if new), tied to the pickup of the outlet the page is on, if any."""
    story = session.scalars(select(Story).where(Story.url_key == url_key(story_url))).first()
    if story is None:
        raise FetchError(f"{story_url} is not in the story catalog")
    copy = record_live_copy(session, story_id=story.id, url=url, source="editor", now=now,
                            pickup_id=_pickup_for_host(session, story.id, url))
    if copy is None:
        raise FetchError(f"{url[:200]} is not an http(s) address")
    return copy


def _pickup_for_host(session: Session, story_id: int, url: str) -> int | None:
    from models import Outlet
    from processor.urls import url_host

    host = (url_host(url) or "").lower().removeprefix("www.")
    rows = session.execute(select(Pickup.id, Outlet.key).join(Outlet, Pickup.outlet_id == Outlet.id)
                           .where(Pickup.story_id == story_id)).all()
    for pickup_id, key in rows:
        if host == key or host.endswith("." + key):
            return pickup_id
    return None


def _review_note(session: Session, copy: LiveCopy, story: Story, pickup: Pickup | None, result: CopyCheck,
                 now: datetime) -> Request:
    note = Request(message_key=f"live-copy:{copy.id}:{now.isoformat(timespec='seconds')}"[:255],
                   mailbox="verify", outlet_id=pickup.outlet_id if pickup else None, subject="republished copy check",
                   processed_at=now, outcome=Outcome.NEEDS_PERSON, needs_person=True,
                   reason=f"live copy {copy.url} of {story.canonical_url} breaks the guidelines: "
                          + "; ".join(result.problems))
    session.add(note)
    session.flush()
    return note


def _same(href: str | None, key: str) -> bool:
    return bool(href) and url_key(href) == key


def _paragraphs(root) -> list[str]:
    texts = []
    for element in root.iter("p", "li", "h2", "h3", "h4", "blockquote"):
        text = " ".join(element.text_content().split())
        if text:
            texts.append(text)
    return texts


def _images_within(matched: list) -> list[str]:
    """The images between the first and the last of our paragraphs on the page: inside the story's body,
    not the site's logo or the partner's own pictures around it."""
    if not matched:
        return []
    chains = [list(element.iterancestors())[::-1] for element in matched]
    common = None
    for level in zip(*chains):
        if not all(node is level[0] for node in level):
            break
        common = level[0]
    if common is None:
        return []
    ours = set(matched)
    seen = 0
    found, pending = [], []
    for element in common.iter():
        if element in ours:
            seen += 1
            found += pending  # images before this paragraph lie between two of ours
            pending = []
        elif element.tag == "img" and any(parent in ours for parent in element.iterancestors()):
            found.append(element.get("src") or "")
        elif element.tag == "img" and seen:
            pending.append(element.get("src") or "")
    return found
