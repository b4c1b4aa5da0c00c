"""What a partner gets for a story: its metadata, where it came from and why, and the exact snippet."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Story
from processor.catalog.stories import view
from processor.config import PublicationConfig
from processor.desk.listings import printable
from processor.pipeline.snippet import Snippet, build_snippet
from processor.urls import url_key

PREVIEW_TOKEN = "PREVIEW"  # a real reply carries its pickup's own token in the pixel; a preview counts nothing


@dataclass(frozen=True)
class StoryPreview:
    story: Story
    snippet: Snippet | None   # None: the story is not free, or known by its summary only: nothing would go out
    why_not: str


def find_story(session: Session, reference: str) -> Story | None:
    """A story by its id or by any URL that keys to it."""
    if reference.isdigit():
        return session.get(Story, int(reference))
    return session.scalars(select(Story).where(Story.url_key == url_key(reference))).first()


def preview(story: Story, publication: PublicationConfig) -> StoryPreview:
    if story.origin:
        return StoryPreview(story, None, f"not free to republish: from {story.origin}; a request for it is "
                                         f"declined politely")
    if story.summary_only:
        return StoryPreview(story, None, "known by its feed's summary only: a request for it goes to a person")
    return StoryPreview(story, build_snippet(view(story), publication, outlet_id=0, token=PREVIEW_TOKEN), "")


def format_preview(item: StoryPreview, snippet: str | None, revisions: str = "") -> str:
    """The story's metadata and origin with its evidence, its revisions (already formatted); then the
    snippet as HTML or text, if asked."""
    story = item.story
    ruled = f" (ruled by {story.origin_set_by} on {story.origin_set_at:%Y-%m-%d})" if story.origin_set_by else ""
    lines = [
        f"Story {story.id}: {story.title}",
        f"  URL:        {story.canonical_url}",
        f"  Byline:     {story.byline or '(none)'}",
        f"  Published:  {story.published_at:%Y-%m-%d %H:%M} UTC" if story.published_at else "  Published:  (unknown)",
        f"  Imported:   from {story.source or '?'}, last {story.updated_at:%Y-%m-%d %H:%M} UTC",
        f"  Origin:     {'from ' + story.origin if story.origin else 'our own: free to republish'}{ruled}",
    ]
    if story.origin_evidence:
        lines.append(f"  Evidence:   {story.origin_evidence}")
    if item.why_not:
        lines.append(f"  Snippet:    none ({item.why_not})")
    lines += revisions.splitlines()
    if snippet and not item.why_not:
        lines += ["", item.snippet.html if snippet == "html" else item.snippet.text]
    return printable("\n".join(lines).rstrip()) + "\n"
