#!/usr/bin/env python3
"""Regenerates the README's screenshots over the demo's data, in headless Chromium: docs/dashboard.png (the
overview) and docs/review-queue.png (the review queue, at a phone's 390 px).

Runs `republish demo` into a scratch folder, serves the dashboard on a random loopback port, loads
the pixels of some of the demo's pickups as readers' browsers would (one of them from a site that
never asked), logs in through the form and saves the screenshots.

    .venv/bin/python scripts/screenshot.py [OUTPUT_FOLDER]
"""

from __future__ import annotations

import secrets
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from processor.config import load_config
from processor.demo import run_demo
from processor.desk.web.app import build_app
from processor.passwords import hash_password

READER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
READERS_PAGES = {"valleynews.example": 3, "harborgazette.example": 2}


def main(output: Path) -> None:  # a folder
    folder = Path(tempfile.mkdtemp(prefix="republish-screenshot-"))
    run_demo(folder)
    password = secrets.token_urlsafe(16)
    (folder / "session-secret").write_text(secrets.token_urlsafe(32))
    with open(folder / "config.toml", "a", encoding="utf-8") as config_file:
        config_file.write(f'\n[web]\npassword_hash = "{hash_password(password)}"\n'
                          'session_secret_file = "session-secret"\ncookie_secure = false\n')
    config = load_config(folder / "config.toml", environ={})
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(build_app(config), log_level="warning"))
    threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    try:
        _read_some_copies(folder / "republish.sqlite3", base)
        time.sleep(1.5)  # the hits are written every second
        _shoot(base, password, output)
    finally:
        server.should_exit = True


def _read_some_copies(database: Path, base: str) -> None:
    """Readers on the partners' pages (one of them reloading), a link preview, and a copy nobody asked for."""
    rows = sqlite3.connect(database).execute(
        "SELECT p.token, p.story_id, o.key FROM pickups p JOIN outlets o ON o.id = p.outlet_id "
        "WHERE p.decision = 'granted'").fetchall()
    with httpx.Client() as client:
        for token, story_id, outlet in rows:
            for reader in range(READERS_PAGES.get(outlet, 0)):
                page = f"https://www.{outlet}/2026/11/story-{story_id}/"
                client.get(f"{base}/px/{token}.gif?story={story_id}",
                           headers={"User-Agent": f"{READER} reader/{reader}", "Referer": page})
            client.get(f"{base}/px/{token}.gif", headers={"User-Agent": "Slackbot-LinkExpanding 1.0"})
        story_id = rows[0][1]
        client.get(f"{base}/px.gif?story={story_id}",
                   headers={"User-Agent": READER, "Referer": "https://citybeat.example/news/bike-lanes"})


def _shoot(base: str, password: str, output: Path) -> None:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1240,1400",
                     "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(base + "/")
        driver.find_element(By.NAME, "name").send_keys("Ana Editor")
        driver.find_element(By.NAME, "password").send_keys(password)
        driver.find_element(By.CSS_SELECTOR, "#login button").click()
        time.sleep(0.5)
        output.mkdir(parents=True, exist_ok=True)
        _page(driver, base + "/", 1240, output / "dashboard.png")
        _page(driver, base + "/review", 390, output / "review-queue.png")
    finally:
        driver.quit()


def _page(driver, url: str, width: int, path: Path) -> None:
    # The whole page in one image: headless windows do not grow past the screen, the emulated device can.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 600})
    driver.get(url)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": min(height, 2400), "deviceScaleFactor": 1, "mobile": width < 600})
    driver.save_screenshot(str(path))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "docs")
