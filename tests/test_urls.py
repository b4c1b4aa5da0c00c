import pytest

from processor.urls import host_matches, links_in_text, url_key

BASE = "riversideledger.example/news/2026/11/story"


@pytest.mark.parametrize("url", [
    "https://riversideledger.example/news/2026/11/story/",
    "http://riversideledger.example/news/2026/11/story",
    "https://www.riversideledger.example/news/2026/11/story/#comments",
    "https://riversideledger.example/news/2026/11/story/?utm_source=newsletter&utm_medium=email",
    "https://riversideledger.example/news/2026/11/story/?fbclid=abc&gclid=x",
    "https://riversideledger.example/news/2026/11/story/amp/",
    "https://riversideledger.example/news/2026/11/story/amp",
    "https://amp.riversideledger.example/news/2026/11/story/",
    "https://riversideledger.example/news/2026/11/story/?amp=1",
    "https://riversideledger.example/amp/news/2026/11/story/",
    "HTTPS://RiversideLedger.example/news/2026/11/story/",
    "www.riversideledger.example/news/2026/11/story",
])
def test_spellings_of_one_story_share_a_key(url):
    assert url_key(url) == BASE


def test_meaningful_query_parameters_are_kept():
    assert url_key("https://site.example/article?id=42&utm_source=x") == "site.example/article?id=42"


@pytest.mark.parametrize("url", ["mailto:a@b.example", "ftp://site.example/x", "javascript:alert(1)", "not a url", "http://"])
def test_non_http_urls_have_no_key(url):
    assert url_key(url) is None


def test_links_in_text_strip_trailing_punctuation():
    text = "See https://a.example/x/y. And (https://a.example/z), also www.b.example/q!"
    assert links_in_text(text) == ["https://a.example/x/y", "https://a.example/z", "www.b.example/q"]


def test_host_matching_accepts_www_and_amp_but_not_lookalikes():
    allowed = ("riversideledger.example",)
    assert host_matches("www.riversideledger.example", allowed)
    assert host_matches("amp.riversideledger.example", allowed)
    assert not host_matches("riversideledger.example.evil.example", allowed)
    assert not host_matches("evilriversideledger.example", allowed)
