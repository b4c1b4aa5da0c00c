"""Login guessing: throttled per client address and per name with growing lock-outs, one attempt per
login form, scrypt on a small pool of its own (processor/desk/web/throttle.py, logins.py)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from starlette.testclient import TestClient

from processor.desk.web import logins, sessions
from processor.desk.web.app import build_app
from processor.desk.web.logins import SCRYPT_QUEUE, SCRYPT_SLOTS, Busy, LoginGuard
from processor.desk.web.throttle import FIRST_LOCK_SECONDS, FREE_ATTEMPTS, WINDOW_SECONDS, LoginThrottle
from tests.test_web_pages import _database
from tests.web_fixtures import PASSWORD, SECRET, csrf_of, log_in


def test_lock_outs_grow_and_a_success_forgives():
    throttle, keys, now = LoginThrottle(), ("address:1.2.3.4", "name:ana"), 1000.0
    for _ in range(FREE_ATTEMPTS):
        assert throttle.wait_seconds(keys, now) == 0
        throttle.attempt(keys, now)
    assert throttle.wait_seconds(keys, now) == 0
    throttle.attempt(keys, now)  # the first one over: locked for a minute
    assert throttle.wait_seconds(keys, now) == FIRST_LOCK_SECONDS
    throttle.attempt(keys, now + FIRST_LOCK_SECONDS)  # and each further one doubles it
    assert throttle.wait_seconds(keys, now + FIRST_LOCK_SECONDS) == 2 * FIRST_LOCK_SECONDS
    assert throttle.wait_seconds(("address:5.6.7.8", "name:ana"), now) > 0  # the name alone is locked too
    throttle.succeeded(keys)
    assert throttle.wait_seconds(keys, now) == 0
    throttle.attempt(keys, now)
    assert throttle.wait_seconds(keys, now + WINDOW_SECONDS + 1) == 0


@pytest.fixture
def dashboard(tmp_path):
    config, engine, _ = _database(tmp_path)
    with TestClient(build_app(config, engine)) as client:
        yield client
    engine.dispose()


def test_guessing_is_locked_out_even_for_the_right_password_then(dashboard):
    for _ in range(FREE_ATTEMPTS + 1):
        assert log_in(dashboard, password="guess").status_code == 401
    locked = log_in(dashboard)  # the right password, too late
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert "Too many failed logins" in locked.text


def test_a_login_form_serves_one_attempt_and_expires_soon(dashboard):
    page = dashboard.get("/login")
    cookie = dashboard.cookies.get(sessions.COOKIE_NAME)
    form = sessions.decode(cookie, SECRET.encode(), time.time())
    assert form.expires - time.time() <= logins.LOGIN_FORM_SECONDS
    fields = {"csrf": csrf_of(page.text), "name": "Ana", "password": "guess", "next": "/"}
    assert dashboard.post("/login", data=fields, follow_redirects=False).status_code == 401
    dashboard.cookies.set(sessions.COOKIE_NAME, cookie)  # the same form again, as a guessing script would
    again = dashboard.post("/login", data={**fields, "password": PASSWORD}, follow_redirects=False)
    assert again.status_code == 403 and "used already" in again.text


def test_scrypt_runs_on_a_few_threads_of_its_own_and_a_crowd_is_turned_away(monkeypatch):
    running, most = [0], [0]
    lock, release = threading.Lock(), threading.Event()

    def slow_check(password, stored):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(5)
        with lock:
            running[0] -= 1
        return False

    monkeypatch.setattr(logins, "verify_password", slow_check)
    guard = LoginGuard()

    async def crowd():
        tasks = [asyncio.create_task(guard.verify("guess", "stored")) for _ in range(40)]
        await asyncio.sleep(0.2)
        release.set()
        return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        results = asyncio.run(crowd())
    finally:
        guard.close()
    assert most[0] == SCRYPT_SLOTS
    assert sum(result is False for result in results) == SCRYPT_SLOTS + SCRYPT_QUEUE
    assert sum(isinstance(result, Busy) for result in results) == 40 - SCRYPT_SLOTS - SCRYPT_QUEUE
