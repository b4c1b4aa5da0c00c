"""Checking republished copies: the address policy, the strict fetch (a local HTTP server), the checks, the CLI."""

from __future__ import annotations

import ipaddress
import threading
from datetime import datetime, timezone
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from models import LiveCopy, Pickup, Story
from processor.catalog.stories import view
from processor.cli import main
from processor.catalog.fetch import FetchError
from processor.desk.live_fetch import checked_address, fetch_live, public_address
from processor.desk.review import review_queue
from processor.pipeline.snippet import build_snippet
from processor.desk.verify import check_copy, copy_for_url, verify_copy
from processor.app import run_once
from tests.helpers import load, request_message

BIKE = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"



@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                     "224.0.0.1", "240.0.0.1", "0.0.0.0", "100.64.0.1", "::1", "fe80::1", "fc00::1",
                                     "ff02::1", "::", "::ffff:127.0.0.1", "::ffff:10.0.0.1"])
def test_non_public_addresses_are_refused(address):
    assert not public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address):
    assert public_address(ipaddress.ip_address(address))


def test_a_host_with_any_private_address_is_refused():
    resolve = {"mixed.example": ["8.8.8.8", "10.0.0.1"], "public.example": ["8.8.4.4"]}
    with pytest.raises(FetchError, match="10.0.0.1, which is not a public address"):
        checked_address("mixed.example", 80, allow=public_address, resolve=lambda host, port: resolve[host])
    assert str(checked_address("public.example", 80, allow=public_address,
                               resolve=lambda host, port: resolve[host])) == "8.8.4.4"


def test_loopback_and_other_schemes_are_never_fetched():
    for url, reason in (("http://127.0.0.1/", "not a public address"), ("http://localhost/", "not a public address"),
                        ("file:///etc/passwd", "not an http"), ("ftp://partner.example/", "not an http"),
                        ("http://user:pw@partner.example/", "credentials")):
        with pytest.raises(FetchError, match=reason):
            fetch_live(url, timeout=2, max_bytes=10_000)


class PartnerSite:
    """A partner's web server on loopback: pages by path, redirects, cookies; records what it was sent."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.seen: list[tuple[str, str, str]] = []  # (path, Host, Cookie)
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                site.seen.append((self.path, self.headers.get("Host", ""), self.headers.get("Cookie", "")))
                status, headers, body = site.pages.get(self.path, (404, {}, b"not here"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def partner():
    site = PartnerSite()
    yield site
    site.close()


def _fetch_via(partner, **options):
    """fetch_live with names resolved to the local server, and only 127.0.0.1 allowed (loopback stands in for
    the public internet here; 127.0.0.2 stands in for a private address)."""
    names = {"partner.example": "127.0.0.1", "www.valleynews.example": "127.0.0.1", "intranet.example": "127.0.0.2"}
    return partial(fetch_live, timeout=5, max_bytes=options.pop("max_bytes", 100_000),
                   allow=lambda address: str(address) == "127.0.0.1",
                   resolve=lambda host, port: [names.get(host, "192.0.2.1")])


def test_fetch_connects_to_the_checked_address_rechecks_redirects_and_sends_no_cookies(partner):
    base = f"http://partner.example:{partner.port}"
    partner.pages["/a"] = (302, {"Location": "/b", "Set-Cookie": "session=1; Path=/"}, b"")
    partner.pages["/b"] = (200, {"Content-Type": "text/html; charset=utf-8"}, b"<p>copy</p>")
    partner.pages["/away"] = (302, {"Location": f"http://intranet.example:{partner.port}/secret"}, b"")
    partner.pages["/big"] = (200, {}, b"x" * 5000)
    fetch = _fetch_via(partner)
    page = fetch(f"{base}/a")
    assert page.content == b"<p>copy</p>" and page.url == f"{base}/b"
    assert partner.seen == [("/a", f"partner.example:{partner.port}", ""), ("/b", f"partner.example:{partner.port}", "")]
    with pytest.raises(FetchError, match="127.0.0.2, which is not a public address"):
        fetch(f"{base}/away")
    assert "/secret" not in [path for path, _, _ in partner.seen]
    with pytest.raises(FetchError, match="larger than the 1000-byte limit"):
        partial(fetch_live, timeout=5, max_bytes=1000, allow=lambda a: True,
                resolve=lambda host, port: ["127.0.0.1"])(f"{base}/big")


def _story_and_pickup(maildir_pipeline):
    """The bike-lanes story granted to valleynews.example by the worker, through the Maildir pipeline."""
    (maildir_pipeline["maildir"] / "new" / "1.eml").write_bytes(request_message(body=f"May we run {BIKE}"))
    config = maildir_pipeline["configure"]()
    run_once(config)
    with maildir_pipeline["sessions"]() as session:
        pickup = session.scalars(select(Pickup)).one()
        story = view(session.get(Story, pickup.story_id))
        snippet = build_snippet(story, config.publication, outlet_id=pickup.outlet_id, token=pickup.token)
        return config, pickup.id, story, snippet


def _page(snippet_html: str) -> bytes:
    return (f"<html><head><title>Valley News</title></head><body><img src='/logo.png'>"
            f"<article>{snippet_html}</article><aside><img src='/ad.png'></aside></body></html>").encode()


def test_a_faithful_copy_is_ok_and_an_edited_one_goes_to_review(maildir_pipeline, partner):
    config, pickup_id, story, snippet = _story_and_pickup(maildir_pipeline)
    assert check_copy(_page(snippet.html).decode(), story, config.publication, pixel=snippet.pixel_url).problems == ()

    paragraphs = snippet.html.split("</p>")
    edited = "</p>".join([paragraphs[0], paragraphs[1] + "<img src='/photo.jpg'>", "<p>Our own words instead.",
                          *paragraphs[3:]])
    edited = edited.replace(snippet.pixel_url.replace("&", "&amp;"), "/other.gif").replace("rel=\"canonical\"", "rel=\"x\"")
    edited = edited.replace(">The Riverside Ledger</a>", ">the original</a>")
    partner.pages["/ok"] = (200, {"Content-Type": "text/html"}, _page(snippet.html))
    partner.pages["/edited"] = (200, {"Content-Type": "text/html"}, _page(edited))
    base = f"http://www.valleynews.example:{partner.port}"  # the outlet's own site: the copy is its pickup's
    with maildir_pipeline["sessions"]() as session:
        now = datetime.now(timezone.utc)
        fetch = _fetch_via(partner)
        good = verify_copy(session, copy_for_url(session, f"{base}/ok", BIKE, now), config.publication, fetch, now)
        bad = verify_copy(session, copy_for_url(session, f"{base}/edited", BIKE, now), config.publication, fetch, now)
        gone = verify_copy(session, copy_for_url(session, f"{base}/gone", BIKE, now), config.publication, fetch, now)
        session.commit()
    assert (good.status, good.problems, good.review_request_id) == ("ok", "", None)
    assert bad.status == "violations" and bad.review_request_id
    for expected in ("no credit line", "canonical link missing", "tracking pixel", "text edited: ",
                     "image(s) inside the story's body (first: /photo.jpg)"):
        assert expected in bad.problems
    assert "logo.png" not in bad.problems and "ad.png" not in bad.problems
    assert gone.status == "unreachable" and "HTTP 404" in gone.problems
    with maildir_pipeline["sessions"]() as session:
        copies = {c.url.rsplit("/", 1)[1]: c for c in session.scalars(select(LiveCopy))}
        assert {name: c.status for name, c in copies.items()} == {"ok": "ok", "edited": "violations",
                                                                   "gone": "unreachable"}
        assert {c.pickup_id for c in copies.values()} == {pickup_id}
        queue = review_queue(session)
        assert [item.request_id for item in queue] == [bad.review_request_id]
        assert "breaks the guidelines" in queue[0].reason and "/edited" in queue[0].reason


def test_verify_command_refuses_a_loopback_copy(maildir_pipeline, tmp_path):
    _story_and_pickup(maildir_pipeline)
    cli = ["--config", str(tmp_path / "config.toml"), "verify"]
    result = CliRunner().invoke(main, cli + ["--url", "http://127.0.0.1:9/copy", "--story", BIKE])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("unreachable") and "not a public address" in result.output
    assert "no live copies" in CliRunner().invoke(main, cli + ["1"]).output
    assert CliRunner().invoke(main, cli).exit_code == 2
    assert "not in the story catalog" in CliRunner().invoke(
        main, cli + ["--url", "http://127.0.0.1/x", "--story", "https://riversideledger.example/nope/"]).output
    assert load(tmp_path / "config.toml")  # the config the command read is the pipeline's


def test_a_malformed_address_from_a_pixel_hit_is_an_error_for_that_copy_and_verify_goes_on(maildir_pipeline, tmp_path):
    """A Referer such as https://valleynews.example:99999/copy became a live copy, and `verify --all` then
    stopped with a traceback on every run, leaving the other copies unchecked."""
    with pytest.raises(FetchError, match="not a valid address"):
        fetch_live("https://valleynews.example:99999/copy", timeout=2, max_bytes=10_000)
    _story_and_pickup(maildir_pipeline)
    now = datetime.now(timezone.utc)
    with maildir_pipeline["sessions"]() as session:
        for url in ("https://valleynews.example:99999/copy", "http://127.0.0.1:9/other"):
            copy_for_url(session, url, BIKE, now)
        session.commit()
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "config.toml"), "verify", "--all"])
    assert result.exit_code == 0 and result.exception is None, result.output
    assert "not a valid address" in result.output and "not a public address" in result.output
