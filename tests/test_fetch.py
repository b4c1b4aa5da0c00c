"""Fetching pages linked from emails: only the publication's hosts, redirects included, with caps."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from email import message_from_bytes, policy
from pathlib import Path
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from processor.catalog.fetch import FetchError, fetch_page

ARTICLE = (Path(__file__).resolve().parents[1] / "processor" / "sample_data" / "stories" / "bike-lanes.html").read_bytes()


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/away":
            self.send_response(302)
            self.send_header("Location", "http://evil.example/page")
            self.end_headers()
        elif self.path == "/here":
            self.send_response(301)
            self.send_header("Location", "/story")
            self.end_headers()
        elif self.path.startswith("/news/"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(ARTICLE)
        elif self.path == "/big":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"x" * 50_000)
        else:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"<html>story</html>")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def fetch(url, **kwargs):
    return fetch_page(url, allowed_hosts=("127.0.0.1",), timeout=5, max_bytes=10_000, **kwargs)


def test_fetches_an_allowed_page_following_a_local_redirect(site):
    page = fetch(f"{site}/here")
    assert page.content == b"<html>story</html>" and page.url.endswith("/story")


def test_refuses_other_hosts_and_redirects_to_them(site):
    with pytest.raises(FetchError, match="not one of the publication's hosts"):
        fetch_page("http://localhost:1/x", allowed_hosts=("127.0.0.1",), timeout=5, max_bytes=10)
    with pytest.raises(FetchError, match="evil.example is not one of"):
        fetch(f"{site}/away")


def test_size_cap(site):
    with pytest.raises(FetchError, match="larger than"):
        fetch(f"{site}/big")


def test_non_http_is_refused():
    with pytest.raises(FetchError, match="not an http"):
        fetch("file:///etc/passwd")


def test_worker_imports_an_unknown_story_linked_on_our_site(site, tmp_path):
    """A link on the publication's host that is not in the catalog is fetched, imported, then granted."""
    from processor.records import db
    from processor.app import build_worker
    from tests.helpers import load, request_message, write_config

    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    path = write_config(tmp_path, "sqlite:///f.sqlite3", maildir=maildir, outbox=tmp_path / "outbox")
    path.write_text(path.read_text().replace('allowed_hosts = ["riversideledger.example"]', 'allowed_hosts = ["127.0.0.1"]'))
    config = load(path)
    db.upgrade(db.make_engine(config.database_url))
    (maildir / "new" / "1.eml").write_bytes(request_message(body=f"Taking this: {site}/news/bike-lanes/"))
    worker, engine = build_worker(config)
    stats = worker.run(once=True)
    worker.close()
    engine.dispose()
    assert stats.by_outcome == {"answered": 1} and stats.replies_sent == 1
    reply = message_from_bytes(next((tmp_path / "outbox").glob("*.eml")).read_bytes(), policy=policy.default)
    assert "Council approves protected bike lanes" in reply.get_body(("plain",)).get_content()


def test_one_deadline_covers_the_response_headers_too():
    """A server sending one header byte every 0.3 s never trips a per-read timeout; the deadline holds."""
    import socket
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def drip():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Slow: " + b"x" * 1000:
                if stop.is_set():
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return
                stop.wait(0.3)

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        with pytest.raises(FetchError, match="took longer than 1 s"):
            fetch_page(f"http://127.0.0.1:{listener.getsockname()[1]}/story", allowed_hosts=("127.0.0.1",),
                       timeout=1, max_bytes=10_000)
        assert time.monotonic() - started < 3
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def _teaser_feed(site: str) -> bytes:
    items = "".join(f"""<item><title>{title}</title><link>{site}{path}</link>
        <description>&lt;p&gt;A few words about it.&lt;/p&gt; &lt;a href="{site}{path}"&gt;Continue reading...&lt;/a&gt;</description>
        </item>""" for title, path in (("Council approves protected bike lanes", "/news/bike-lanes/"),
                                       ("A story whose page is no article", "/elsewhere/")))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Riverside Ledger</title>{items}</channel></rss>'.encode()


def test_a_teaser_is_completed_from_its_page_and_one_that_cannot_be_never_goes_out(site, tmp_path):
    """The Guardian's feed carries summaries only: the orcas story went out as three paragraphs, as if it
    were the whole story. Now a teaser is completed from its page on the publication's host, or kept
    summary-only, and a request for that one goes to a person."""
    from sqlalchemy import select

    from models import Request, Story
    from processor.app import build_worker
    from processor.catalog.stories import complete_summaries, import_articles, parse_source
    from processor.records import db
    from tests.helpers import load, request_message, write_config

    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    path = write_config(tmp_path, "sqlite:///t.sqlite3", maildir=maildir, outbox=tmp_path / "outbox")
    path.write_text(path.read_text().replace('allowed_hosts = ["riversideledger.example"]', 'allowed_hosts = ["127.0.0.1"]'))
    config = load(path)
    engine = db.make_engine(config.database_url)
    db.upgrade(engine)
    articles = parse_source(_teaser_feed(site), url=None, publication=config.publication)
    assert [a.summary_only for a in articles] == [True, True]
    articles = complete_summaries(articles, publication=config.publication, fetch=lambda url: fetch_page(
        url, allowed_hosts=("127.0.0.1",), timeout=5, max_bytes=100_000))
    assert [a.summary_only for a in articles] == [False, True]
    assert len(articles[0].paragraphs) == 4 and "A few words about it" not in articles[0].body_html  # the page's
    with db.make_session_factory(engine)() as session:
        import_articles(session, articles, source="feed", now=datetime.now(timezone.utc))
        session.commit()
        assert session.scalars(select(Story.summary_only).order_by(Story.id)).all() == [False, True]
    (maildir / "new" / "1.eml").write_bytes(request_message(body=f"Taking this: {site}/elsewhere/",
                                                            message_id="<teaser@valleynews.example>"))
    worker, _ = build_worker(config)
    worker.run(once=True)
    worker.close()
    with db.make_session_factory(engine)() as session:
        outcome, reason = session.execute(select(Request.outcome, Request.reason)).one()
    engine.dispose()
    assert outcome == "needs_person" and "only a summary of" in reason
    assert not list((tmp_path / "outbox").glob("*.eml"))
