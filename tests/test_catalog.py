from datetime import datetime, timezone
from pathlib import Path

import pytest

from processor.records import db
from processor.catalog.stories import ImportFailed, import_articles, parse_source, stories_by_url_keys
from processor.config import load_config
from processor.catalog.extract import extract_article
from processor.catalog.feeds import parse_feed
from processor.urls import url_key
from tests.helpers import write_config

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = Path(__file__).resolve().parents[1] / "processor" / "sample_data" / "stories"  # the demo's stories
NOW = datetime(2026, 11, 24, tzinfo=timezone.utc)


@pytest.fixture
def publication(tmp_path):
    return load_config(write_config(tmp_path, "sqlite://", maildir=tmp_path / "m", outbox=tmp_path / "o")).publication


def test_seed_story_is_not_free_to_republish(publication):
    article = parse_source((FIXTURES / "seed-forward-jta.html").read_bytes(), url=None, publication=publication)[0]
    assert article.title.startswith("Israel and Japan sign new defense agreement")
    assert article.origin is not None and article.origin.name == "JTA"
    assert "originally appeared on JTA.org" in article.origin.evidence
    assert "Rachel Fishman Feddersen" not in article.body_html  # donation box is not the story
    assert "Republish This Story" not in article.body_html


def test_own_story_extraction(publication):
    article = parse_source((SAMPLES / "bike-lanes.html").read_bytes(), url=None, publication=publication)[0]
    assert article.origin is None
    assert article.byline == "Maria Gomez"
    assert article.canonical_url == "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
    assert article.published_at == datetime(2026, 11, 20, 14, 0, tzinfo=timezone.utc)
    body = article.body_html
    assert '<a href="https://riversideledger.example/topics/transportation/">' in body
    for unwanted in ("<img", "figcaption", "newsletter", "Related:", "class=", "wp:paragraph", "<!--"):
        assert unwanted not in body


def test_import_is_idempotent_by_canonical_url(sqlite_url, publication):
    engine = db.make_engine(sqlite_url)
    db.upgrade(engine)
    sessions = db.make_session_factory(engine)
    articles = parse_source((SAMPLES / "bike-lanes.html").read_bytes(), url=None, publication=publication)
    with sessions() as session:
        first = import_articles(session, articles, source="a", now=NOW)
        second = import_articles(session, articles, source="a", now=NOW)
        session.commit()
        assert (len(first.created), len(second.updated)) == (1, 1)
        key = url_key(articles[0].canonical_url)
        assert list(stories_by_url_keys(session, (key,))) == [key]


def test_a_page_without_an_article_is_refused(publication):
    with pytest.raises(ImportFailed):
        parse_source(b"<html><body><p>short</p></body></html>", url=None, publication=publication)


def test_truncated_feed_is_refused_not_crashed(publication):
    with pytest.raises(ImportFailed, match="no feed items"):
        parse_source(b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>', url=None, publication=publication)


def test_feed_items_with_wire_bylines(publication):
    feed = b"""<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Ledger</title>
    <item><title>Our own story</title><link>https://riversideledger.example/a/</link><dc:creator>Maria Gomez</dc:creator>
    <description>&lt;p&gt;Body one.&lt;/p&gt;</description></item>
    <item><title>Wire story</title><link>https://riversideledger.example/b/</link><dc:creator>Associated Press</dc:creator>
    <description>&lt;p&gt;Body two.&lt;/p&gt;</description></item></channel></rss>"""
    articles = parse_source(feed, url=None, publication=publication)
    assert [a.origin.name if a.origin else None for a in articles] == [None, "Associated Press"]


def test_scripts_and_event_handlers_never_survive(publication):
    page = b"""<html><head><title>T</title><link rel="canonical" href="https://riversideledger.example/x/"></head><body><article><h1>A headline here</h1>
    <p>First paragraph of the story with enough words to count as text.<script>alert(1)</script></p>
    <p onclick="evil()">Second paragraph <a href="javascript:alert(1)">bad link</a> and <a href="/ok">good link</a> here.</p>
    <p>[caption id="1"]Third paragraph with a shortcode left over by the CMS in it.[/caption]</p></article></body></html>"""
    body = extract_article(page).body_html
    assert "script" not in body and "onclick" not in body and "javascript" not in body and "[caption" not in body
    assert 'href="https://riversideledger.example/ok"' in body


def test_stories_are_found_by_link_and_by_title_in_one_lookup_on_both_databases(database_url):
    """Keys with quotes, commas, braces and backslashes (array syntax on PostgreSQL) match exactly."""
    from sqlalchemy import insert

    from models import Story
    from processor.catalog.stories import stories_named
    from processor.catalog.titles import title_key

    engine = db.make_engine(database_url)
    db.upgrade(engine)
    sessions = db.make_session_factory(engine)
    odd_url = 'https://riversideledger.example/news/a,"b"{c}\\d/'
    titles = ["Council approves bike lanes", 'Budget "item" {7}, revisited', "Another story entirely"]
    with sessions() as session:
        session.execute(insert(Story), [
            {"canonical_url": url, "url_key": url_key(url), "title": title, "title_key": title_key(title),
             "slug": f"s{index}", "byline": "", "body_html": "<p>x</p>", "origin_evidence": "", "source": "test",
             "created_at": NOW, "updated_at": NOW}
            for index, (url, title) in enumerate(zip(
                [odd_url, "https://riversideledger.example/news/b/", "https://riversideledger.example/news/c/"], titles))])
        session.commit()
        urls = [url_key(odd_url), "riversideledger.example/none", "x\x1fy"]
        keys = [title_key(titles[1]), "no such title", title_key(titles[1])]
        by_url, by_title, _ = stories_named(session, urls, keys).for_refs(tuple(urls), tuple(keys))
        assert {key: story.title for key, story in by_url.items()} == {url_key(odd_url): titles[0]}
        assert [story.title for story in by_title] == [titles[1]]
        assert stories_named(session, [], []).by_url == {}
        assert [story.title for story in stories_named(session, [], [title_key(titles[2])]).by_url.values()] == [titles[2]]
    engine.dispose()


def test_feed_items_say_where_they_came_from_in_dc_rights_dc_source_and_datelines():
    feed = b"""<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>
    <title>Riverside Ledger</title>
    <item><title>Rights</title><link>https://riversideledger.example/r/</link><description>Story text.</description>
      <dc:rights>Copyright 2026 The Associated Press. All rights reserved.</dc:rights></item>
    <item><title>Source</title><link>https://riversideledger.example/s/</link><description>Story text.</description>
      <dc:source>Reuters</dc:source></item>
    <item><title>Dateline</title><link>https://riversideledger.example/d/</link>
      <description>&lt;p&gt;WASHINGTON (AP) -- Lawmakers met.&lt;/p&gt;</description></item>
    <item><title>Ours</title><link>https://riversideledger.example/o/</link><description>Our story.</description>
      <dc:rights>Copyright 2026 Riverside Ledger</dc:rights></item>
    </channel></rss>"""
    origins = {a.title: a.origin.name if a.origin else None
               for a in parse_feed(feed, own_names=("Riverside Ledger",))}
    assert origins == {"Rights": "Associated Press", "Source": "Reuters", "Dateline": "Associated Press", "Ours": None}


def test_a_headline_typed_short_finds_its_story_and_two_fitting_go_to_a_person(maildir_pipeline):
    """"Orcas can imitate human speech" for "Orcas can imitate human speech, research reveals" went to a
    person; now any run of five words of a title finds it (its start, or its end typed without the start),
    and when a run fits two stories a person decides."""
    from sqlalchemy import select

    from models import Request
    from processor.catalog.extract import Article
    from processor.catalog.stories import import_articles
    from tests.helpers import request_message

    titles = {"orcas": "Orcas can imitate human speech, research reveals",
              "budget1": "City council approves the budget for 2027 after a long night",
              "budget2": "City council approves the budget cuts to libraries"}
    with maildir_pipeline["sessions"]() as session:
        import_articles(session, [Article(f"https://riversideledger.example/news/{slug}/", title, "", None, "en",
                                          "<p>Whole story.</p>", ("Whole story.",), "", None)
                                  for slug, title in titles.items()], source="test", now=NOW)
        session.commit()
    new = maildir_pipeline["maildir"] / "new"
    for name, sender, body in [
            ("orcas", "priya@valleynews.example", "We'd like to run Orcas can imitate human speech"),
            ("reveals", "ana@lakeshore.example", "Taking the one on how orcas imitate human speech, research reveals."),
            ("night", "tom@hillcrest.example", "May we run: the budget for 2027 after a long night"),
            ("budget", "desk@harborgazette.example", "Can we take: City council approves the budget")]:
        new.joinpath(f"{name}.eml").write_bytes(request_message(sender=sender, body=body,
                                                                message_id=f"<{name}@{sender.split('@')[1]}>"))
    maildir_pipeline["run"]()
    with maildir_pipeline["sessions"]() as session:
        rows = {key.split("@")[0]: (outcome, reason) for key, outcome, reason in
                session.execute(select(Request.message_key, Request.outcome, Request.reason))}
    assert rows["orcas"][0] == "answered" and "orcas" in rows["orcas"][1]
    assert rows["reveals"][0] == "answered" and "orcas" in rows["reveals"][1]
    assert rows["night"][0] == "answered" and "budget1" in rows["night"][1]
    assert rows["budget"][0] == "needs_person"
    assert 'fits more than one story (2 stories\' titles have "city council approves the budget")' in rows["budget"][1]


def _page(head: str, body: str) -> bytes:
    paragraphs = "".join(f"<p>Paragraph {n} of a story about the council, long enough to be the story itself.</p>"
                         for n in range(6))
    return (f'<html><head><link rel="canonical" href="https://riversideledger.example/news/x/">{head}</head>'
            f"<body><article><h1>Council votes</h1>{body}{paragraphs}</article></body></html>").encode()


@pytest.mark.parametrize("head, body, byline", [
    ('<meta name="author" value="Howard Schneider, Lindsay Dunsmuir">', "", "Howard Schneider, Lindsay Dunsmuir"),
    ('<meta name="author" content="No Author">', '<p class="credit-line"><a href="/authors/ana-ruiz/">Ana Ruiz</a></p>',
     "Ana Ruiz"),
    ('<meta name="author" content="finanztreff.de">', "<byline>Von David Hutzler, dpa</byline>", "David Hutzler, dpa"),
    ("", '<div class="byline Fz(13px)">J</div><div class="author-name">NATALIYA VASILYEVA</div>', "NATALIYA VASILYEVA"),
    ("", '<span class="pb-byline">By <a href="/people/erin-cunningham">Erin Cunningham</a></span>', "Erin Cunningham"),
    ("", '<nav><a href="/people/">People</a></nav><a href="/autori/ales-vavra/">Aleš Vávra</a>', "Aleš Vávra"),
    ("", '<div class="ending-byline">Laura E. Adkins is Opinion Editor of the Forward.</div>'
         'By <a href="/authors/laura-e-adkins/">Laura E. Adkins</a>', "Laura E. Adkins"),
])
def test_bylines_as_real_pages_give_them(head, body, byline):
    """From ../shared/articles: Reuters writes value=, the Japan Times "No Author", finanztreff its own domain,
    Yahoo's comment avatars carry class "byline", the Washington Post "pb-byline", Aktuálně.cz links "/autori/",
    the Forward ends with a bio."""
    assert extract_article(_page(head, body)).byline == byline


@pytest.mark.parametrize("og_title, site_name, title", [
    ("Součka je snadné přehlédnout | Aktuálně.cz", "Aktuálně.cz - Víte, co se právě děje", "Součka je snadné přehlédnout"),
    ("Perturbazione polare al Centro - La Stampa", "lastampa.it", "Perturbazione polare al Centro"),
    ("Perturbazione polare al Centro - ", "", "Perturbazione polare al Centro"),
    ("Apple: the Retina display moment", "The Verge", "Apple: the Retina display moment"),
])
def test_titles_lose_the_sites_name_however_it_is_written(og_title, site_name, title):
    head = f'<meta property="og:title" content="{og_title}"><meta property="og:site_name" content="{site_name}">'
    assert extract_article(_page(head, "")).title == title
