"""The shared real-world corpora: 378 emails through the pipeline, 78 news pages through the importer."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from models import Request
from processor.records import db
from processor.app import build_worker
from processor.catalog.stories import ImportFailed, parse_source
from processor.config import DEFAULT_WIRE_SOURCES
from processor.catalog.extract import NotAnArticle, extract_article
from processor.pipeline.parse import UnreadableMessage, parse_message, raw_digest_key
from tests.article_corpus import (SHARED_ARTICLES, expected_body, page_cases, same_byline, same_title, same_url,
                                  segments_found, shingle_f1)
from tests.helpers import load, write_config
from tests.servers import missing

SHARED_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


CORPUS_FILES = sorted(SHARED_CORPUS.rglob("*.eml")) if SHARED_CORPUS.is_dir() else []


def _set_subject(raw: bytes) -> bytes:
    """The same message with its Subject replaced by "republish"."""
    sep = b"\r\n\r\n" if b"\r\n\r\n" in raw[:20000] else b"\n\n"
    head, _, body = raw.partition(sep)
    eol = b"\r\n" if sep == b"\r\n\r\n" else b"\n"
    lines, skip = [], False
    for line in head.split(eol):
        if skip and line[:1] in (b" ", b"\t"):
            continue
        skip = line.lower().startswith(b"subject:")
        if not skip:
            lines.append(line)
    # First, unless the header block itself starts with a continuation line: after that stray line then.
    at = 1 if lines and lines[0][:1] in (b" ", b"\t") else 0
    return eol.join([*lines[:at], b"Subject: republish", *lines[at:]]) + sep + body


@pytest.fixture(scope="module")
def corpus_worker(tmp_path_factory):
    """One worker on a Maildir, an outbox folder and SQLite, fed one corpus message at a time."""
    folder = tmp_path_factory.mktemp("corpus")
    maildir = folder / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    config = load(write_config(folder, "sqlite:///c.sqlite3", maildir=maildir, outbox=folder / "outbox"))
    db.upgrade(db.make_engine(config.database_url))
    worker, engine = build_worker(config)
    yield {"worker": worker, "maildir": maildir, "outbox": folder / "outbox",
           "sessions": db.make_session_factory(engine)}
    worker.close()
    engine.dispose()


def test_the_shared_corpora_are_beside_the_checkout():
    """Without ../shared the corpus tests below have nothing to run: say so (and fail under CI)."""
    if not CORPUS_FILES:
        missing("../shared/corpus is not beside the checkout", "clone next to the project's shared folder")
    if not SHARED_ARTICLES.is_dir():
        missing("../shared/articles is not beside the checkout", "clone next to the project's shared folder")


@pytest.mark.skipif(not CORPUS_FILES, reason="../shared/corpus is not beside the checkout")
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_email_gets_an_outcome_and_a_reason_and_auto_mail_no_reply(corpus_worker, path):
    raw = _set_subject(path.read_bytes())
    maildir, outbox = corpus_worker["maildir"], corpus_worker["outbox"]
    replies_before = set(outbox.glob("*.eml")) if outbox.exists() else set()
    (maildir / "new" / path.name).write_bytes(raw)
    stats = corpus_worker["worker"].run(once=True)  # never raises: the worker does not die on a message
    assert stats.seen == 1
    assert not (maildir / "new" / path.name).exists()  # handled and moved on, not left behind
    try:
        key = parse_message(raw).message_key
    except UnreadableMessage:
        key = raw_digest_key(raw)
    with corpus_worker["sessions"]() as session:
        request = session.scalars(select(Request).where(Request.message_key == key)).one()
        assert request.outcome and request.reason
    new_replies = (set(outbox.glob("*.eml")) if outbox.exists() else set()) - replies_before
    if path.parent.name == "auto":  # never answered: recognised as automated, too old, or left for a person
        assert not new_replies and request.outcome in ("ignored", "backfilled", "needs_person"), request.reason


@pytest.mark.skipif(not SHARED_ARTICLES.is_dir(), reason="../shared/articles is not beside the checkout")
def test_article_corpus_accuracy():
    """Imports all 78 pages and measures title, byline, canonical URL and wire origin against upstream expectations.

    Upstream expectations are other tools' baselines (SOURCES.md lists the wrong ones), so the
    floors below are this importer's measured accuracy minus a margin: a regression fails the test.
    """
    totals = {"title": [0, 0], "byline": [0, 0], "date": [0, 0], "canonical": [0, 0], "origin": [0, 0]}
    body_f1, segments = [], [0, 0, 0, 0]
    not_articles = []
    for case in page_cases():
        try:
            article = extract_article(case.path.read_bytes(), url=case.url or None, wire_sources=DEFAULT_WIRE_SOURCES)
        except NotAnArticle:
            not_articles.append(case.name)
            continue
        checks = {
            "title": (case.expected_title, same_title),
            "byline": (case.expected_byline, same_byline),
            "canonical": (case.url, same_url),
        }
        checks["date"] = (case.expected_date, lambda got, want: got == want)
        for field, (expected, same) in checks.items():
            if expected:
                got = {"title": article.title, "byline": article.byline, "canonical": article.canonical_url,
                       "date": article.published_at.strftime("%Y-%m-%d") if article.published_at else ""}[field]
                totals[field][0] += same(got, expected)
                totals[field][1] += 1
        totals["origin"][0] += (article.origin is not None) == case.expected_wire
        totals["origin"][1] += 1
        body = expected_body(case)
        if isinstance(body, str):
            body_f1.append(shingle_f1("\n".join(article.paragraphs), body))
        elif body is not None:
            segments = [a + b for a, b in zip(segments, segments_found("\n".join(article.paragraphs), body))]
    report = ", ".join(f"{k} {ok}/{n} ({ok / n:.0%})" for k, (ok, n) in totals.items())
    mean_f1 = sum(body_f1) / len(body_f1)
    print(f"\narticles: {report}; body text F1 (4-word shingles) {mean_f1:.3f} mean over {len(body_f1)} pages; "
          f"segments: {segments[0]}/{segments[1]} kept, {segments[2]}/{segments[3]} kept out; "
          f"not an article: {not_articles}")
    assert len(page_cases()) == 78 and not not_articles
    # Measured: title 54/60 (the six others: two upstream titles keep the site's name, four are another of
    # the page's headline variants), byline 40/49 (most of the nine: upstream gives a site, a date or a
    # photo credit as the byline).
    floors = {"title": 0.85, "byline": 0.75, "date": 0.90, "canonical": 0.85, "origin": 0.95}
    for field, floor in floors.items():
        ok, n = totals[field]
        assert ok / n >= floor, f"{field}: {ok}/{n}"
    # Measured 0.954, 53/60 and 65/70 with trafilatura (the earlier extractor: 0.892, 48/60, 55/70); captions, which
    # some expected texts keep, are left out on purpose.
    assert mean_f1 >= 0.94 and segments[0] >= 50 and segments[2] >= 62, (mean_f1, segments)


@pytest.mark.skipif(not SHARED_ARTICLES.is_dir(), reason="../shared/articles is not beside the checkout")
def test_every_feed_imports_or_is_refused_clearly(tmp_path):
    publication = load(write_config(tmp_path, "sqlite://", maildir=tmp_path / "m", outbox=tmp_path / "o")).publication
    counts = {}
    for feed in sorted((SHARED_ARTICLES / "feeds").glob("*.[ra][st][so]*")):
        if feed.suffix not in (".rss", ".atom"):
            continue
        try:
            counts[feed.name] = len(parse_source(feed.read_bytes(), url=None, publication=publication))
        except ImportFailed as exc:
            counts[feed.name] = str(exc)
    assert len(counts) == 17
    assert isinstance(counts["reuters-most-read-truncated.rss"], str)
    assert sum(1 for v in counts.values() if isinstance(v, int) and v > 0) == 16


@pytest.mark.skipif(not SHARED_ARTICLES.is_dir(), reason="../shared/articles is not beside the checkout")
def test_agency_copy_in_a_real_feed_is_never_taken_for_the_publications_own():
    """The Guardian's US feed: bylines "Reuters in New York", "Associated Press in Palm Beach, Florida" and
    "Staff and agencies" were imported as free (only a byline of exactly "Associated Press" was caught)."""
    from processor.catalog.feeds import parse_feed

    articles = parse_feed((SHARED_ARTICLES / "feeds" / "theguardian.com-us.rss").read_bytes(),
                          own_names=("The Guardian", "Guardian"))
    not_free = {a.byline: a.origin.name for a in articles if a.origin is not None}
    assert sorted(not_free.values()) == ["Associated Press", "Associated Press", "Reuters", "news agencies"]
    assert sum(a.origin is not None for a in articles) == 6  # three bylined "Associated Press" share a key
    own = [a.byline for a in articles if a.origin is None]
    # Bylines as the snippet prints them: every author, no role, no place.
    assert "Tom McCarthy" in own and "Patrick Wintour" in own and "Sam Jones, Stephen Burgen" in own


@pytest.mark.skipif(not SHARED_ARTICLES.is_dir(), reason="../shared/articles is not beside the checkout")
def test_a_guardian_long_read_comes_without_captions_tags_or_author_suffix():
    """The whale story: photo captions stayed as bullet points with the photos gone, the title carried
    " | Eleanor Ainge Roy", and the page's topic tags and "Reuse this content" ended the snippet."""
    article = extract_article((SHARED_ARTICLES / "pages" / "theguardian.com-maori-whale-strandings" / "source.html")
                              .read_bytes())
    assert article.title == "'What is the sea telling us?': Māori tribes fearful over whale strandings"
    assert article.byline == "Eleanor Ainge Roy"
    assert "<li" not in article.body_html and "Hori Parata at his" not in article.body_html
    assert "Reuse this content" not in article.body_html and "Topics" not in article.body_html
    assert article.paragraphs[0].startswith("Whale whisperer Hori Parata was just seven years old")
    assert article.paragraphs[-1].startswith("“It’s very emotional.")
    assert not any("  " in paragraph for paragraph in article.paragraphs)
