"""The story catalog: what the publication has published and may (or may not) be republished."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UTCDateTime


class Story(Base):
    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(primary_key=True)
    canonical_url: Mapped[str] = mapped_column(String(2048), unique=True)
    # Normalised canonical URL (no scheme, www., tracking parameters, AMP suffix): what links match on.
    url_key: Mapped[str] = mapped_column(String(2048), unique=True)
    title: Mapped[str] = mapped_column(Text)
    # Case- and punctuation-folded title, for requests that name a story without a link.
    title_key: Mapped[str] = mapped_column(String(1024), index=True)
    slug: Mapped[str] = mapped_column(String(200))
    byline: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    language: Mapped[str] = mapped_column(String(35), default="")
    # Sanitised article body: paragraphs, headings, lists, inline links; nothing else.
    body_html: Mapped[str] = mapped_column(Text, default="")
    # The publication the story originated with (a wire service, another outlet), or None if it is our own.
    origin: Mapped[str | None] = mapped_column(String(200))
    origin_evidence: Mapped[str] = mapped_column(Text, default="")
    # An editor's ruling on the origin (`republish stories set-origin`): who and when. While set, imports
    # keep `origin` and `origin_evidence` as the editor left them.
    origin_set_by: Mapped[str | None] = mapped_column(String(320))
    origin_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Only a feed's summary is known (its page could not be fetched yet): never sent as the story.
    summary_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # How its text was read ("page" or "feed"; "" before it was recorded): a revision compares two readings
    # of one kind, since a page's extraction and a feed's content differ in ways that are not corrections.
    reading: Mapped[str] = mapped_column(String(8), default="", server_default="")
    source: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Its pickups (granted or declined), kept as pickups change (processor/pickup_counts.py): top stories.
    pickup_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0", index=True)

    @property
    def free_to_republish(self) -> bool:
        return self.origin is None


class TitleRun(Base):
    """Each run of RUN_WORDS words of a story's title key (processor/catalog/titles.py): a headline typed
    short, or without its first words ("imitate human speech, research reveals"), finds its story."""

    __tablename__ = "title_runs"

    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), primary_key=True)
    run: Mapped[str] = mapped_column(String(300), primary_key=True, index=True)


class StoryRevision(Base):
    """A change to a story's text that a reader would notice, found when the story was read again (a feed
    poll, an import): what changed and the correction or editor's note it carries. Whitespace, markup,
    attributes and tracking parameters make none."""

    __tablename__ = "story_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(200), default="")
    # The correction, clarification or editor's note the new text carries ("" when it carries none).
    note: Mapped[str] = mapped_column(Text, default="")
    # What changed, as JSON: [[before, after], ...], sentences of the text ("" on one side for added or
    # removed ones); at most a few, each bounded (processor/catalog/revisions.py).
    changes: Mapped[str] = mapped_column(Text, default="[]")


class FeedState(Base):
    """One of the publication's feeds the catalog polls: its validators for a conditional GET, and the
    problem last logged (logged once, not on every poll)."""

    __tablename__ = "feed_states"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2048), unique=True)
    etag: Mapped[str] = mapped_column(String(512), default="")
    last_modified: Mapped[str] = mapped_column(String(128), default="")
    items: Mapped[int] = mapped_column(Integer, default=0)  # in the last copy read
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    problem: Mapped[str] = mapped_column(Text, default="")
