"""The dashboard in a real headless Chromium (Debian's, through its own chromedriver), over the real
pipeline: Dovecot, an SMTP server, SQLite and PostgreSQL. Log in, filter the log, resolve a review item
and see the reply arrive, and load a partner's page carrying a snippet so that its pixel is counted."""

from __future__ import annotations

import socket
import threading
from email import message_from_bytes, policy
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from models import Pickup
from processor.config import load_config
from processor.app import reply_sender
from processor.desk.web.app import build_app
from tests.helpers import deliver, request_message, wait_until
from tests.servers import missing
from tests.web_fixtures import PASSWORD, SECRET, add_web_table

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
BIKE_LANES = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
# Headless Chromium says "HeadlessChrome", which the pixel rightly does not count; a reader's browser does not.
READER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        missing("chromium and chromium-driver are not installed", "scripts/setup.sh installs them from Debian")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--user-agent={READER_AGENT}", "--window-size=1280,1000"):
        options.add_argument(argument)
    # An explicit driver: Selenium must never go looking for one to download.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture
def dashboard(pipeline):
    """`republish serve` (uvicorn) in a thread on a random loopback port over the pipeline's database, with
    the publication's pixel pointing at it, as the README says to set it up."""
    import uvicorn

    sock = _free_socket()
    port = sock.getsockname()[1]
    path: Path = pipeline["path"]
    text = path.read_text(encoding="utf-8")
    start = text.index("pixel_url = ")
    end = text.index("\n", start)
    path.write_text(text[:start] + f'pixel_url = "http://127.0.0.1:{port}/px/{{token}}.gif?story={{story_id}}"'
                    + text[end:], encoding="utf-8")
    add_web_table(path, environ=pipeline["env"])
    config = load_config(path, environ={**pipeline["env"], "TEST_WEB_SECRET": SECRET})
    server = uvicorn.Server(uvicorn.Config(build_app(config, send_reply=reply_sender(config)), log_level="warning",
                                          lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    assert wait_until(lambda: server.started, 15)
    yield {**pipeline, "config": config, "url": f"http://127.0.0.1:{port}"}
    server.should_exit = True
    thread.join(timeout=15)
    sock.close()


def _log_in(driver, base: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()  # cookies are per host, not per port: start each test logged out
    driver.get(base + "/pickups")
    assert "/login" in driver.current_url
    form = driver.find_element(By.ID, "login")
    form.find_element(By.NAME, "name").send_keys("Ana Editor")
    form.find_element(By.NAME, "password").send_keys(PASSWORD)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert wait_until(lambda: driver.current_url.startswith(base + "/pickups"), 10)


def _rows(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [row.text for row in driver.find_elements(By.CSS_SELECTOR, "table.pickups tr[data-pickup]")]


@pytest.mark.integration
def test_log_in_and_filter_the_pickup_log(browser, dashboard):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    deliver(dashboard["user"],
            request_message(body=f"Taking {BIKE_LANES}", message_id="<b1@valleynews.example>"),
            request_message(sender="Lena <lena@harborgazette.example>", message_id="<b2@harborgazette.example>",
                            body=f"We run {BIKE_LANES} and "
                                 "https://riversideledger.example/news/2026/11/library-launches-free-tutoring-for-teens/"))
    dashboard["run"](dashboard["config"])
    _log_in(browser, dashboard["url"])
    assert len(_rows(browser)) == 3
    form = browser.find_element(By.ID, "filters")
    form.find_element(By.NAME, "outlet").send_keys("harborgazette.example")
    Select(form.find_element(By.NAME, "decision")).select_by_value("granted")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert wait_until(lambda: "outlet=harborgazette.example" in browser.current_url, 10)
    rows = _rows(browser)
    assert len(rows) == 2 and all("harborgazette.example" in row and "granted" in row for row in rows)
    assert "2 pickups match" in browser.find_element(By.ID, "total").text


@pytest.mark.integration
def test_grant_from_the_review_queue_sends_the_reply(browser, dashboard):
    from selenium.webdriver.common.by import By

    deliver(dashboard["user"], request_message(body="Could we run your piece about the new lanes downtown?",
                                               message_id="<q1@valleynews.example>"))
    dashboard["run"](dashboard["config"])
    assert dashboard["smtp"].messages == []  # no story identified: left for a person
    _log_in(browser, dashboard["url"])
    browser.get(dashboard["url"] + "/review")
    item = browser.find_element(By.CSS_SELECTOR, "div.item")
    assert "priya@valleynews.example" in item.text and "no story could be identified" in item.text
    # The story is found by words of its title, as the field's suggestions offer them.
    assert "Council approves protected bike lanes on Main Street" in [option.get_attribute("value") for option in
                                                      browser.find_elements(By.CSS_SELECTOR, "#catalog-titles option")]
    item.find_element(By.NAME, "story").send_keys("protected bike lanes")
    item.find_element(By.CSS_SELECTOR, "button[value=grant]").click()
    assert wait_until(lambda: browser.find_elements(By.ID, "outcome"), 30)
    assert "granted" in browser.find_element(By.ID, "outcome").text
    assert wait_until(lambda: dashboard["smtp"].messages, 10)
    mail_from, recipients, raw = dashboard["smtp"].messages[0]
    reply = message_from_bytes(raw, policy=policy.default)
    assert recipients == ["priya@valleynews.example"] and reply["In-Reply-To"] == "<q1@valleynews.example>"
    assert "Council approves protected bike lanes" in reply.get_body(("plain",)).get_content()
    assert "Nothing waits for a person" in browser.page_source


@pytest.mark.integration
def test_answer_in_own_words_then_reopen(browser, dashboard):
    from selenium.webdriver.common.by import By

    deliver(dashboard["user"], request_message(body=f"We run {BIKE_LANES}\n\nMay we also shorten it for print?",
                                               message_id="<a1@valleynews.example>"))
    dashboard["run"](dashboard["config"])
    assert len(dashboard["smtp"].messages) == 1  # the worker's snippet; the question waits for a person
    _log_in(browser, dashboard["url"])
    browser.get(dashboard["url"] + "/review")
    item = browser.find_element(By.CSS_SELECTOR, "div.item")
    assert "May we also shorten it for print?" in item.find_element(By.CSS_SELECTOR, "blockquote.words").text
    buttons = [b.get_attribute("value") for b in item.find_elements(By.CSS_SELECTOR, "button")]
    assert buttons == ["answer", "dismiss"]  # a reply went out already: no second grant
    item.find_element(By.NAME, "note").send_keys("Yes: trim it, but keep the credit line.")
    item.find_element(By.CSS_SELECTOR, "button[value=answer]").click()
    assert wait_until(lambda: browser.find_elements(By.ID, "outcome"), 30)
    assert "answered" in browser.find_element(By.ID, "outcome").text
    assert wait_until(lambda: len(dashboard["smtp"].messages) == 2, 10)
    answer = message_from_bytes(dashboard["smtp"].messages[1][2], policy=policy.default)
    text = answer.get_body(("plain",)).get_content()
    assert "Yes: trim it, but keep the credit line." in text and "Ana Editor" in text
    assert answer["In-Reply-To"] == "<a1@valleynews.example>"
    browser.get(dashboard["url"] + "/requests/1")
    replies = browser.find_elements(By.CSS_SELECTOR, "pre.reply")
    assert len(replies) == 2 and "Yes: trim it" in replies[1].text
    browser.find_element(By.CSS_SELECTOR, "button[value=reopen]").click()
    # The request page has an element of that id too: wait for the queue's page itself.
    assert wait_until(lambda: "/review?" in browser.current_url, 30)
    assert "reopened" in browser.find_element(By.ID, "outcome").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "div.item")) == 1


# What sticks out past the right edge, named so that a failure says what to fix.
WIDEST = """return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth + 1)
  .filter(e => !e.closest('table') || e.tagName === 'TABLE').slice(0, 5)
  .map(e => e.tagName + '.' + (e.getAttribute('class') || '') + ' ' + Math.round(e.getBoundingClientRect().right) + 'px').join(', ')"""
PAGES = ("/", "/pickups", "/stories", "/outlets", "/review", "/requests/1", "/stories/1", "/outlets/1")


@pytest.mark.integration
def test_every_page_fits_a_phone_screen(browser, dashboard):
    from selenium.webdriver.common.by import By

    deliver(dashboard["user"], request_message(body=f"Taking {BIKE_LANES}, and a question: may we translate it?",
                                               message_id="<w1@valleynews.example>"))
    dashboard["run"](dashboard["config"])
    _log_in(browser, dashboard["url"])
    browser.set_window_size(390, 844)
    try:
        for path in PAGES:
            browser.get(dashboard["url"] + path)
            assert browser.find_element(By.TAG_NAME, "h1").text, path
            width = browser.execute_script("return window.innerWidth")
            assert width <= 400, "the window is not phone-sized"
            assert browser.execute_script("return document.documentElement.scrollWidth") <= width, \
                f"{path} scrolls sideways at {width} px: {browser.execute_script(WIDEST)}"
            if path != "/":
                logout = browser.find_element(By.CSS_SELECTOR, "header button")
                right = browser.execute_script("return arguments[0].getBoundingClientRect().right", logout)
                assert right <= width, f"'Log out' is cut off on {path}"
    finally:
        browser.set_window_size(1280, 1000)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.mark.integration
def test_the_pixel_of_a_published_snippet_shows_on_the_dashboard(browser, dashboard, tmp_path):
    from selenium.webdriver.common.by import By

    deliver(dashboard["user"], request_message(body=f"Taking {BIKE_LANES}", message_id="<p1@valleynews.example>"))
    dashboard["run"](dashboard["config"])
    reply = message_from_bytes(dashboard["smtp"].messages[0][2], policy=policy.default)
    snippet = next(part for part in reply.iter_attachments() if part.get_filename().endswith(".html")).get_content()
    assert f"{dashboard['url']}/px/" in snippet
    # The partner's page: the snippet pasted into an article, served from another loopback port.
    site = tmp_path / "site"
    site.mkdir()
    (site / "story.html").write_text(f"<!doctype html><html><body><main>{snippet}</main></body></html>",
                                     encoding="utf-8")
    partner = ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Quiet(*a, directory=str(site)))
    threading.Thread(target=partner.serve_forever, daemon=True).start()
    try:
        _log_in(browser, dashboard["url"])
        browser.get(f"http://127.0.0.1:{partner.server_port}/story.html")
        assert wait_until(lambda: browser.execute_script(
            "return [...document.images].every(i => i.complete && i.naturalWidth === 1)"), 10)
        browser.refresh()  # the same reader again: not a second view
        assert wait_until(lambda: browser.execute_script(
            "return document.readyState === 'complete' && [...document.images].every(i => i.complete)"), 10)
    finally:
        partner.shutdown()
        partner.server_close()
    with dashboard["sessions"]() as session:
        pickup_id = session.scalar(select(Pickup.id))

    def views_shown() -> bool:  # both hits written (the writer flushes in batches, about once a second)
        browser.get(dashboard["url"] + "/pickups")
        row = browser.find_element(By.CSS_SELECTOR, f'tr[data-pickup="{pickup_id}"]')
        return row.find_element(By.CSS_SELECTOR, "td.views").text.startswith("1 (+")

    assert wait_until(views_shown, 15)
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-pickup="{pickup_id}"]')
    assert "(+1)" in row.find_element(By.CSS_SELECTOR, "td.views").text  # the reload, not counted
    assert row.find_element(By.CSS_SELECTOR, "td.hosts").text == "127.0.0.1"
