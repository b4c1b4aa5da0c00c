"""The dashboard's pure parts: passwords, the session cookie, the counting rules, the chart, [web] config."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from processor.config import ConfigError, parse_config
from processor.desk.web import charts, counting, sessions
from processor.desk.web.hits import Hit, HitQueue
from processor.passwords import hash_password, is_password_hash, verify_password
from processor.desk.pickup_log import decode_cursor
from processor.desk.web.queries import parse_filter, week_start


def test_password_hash_round_trip_and_format():
    stored = hash_password("a long passphrase", n=2**10)
    assert stored.startswith("scrypt$1024$8$1$") and stored.count("$") == 5
    assert verify_password("a long passphrase", stored)
    assert not verify_password("a long passphrasE", stored)
    assert hash_password("same", n=2**10) != hash_password("same", n=2**10)  # a random salt each time


@pytest.mark.parametrize("bad", ["", "plain", "scrypt$3$8$1$YQ==$YWFhYWFhYWFhYWFhYWFhYQ==",
                                 "scrypt$1024$8$1$!!$YWFhYWFhYWFhYWFhYWFhYQ==", "bcrypt$1024$8$1$YQ==$YQ==",
                                 "scrypt$1073741824$8$1$YQ==$YWFhYWFhYWFhYWFhYWFhYQ=="])
def test_malformed_hashes_are_refused(bad):
    assert not is_password_hash(bad)
    assert not verify_password("anything", bad)


def test_session_cookie_is_signed_and_expires():
    secret = b"k" * 32
    session = sessions.new_session("Ana", now=1000)
    cookie = sessions.encode(session, secret)
    assert sessions.decode(cookie, secret, now=1001) == session
    assert sessions.decode(cookie, b"other" * 8, now=1001) is None
    assert sessions.decode(cookie, secret, now=1000 + sessions.LIFETIME_SECONDS + 1) is None
    payload, signature = cookie.rsplit(".", 1)
    forged = sessions.encode(sessions.Session("Mallory", session.csrf, session.expires), b"guess" * 8)
    assert sessions.decode(forged.rsplit(".", 1)[0] + "." + signature, secret, now=1001) is None
    assert sessions.decode("garbage", secret, now=1) is None and sessions.decode(None, secret, now=1) is None


def test_csrf_token_must_match_the_session():
    session = sessions.new_session("Ana", now=0)
    assert sessions.csrf_ok(session, session.csrf)
    other_first = "y" if session.csrf[0] == "x" else "x"  # one character changed, whatever the random token is
    assert not sessions.csrf_ok(session, other_first + session.csrf[1:])
    assert not sessions.csrf_ok(session, "") and not sessions.csrf_ok(None, session.csrf)


@pytest.mark.parametrize("agent, reason", [
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "preview"),
    ("Twitterbot/1.0", "preview"),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "preview"),
    ("LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)", "preview"),
    ("WhatsApp/2.23.20.0", "preview"),
    ("TelegramBot (like TwitterBot)", "preview"),
    ("Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)", "preview"),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bot"),
    ("Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Applebot/0.1", "bot"),
    ("SomeCrawler/3.1", "bot"), ("Example-Spider", "bot"), ("MyFeedBot/1.0", "bot"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36", "bot"),
    ("curl/8.4.0", "bot"), ("Wget/1.21.4", "bot"), ("python-requests/2.31.0", "bot"), ("", "bot"),
])
def test_previews_and_bots_are_not_counted(agent, reason):
    assert counting.agent_verdict(agent) == counting.Verdict(False, reason)


@pytest.mark.parametrize("agent", [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36 "
    "[Pinterest/Android]",
])
def test_browsers_are_counted(agent):
    assert counting.agent_verdict(agent).counted


def test_a_reload_within_30_minutes_is_not_counted_again():
    clock = [0.0]
    memory = counting.ReloadMemory(clock=lambda: clock[0])
    browser = "Mozilla/5.0 Firefox/125.0"
    assert counting.verdict(browser, "https://a.example/story", "tok", memory).counted
    clock[0] = 60
    assert counting.verdict(browser, "https://a.example/story", "tok", memory) == counting.Verdict(False, "reload")
    assert counting.verdict(browser, "https://b.example/story", "tok", memory).counted  # another page
    assert counting.verdict(browser + " x", "https://a.example/story", "tok", memory).counted  # another browser
    clock[0] = 60 + counting.RELOAD_WINDOW_SECONDS
    assert counting.verdict(browser, "https://a.example/story", "tok", memory).counted


def test_reload_memory_stays_bounded_and_keeps_only_hashes():
    memory = counting.ReloadMemory(max_entries=100, clock=lambda: 0.0)
    keys = [counting.fingerprint("ua", f"https://x.example/{index}", "t") for index in range(1000)]
    for key in keys:
        memory.seen_recently(key)
    assert len(memory) <= 100
    assert all(len(key) == 32 and "x.example" not in key for key in keys)  # what the memory is given: hashes


def test_page_of_referer():
    assert counting.page_of("https://www.Valley.example/news/a?b=1") == ("https://www.Valley.example/news/a?b=1",
                                                                         "www.valley.example")
    assert counting.page_of("") == ("", "") and counting.page_of("android-app://x") == ("", "")
    assert counting.valid_token("AbC-_09") and not counting.valid_token("../x") and not counting.valid_token("a" * 65)


def test_hit_queue_drops_and_counts_when_full():
    queue = HitQueue(max_size=3)
    hit = Hit("t", None, datetime.now(timezone.utc), "", "", True, "")
    assert [queue.put(hit) for _ in range(5)] == [True, True, True, False, False]
    assert queue.dropped == 2 and len(queue.take(2)) == 2 and len(queue) == 1


def test_weekly_bars_scale_to_the_highest_week():
    chart = charts.weekly_bars([(date(2026, 11, 2), 0), (date(2026, 11, 9), 5), (date(2026, 11, 16), 10)],
                               width=300, height=122)
    heights = [bar.height for bar in chart.bars]
    assert heights[0] == 0 and heights[2] == 88 and heights[1] == 44
    assert chart.bars[2].y + chart.bars[2].height == chart.baseline
    assert chart.bars[1].title == "week of 2026-11-09: 5 pickups" and chart.bars[0].label == "2 Nov"
    assert charts.weekly_bars([]).bars == []


def test_filter_parsing_and_cursor():
    flt, problems = parse_filter({"outlet": " Valley.Example ", "since": "2026-11-01", "until": "nope",
                                  "decision": "maybe"})
    assert flt.outlet == "valley.example" and flt.since == date(2026, 11, 1) and flt.until is None
    assert flt.decision == "" and len(problems) == 2
    assert decode_cursor("garbage") is None and decode_cursor("1700000000.5_12")[1] == 12
    assert week_start(date(2026, 11, 29)) == date(2026, 11, 23)  # a Sunday -> its Monday


def _config(web: dict, environ=None):
    data = {"worker": {"source": "maildir", "sink": "outbox"}, "maildir": {"path": "m"}, "outbox": {"path": "o"},
            "publication": {"name": "P", "site_url": "https://p.example/", "guidelines_url": "https://p.example/g",
                            "contact_email": "r@p.example", "pixel_url": "https://p.example/px/{token}.gif"},
            "web": web}
    return parse_config(data, environ=environ or {})


def test_web_config():
    stored = hash_password("pw", n=2**10)
    web = _config({"password_hash": stored, "session_secret_env": "S"}, {"S": "x" * 32}).web
    assert web.password_hash == stored and web.cookie_secure and "x" * 32 not in repr(web)
    proxy = _config({"trusted_user_header": "X-Forwarded-User", "cookie_secure": False}).web
    assert proxy.trusted_user_header == "X-Forwarded-User" and proxy.session_secret is None
    assert _config({"trusted_user_header": "X-Forwarded-User"}).web.password_hash is None
    with pytest.raises(ConfigError, match=r"\[web\] password_hash is missing"):
        _config({})
    with pytest.raises(ConfigError, match=r"\[web\] session_secret_env or session_secret_file is missing"):
        _config({"password_hash": stored})
    with pytest.raises(ConfigError, match=r"\[web\] password_hash is not a hash"):
        _config({"password_hash": "hunter2", "session_secret_env": "S"}, {"S": "x" * 32})
    with pytest.raises(ConfigError, match="at least 32"):  # when the dashboard reads it, at its start
        _config({"password_hash": stored, "session_secret_env": "S"}, {"S": "short"}).web.session_secret.reveal()
    with pytest.raises(ConfigError, match="set only one"):
        _config({"password_hash": stored, "trusted_user_header": "X-User"})
    with pytest.raises(ConfigError, match=r"\[web\] cookie_secure must be true or false"):
        _config({"trusted_user_header": "X-User", "cookie_secure": "no"})



def test_the_web_table_is_optional():
    data = {"worker": {"source": "maildir", "sink": "outbox"}, "maildir": {"path": "m"}, "outbox": {"path": "o"},
            "publication": {"name": "P", "site_url": "https://p.example/", "guidelines_url": "https://p.example/g",
                            "contact_email": "r@p.example", "pixel_url": "https://p.example/px/{token}.gif"}}
    assert parse_config(data, environ={}).web is None


def test_an_outlet_key_or_a_search_holding_wildcards_matches_only_itself(maildir_pipeline):
    """A sender `x@%` made the outlet `%`, and "unreported pickups" read it as a LIKE wildcard: every
    page showing that story's pixel counted as the outlet's own. Searches typed with % or _ likewise."""
    from datetime import datetime, timezone

    from sqlalchemy import select

    from models import Outlet, Pickup, PixelHit, Story
    from processor.desk.story_stats import story_counts
    from processor.desk.web.queries import unreported_pickups

    now = datetime.now(timezone.utc)
    with maildir_pipeline["sessions"]() as session:
        story = session.scalars(select(Story)).first()
        outlet = Outlet(key="%", display_name="x", created_at=now)
        session.add(outlet)
        session.flush()
        session.add(Pickup(outlet_id=outlet.id, story_id=story.id, decision="granted", token="tok-wild",
                           first_requested_at=now, last_requested_at=now))
        session.add(PixelHit(story_id=story.id, hit_at=now, page_url="https://copycat.example/p",
                             page_host="copycat.example", counted=True))
        session.flush()
        assert [row.page_host for row in unreported_pickups(session, ("riversideledger.example",))] == [
            "copycat.example"]
        assert [row.title for row in story_counts(session, search="bike")] == [story.title]
        assert story_counts(session, search="%") == [] and story_counts(session, search="_") == []
