"""The dashboard over a real SQLite database, through Starlette's test client: login, CSRF, every page,
filters, paging, CSV, the pixel; and the main pages over 100,000 pickups."""

from __future__ import annotations

import csv
import io
import os
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from models import Outlet, Pickup, PixelHit, Story
from processor.records import db
from processor.records.pickup_counts import recount
from processor.desk.web.app import build_app
from tests.conftest import SAMPLES
from tests.helpers import import_pages, write_config
from tests.web_fixtures import add_pickups, add_web_table, csrf_of, log_in, story_ids

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


def _database(tmp_path, web: dict | None = None):
    maildir = tmp_path / "Maildir"
    path = write_config(tmp_path, "sqlite:///web.sqlite3", maildir=maildir, outbox=tmp_path / "outbox")
    config = add_web_table(path, **(web or {}))
    engine = db.make_engine(config.database_url)
    db.upgrade(engine)
    sessions = db.make_session_factory(engine)
    import_pages(sessions, config.publication, sorted(SAMPLES.glob("*.html")))
    return config, engine, sessions


@pytest.fixture
def site(tmp_path):
    config, engine, sessions = _database(tmp_path)
    with sessions() as session:
        add_pickups(session, story_ids(session), ["valley.example", "harbor.example", "lake.example"],
                    start=datetime.now(timezone.utc) - timedelta(hours=1), count=9, granted_every=3)
        session.commit()
    with TestClient(build_app(config, engine)) as client:
        yield {"client": client, "sessions": sessions, "config": config}
    engine.dispose()


def test_pages_need_a_login_and_the_login_needs_its_form_token(site):
    client = site["client"]
    response = client.get("/pickups?outlet=valley.example", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
    assert client.post("/login", data={"name": "x", "password": "y"}).status_code == 403  # no token
    assert log_in(client, password="wrong password").status_code == 401
    response = log_in(client)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert client.get("/").status_code == 200


def test_a_login_never_sends_an_editor_to_another_site(site):
    client = site["client"]
    page = client.get("/login")
    response = client.post("/login", data={"csrf": csrf_of(page.text), "name": "Ana", "password": "correct horse "
                                           "battery staple", "next": "//evil.example/"}, follow_redirects=False)
    assert response.headers["location"] == "/"


def test_every_page_renders(site):
    client = site["client"]
    log_in(client)
    with site["sessions"]() as session:
        outlet_id = session.scalar(select(Outlet.id).where(Outlet.key == "valley.example"))
        story_id = story_ids(session)[0]
    overview = client.get("/")
    assert overview.status_code == 200 and "<svg" in overview.text and overview.text.count('class="bar"') == 26
    assert "valley.example" in overview.text and "Top stories" in overview.text
    outlet = client.get(f"/outlets/{outlet_id}")
    assert outlet.status_code == 200 and "Contact addresses seen" in outlet.text and outlet.text.count("data-pickup=") == 3
    story = client.get(f"/stories/{story_id}")
    assert story.status_code == 200 and story.text.count("data-pickup=") == 3
    # The preview: the snippet source a partner gets (escaped, shown, never rendered), or why there is none.
    shown = re.search(r'<pre id="snippet">(.*?)</pre>|<p id="snippet-none" class="warn">(.*?)</p>', story.text, re.S)
    assert shown and ("&lt;h1&gt;" in (shown.group(1) or "") or "No snippet" in (shown.group(2) or ""))
    with site["sessions"]() as session:
        pages = {s.id: s.origin for s in session.scalars(select(Story))}
    wire_id = next(i for i, origin in pages.items() if origin)
    assert "No snippet: not free to republish" in client.get(f"/stories/{wire_id}").text
    assert client.get("/outlets/99999").status_code == 404 and client.get("/stories/99999").status_code == 404
    assert client.get("/review").status_code == 200
    assert "Content-Security-Policy" in client.get("/").headers


def test_the_log_filters_pages_and_exports(site):
    client = site["client"]
    log_in(client)
    page = client.get("/pickups?outlet=valley.example&decision=granted")
    assert page.text.count("data-pickup=") == 1 and "1 pickup match" in page.text
    declined = client.get("/pickups", params={"decision": "declined"})
    assert declined.text.count("data-pickup=") == 6
    today = datetime.now(timezone.utc).date()
    assert client.get("/pickups", params={"since": (today + timedelta(days=1)).isoformat()}).text.count(
        "data-pickup=") == 0
    assert "Ignored since: not a date" in client.get("/pickups?since=yesterday").text
    export = client.get("/pickups.csv", params={"decision": "declined"})
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert len(rows) == 6 and {r["decision"] for r in rows} == {"declined"}


def test_paging_walks_the_whole_log_once(site):
    from processor.desk.web import queries

    with site["sessions"]() as session:
        seen, after = [], ""
        while True:
            page = queries.log_page(session, queries.LogFilter(), after=after, page_size=4)
            seen += [row.pickup_id for row in page.rows]
            if not page.next_cursor:
                break
            after = page.next_cursor
        assert len(seen) == len(set(seen)) == 9 == page.total


def _hits(sessions):
    with sessions() as session:
        return session.execute(select(PixelHit.pickup_id, PixelHit.counted, PixelHit.reason, PixelHit.page_host)
                               .order_by(PixelHit.id)).all()


def _wait_for_hits(sessions, count):
    deadline = time.monotonic() + 10
    while len(_hits(sessions)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return _hits(sessions)


def test_the_pixel_counts_honestly_and_never_sets_a_cookie(site):
    client, sessions = site["client"], site["sessions"]
    log_in(client)  # a logged-in editor's own browser gets no cookie from the pixel either
    with sessions() as session:
        pickup = session.scalars(select(Pickup).order_by(Pickup.id)).first()
        token, pickup_id, story_id = pickup.token, pickup.id, pickup.story_id
    page = {"Referer": "https://www.valley.example/news/story", "User-Agent": BROWSER}
    first = client.get(f"/px/{token}.gif", headers=page)
    assert first.status_code == 200 and first.headers["content-type"] == "image/gif"
    assert first.content.startswith(b"GIF89a") and len(first.content) < 64
    assert first.headers["cache-control"] == "no-store, no-cache, must-revalidate, max-age=0"
    assert "set-cookie" not in first.headers
    client.get(f"/px/{token}.gif", headers=page)  # a reload
    client.get(f"/px/{token}.gif", headers={"User-Agent": "Slackbot-LinkExpanding 1.0", "Referer": ""})
    client.get(f"/px.gif?story={story_id}", headers={"Referer": "https://copycat.example/p", "User-Agent": BROWSER})
    client.get("/px/not-a-pickup.gif", headers={"User-Agent": BROWSER})
    hits = _wait_for_hits(sessions, 4)
    assert hits == [(pickup_id, True, "", "www.valley.example"), (pickup_id, False, "reload", "www.valley.example"),
                    (pickup_id, False, "preview", ""), (None, True, "", "copycat.example")]  # not the made-up token
    log = client.get("/pickups")
    assert 'id="views-legend"' in log.text and "(+N): loads not counted" in log.text  # the "(+2)" explained
    row = re.search(rf'<tr data-pickup="{pickup_id}">.*?</tr>', log.text, re.S).group(0)
    assert 'class="n views">1 ' in row and "www.valley.example" in row
    overview = client.get("/")
    unreported = re.search(r'<table id="unreported">.*?</table>', overview.text, re.S).group(0)
    assert "copycat.example" in unreported and "valley.example" not in unreported  # www. of a real outlet


def test_pixel_missing_lists_old_granted_pickups_without_a_view(tmp_path):
    config, engine, sessions = _database(tmp_path)
    with sessions() as session:
        ids = story_ids(session)
        add_pickups(session, ids, ["old.example"], start=datetime.now(timezone.utc) - timedelta(days=3), count=1)
        add_pickups(session, ids, ["new.example"], start=datetime.now(timezone.utc), count=1)
        session.commit()
    from processor.desk.web import queries

    with sessions() as session:
        total, rows = queries.pixel_missing(session, datetime.now(timezone.utc))
    assert total == 1 and rows[0].outlet == "old.example"
    engine.dispose()


def test_trusted_header_mode(tmp_path):
    config, engine, _ = _database(tmp_path, web={"password_hash": None, "session_secret_env": None,
                                                 "trusted_user_header": "X-Forwarded-User"})
    with TestClient(build_app(config, engine)) as client:
        assert client.get("/").status_code == 401
        page = client.get("/review", headers={"X-Forwarded-User": "ana"})
        assert page.status_code == 200 and "ana" in page.text and "set-cookie" in page.headers
        assert client.post("/review/1", data={"action": "dismiss"}, headers={"X-Forwarded-User": "ana"}).status_code == 403
    engine.dispose()


@pytest.fixture
def big_site(tmp_path):
    """100,000 pickups (1,000 outlets x 100 stories), bulk-inserted, a week of hits on some."""
    config, engine, sessions = _database(tmp_path)
    now = datetime.now(timezone.utc)
    with sessions() as session:
        from sqlalchemy import insert

        from models import Story

        session.execute(insert(Story), [
            {"canonical_url": f"https://riversideledger.example/s/{i}", "url_key": f"riversideledger.example/s/{i}",
             "title": f"Story {i}", "title_key": f"story {i}", "slug": f"s{i}", "created_at": now, "updated_at": now}
            for i in range(97)])
        ids = story_ids(session)
        assert len(ids) == 100
        add_pickups(session, ids, [f"outlet{i}.example" for i in range(1000)], start=now, count=100_000,
                    granted_every=4)
        first_ids = list(session.scalars(select(Pickup.id).order_by(Pickup.id).limit(500)))
        session.execute(insert(PixelHit), [{"pickup_id": pid, "story_id": None, "token": "", "hit_at": now,
                                            "page_url": "https://x.example/", "page_host": "x.example",
                                            "counted": True, "reason": ""} for pid in first_ids])
        recount(session)
        session.commit()
        assert session.scalar(select(func.count()).select_from(Pickup)) == 100_000
    with TestClient(build_app(config, engine)) as client:
        log_in(client)
        yield client
    engine.dispose()


def test_main_pages_over_100000_pickups(big_site):
    client = big_site
    overview = client.get("/")
    assert overview.status_code == 200 and ">100000</b>pickups" in overview.text
    assert overview.text.count('class="bar"') == 26
    log = client.get("/pickups")
    assert log.text.count("data-pickup=") == 50 and "100000 pickups" in log.text
    older = re.search(r'href="(/pickups\?[^"]*after=[^"]+)"', log.text).group(1).replace("&amp;", "&")
    assert client.get(older).text.count("data-pickup=") == 50
    filtered = client.get("/pickups", params={"outlet": "outlet7.example", "decision": "granted"})
    assert filtered.status_code == 200 and "25 pickups match" in filtered.text
    assert client.get("/outlets/1").status_code == 200 and client.get("/stories/1").status_code == 200
    export = client.get("/pickups.csv", params={"outlet": "outlet7.example"})
    assert len(export.text.strip().splitlines()) == 101


def test_the_queue_offers_only_the_actions_that_fit(site):
    from models import Request

    client, sessions = site["client"], site["sessions"]
    now = datetime.now(timezone.utc)
    with sessions() as session:
        bounce = Request(message_key="k-bounce", processed_at=now, outcome="ignored", needs_person=True,
                         reason="a delivery failure report for a reply we did not send", from_address="mailer-daemon@x.example")
        question = Request(message_key="k-question", processed_at=now, outcome="needs_person", needs_person=True,
                           reason="no story could be identified", from_address="a@b.example")
        session.add_all([bounce, question])
        session.commit()
        ids = bounce.id, question.id
    log_in(client)
    queue = client.get("/review").text

    def actions(request_id: int) -> list[str]:
        item = queue[queue.index(f'id="request-{request_id}"'):]
        return re.findall(r'name="action" value="(\w+)"', item[:item.index("</form>")])

    assert actions(ids[0]) == ["dismiss"]  # nobody to answer
    assert actions(ids[1]) == ["grant", "decline", "answer", "dismiss"]
    answered = client.post(f"/review/{ids[0]}", data={"csrf": csrf_of(queue), "action": "answer", "note": "hi"})
    assert "is an automated message" in re.search(r'id="failed">(.*?)</p>', answered.text).group(1)


def test_dismiss_from_the_review_queue_records_the_editor(site):
    from models import Request

    client, sessions = site["client"], site["sessions"]
    with sessions() as session:
        request = Request(message_key="k1", processed_at=datetime.now(timezone.utc), outcome="needs_person",
                          needs_person=True, reason="no story could be identified", from_address="a@b.example",
                          subject="republish", words="Can we print it?\n<script>alert(1)</script>")
        session.add(request)
        session.commit()
        request_id = request.id
    log_in(client)
    queue = client.get("/review")
    assert f'id="request-{request_id}"' in queue.text
    # What the partner wrote, shown as text: the editor decides from it.
    assert '<blockquote class="words">Can we print it?\n&lt;script&gt;alert(1)&lt;/script&gt;</blockquote>' in queue.text
    forged = client.post(f"/review/{request_id}", data={"csrf": "not-it", "action": "dismiss"})
    assert forged.status_code == 403
    done = client.post(f"/review/{request_id}", data={"csrf": csrf_of(queue.text), "action": "dismiss"})
    assert "dismissed" in re.search(r'id="outcome">(.*?)</p>', done.text).group(1)
    assert f'id="request-{request_id}"' not in done.text
    again = client.post(f"/review/{request_id}", data={"csrf": csrf_of(queue.text), "action": "dismiss"})
    assert "already resolved" in re.search(r'id="failed">(.*?)</p>', again.text).group(1)
    with sessions() as session:
        stored = session.get(Request, request_id)
        assert (stored.resolution, stored.resolved_by) == ("dismissed", "Ana Editor")
    # A link made by someone else cannot put its own words in the page's notes, signed or not.
    for forged_note in ("?failed=Your+session+expired%3A+call++1-555-0100",
                        "?outcome=Granted&sig=" + re.search(r"sig=([^&\"]+)", str(again.url)).group(1)):
        page = client.get("/review" + forged_note)
        assert page.status_code == 200 and 'id="failed"' not in page.text and 'id="outcome"' not in page.text


def test_an_oversized_cookie_is_refused_before_it_is_parsed(site):
    """CVE-2024-7592: before Python 3.11.10 a 16 KB quoted Cookie header cost 0.5 s of CPU to parse, and
    eight in a loop took the public pixel from 0.1 s to 3.5 s per answer."""
    client = site["client"]
    heavy = "a=" + '"' + "\\\\" * 8000 + '"'
    for path in ("/", "/login", "/px.gif?story=1"):
        assert client.get(path, headers={"Cookie": heavy}, follow_redirects=False).status_code == 431
    assert client.get("/", headers={"Cookie": "a=" + "b" * 3000}, follow_redirects=False).status_code == 303


def test_one_client_holding_a_token_cannot_inflate_views_fill_the_table_or_name_a_live_copy(site):
    """The attack: 500 loads of a partner's pixel with a new User-Agent each time were 500 counted views
    (clearing "pixel missing"); any Referer became the outlet's live copy; made-up tokens were each stored."""
    from models import LiveCopy

    client, sessions = site["client"], site["sessions"]
    with sessions() as session:
        token = session.scalars(select(Pickup.token).order_by(Pickup.id)).first()
    for number in range(100):
        client.get(f"/px/{token}.gif", headers={"User-Agent": f"{BROWSER} v{number}",
                                                 "Referer": "https://attacker.example/fake-copy"})
    for number in range(100):
        client.get(f"/px/made-up-{number}.gif", headers={"User-Agent": BROWSER})
    stored = _wait_for_hits(sessions, 60)
    assert len(client.app.state.dashboard.hits) == 0  # nothing else queued: no hit is still on its way
    assert len(stored) == 60  # one client: at most 60 hits a minute are stored at all
    assert sum(counted for _, counted, _, _ in stored) == 10  # and 10 views an hour of one token
    assert {reason for _, counted, reason, _ in stored if not counted} == {"rate"}
    with sessions() as session:
        assert session.scalars(select(LiveCopy)).all() == []  # attacker.example is not valley.example
    log_in(client)
    note = client.get("/").text
    assert re.search(r'id="pixel-abuse">Since the server started: 140 pixel loads over', note)


def test_the_server_writes_no_readers_address(tmp_path):
    """uvicorn's access log wrote every reader's address (pixel loads included); the README says none is kept."""
    import subprocess
    import sys

    import httpx

    from tests.helpers import wait_until
    from tests.servers import free_port
    from tests.web_fixtures import SECRET

    config, engine, _ = _database(tmp_path)
    engine.dispose()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "processor.cli", "--config", str(tmp_path / "config.toml"), "-v",
                               "serve", "--port", str(port)], env={**os.environ, "TEST_WEB_SECRET": SECRET},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def answers() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/px.gif?story=1", headers={"User-Agent": "Mozilla/5.0"}).status_code == 200
            except httpx.HTTPError:
                return False
        assert wait_until(answers, 15)
        httpx.get(f"http://127.0.0.1:{port}/login")
    finally:
        server.terminate()
        output, errors = server.communicate(timeout=15)
    logged = output + errors
    assert '"GET /px.gif' not in logged and '"GET /login' not in logged and "127.0.0.1:" not in output, logged[-2000:]


def test_stories_and_outlets_have_lists_with_search(site):
    """/outlets and /stories were 404: an editor had no list of either."""
    client = site["client"]
    log_in(client)
    stories = client.get("/stories")
    assert stories.status_code == 200 and stories.text.count("data-story=") >= 3
    assert "no: from JTA" in stories.text and ">yes<" in stories.text  # which stories are not free
    found = client.get("/stories?q=bike")
    assert found.text.count("data-story=") == 1 and "Council approves" in found.text
    assert "No stories match “zebra”" in client.get("/stories?q=zebra").text
    outlets = client.get("/outlets")
    assert outlets.status_code == 200 and outlets.text.count("data-outlet=") == 3
    assert client.get("/outlets?q=harbor").text.count("data-outlet=") == 1
    assert '<a href="/outlets/' in outlets.text and client.get("/outlets?q=<script>").text.count("<script>") == 0


def test_stories_and_outlets_sort_by_a_column(site):
    import re

    client = site["client"]
    log_in(client)

    def titles(query: str) -> list[str]:
        return re.findall(r'<a href="/stories/\d+">([^<]+)</a>', client.get("/stories" + query).text)

    by_title = titles("?sort=title")
    assert by_title == sorted(by_title, key=str.casefold) and len(by_title) >= 3
    assert titles("?sort=nonsense") == titles("")  # an unknown order is the list's own
    assert "Title ▾" in client.get("/stories?sort=title").text
    assert 'href="?q=bike&amp;sort=granted"' in client.get("/stories?q=bike").text  # a search keeps its order links
    counts = [int(n) for n in re.findall(r'data-outlet="\d+">.*?<td class="n">(\d+)</td>',
                                          client.get("/outlets?sort=pickups").text)]
    assert counts == sorted(counts, reverse=True) and len(counts) == 3


def test_a_page_per_request_shows_what_they_wrote_the_decision_and_the_reply(site):
    from models import Request

    client, sessions = site["client"], site["sessions"]
    with sessions() as session:
        request = Request(message_key="k-page", processed_at=datetime.now(timezone.utc), outcome="needs_person",
                          needs_person=True, reason="asks about print", from_address="sam@valleynews.example",
                          subject="republish", words="Can we print the bike lanes story?")
        session.add(request)
        session.commit()
        request_id = request.id
    log_in(client)
    page = client.get(f"/requests/{request_id}")
    assert page.status_code == 200 and f"Request {request_id}" in page.text
    assert '<blockquote class="words" id="words">Can we print the bike lanes story?</blockquote>' in page.text
    assert "asks about print" in page.text and "No reply was sent." in page.text
    assert f'href="/review#request-{request_id}"' in page.text
    assert f'href="/requests/{request_id}"' in client.get("/review").text
    assert client.get("/requests/999999").status_code == 404


def test_the_log_is_searched_by_title_words_and_outlet_words(site):
    """`?story=whale` found nothing: the log took only an id or an exact URL."""
    client = site["client"]
    log_in(client)
    everything = client.get("/pickups").text.count("data-pickup=")
    by_title = client.get("/pickups?story=bike+lanes").text
    assert 0 < by_title.count("data-pickup=") < everything and "Council approves" in by_title
    assert client.get("/pickups?story=zebra").text.count("data-pickup=") == 0
    by_outlet = client.get("/pickups?outlet=harbor").text
    assert 0 < by_outlet.count("data-pickup=") < everything and "harbor.example" in by_outlet
    assert client.get("/pickups?outlet=harbor.example").text.count("data-pickup=") == by_outlet.count("data-pickup=")
    assert client.get("/pickups?outlet=arbor.example").text.count("data-pickup=") == 0  # a domain: exactly


def test_the_queue_survives_what_editors_type(site):
    """Notes with a name like "José" or an ellipsis broke the page after the action had been done (the note's
    signature was ASCII only); a long answer in Cyrillic lost the button pressed to the 64 KB form limit; a
    notice form without its button dropped the notice."""
    from models import Request

    client, sessions = site["client"], site["sessions"]
    with sessions() as session:
        request = Request(message_key="k-typed", processed_at=datetime.now(timezone.utc), outcome="needs_person",
                          needs_person=True, reason="asks about print", from_address="a@b.example")
        session.add(request)
        session.commit()
        request_id = request.id
    log_in(client, name="José Núñez")
    csrf = csrf_of(client.get("/review").text)
    unknown = client.post(f"/review/{request_id}", data={"csrf": csrf, "action": "grant", "story": "zzz-no-such"})
    assert unknown.status_code == 200 and "no story in the catalog has" in unknown.text
    long_answer = client.post(f"/review/{request_id}", data={"csrf": csrf, "action": "answer", "note": "Ж" * 20_001})
    assert "at most 20,000 go in a reply" in long_answer.text
    huge = client.post(f"/review/{request_id}", data={"csrf": csrf, "action": "answer", "note": "Ж" * 60_000})
    assert huge.status_code == 413 and "Form too long" in huge.text
    done = client.post(f"/review/{request_id}", data={"csrf": csrf, "action": "dismiss"})
    again = client.post(f"/review/{request_id}", data={"csrf": csrf, "action": "dismiss"})
    assert "dismissed" in done.text and "already resolved (dismissed by José Núñez)" in again.text
    no_button = client.post("/notices/1", data={"csrf": csrf})
    assert "unknown action" in no_button.text
