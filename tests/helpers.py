"""Building configs and requests for tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import os
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import replace

import imapclient

from processor.app import build_worker
from processor.catalog.stories import import_articles, parse_source
from processor.config import load_config

SITE = "https://riversideledger.example"
PUBLICATION = f"""
[publication]
name = "The Riverside Ledger"
site_url = "{SITE}/"
allowed_hosts = ["riversideledger.example"]
guidelines_url = "{SITE}/republishing-guidelines/"
contact_email = "republish@riversideledger.example"
pixel_url = "{SITE}/pixel.gif?story={{story_id}}&outlet={{outlet_id}}&t={{token}}"
"""


def write_config(folder: Path, database_url: str, *, imap: dict | None = None, smtp_port: int | None = None,
                 maildir: Path | None = None, outbox: Path | None = None, extra: str = "",
                 batch_size: int | None = 10) -> Path:
    """A config for a test (small batches, a quick poll); benchmarks pass batch_size=None for the product's default."""
    parts = [f'[database]\nurl = "{database_url}"\n']
    worker = ["[worker]", f'source = "{"imap" if imap else "maildir"}"', f'sink = "{"smtp" if smtp_port else "outbox"}"',
              "poll_seconds = 1"] + ([f"batch_size = {batch_size}"] if batch_size else [])
    parts.append("\n".join(worker) + "\n" + extra)
    if imap:
        parts.append(
            "[imap]\n"
            f'host = "{imap["host"]}"\nport = {imap.get("use_port", imap["port"])}\n'
            f'security = "{imap.get("security", "none")}"\nusername = "{imap["username"]}"\n'
            'password_env = "TEST_IMAP_PASSWORD"\nfolder = "INBOX"\n'
            + (f'ca_file = "{imap["ca_file"]}"\n' if imap.get("security", "none") != "none" else "")
        )
    if smtp_port:
        parts.append(
            f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
            'from_address = "republish@riversideledger.example"\n'
        )
    if maildir:
        parts.append(f'[maildir]\npath = "{maildir}"\n')
    if outbox:
        parts.append(f'[outbox]\npath = "{outbox}"\n')
    parts.append(PUBLICATION)
    path = folder / "config.toml"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def import_pages(sessions, publication, pages) -> None:
    """Article pages into the catalog, as `republish stories import` takes them."""
    with sessions() as session:
        for page in pages:
            import_articles(session, parse_source(page.read_bytes(), url=None, publication=publication),
                            source=page.name, now=datetime.now(timezone.utc))
        session.commit()




def load(path: Path, password: str = ""):
    return load_config(path, environ={"TEST_IMAP_PASSWORD": password})


def request_message(*, sender: str = "Priya Shah <priya@valleynews.example>", subject: str = "republish",
                    body: str = "", html: str | None = None, message_id: str = "<r1@valleynews.example>",
                    age: timedelta = timedelta(minutes=5), headers: dict[str, str] | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "republish@riversideledger.example"
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(timezone.utc) - age)
    if message_id:
        message["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body or "Hello")
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message.as_bytes()


def imap_client(user) -> imapclient.IMAPClient:
    client = imapclient.IMAPClient(user["host"], port=user["port"], ssl=False)
    client.login(user["username"], user["password"])
    return client


def deliver(user, *messages: bytes) -> None:
    client = imap_client(user)
    for raw in messages:
        client.append("INBOX", raw)
    client.logout()


def inbox_state(user) -> dict[str, set]:
    client = imap_client(user)
    client.select_folder("INBOX", readonly=True)
    data = client.fetch(client.search("ALL"), ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    client.logout()
    state = {}
    for item in data.values():
        header = item[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().strip()
        state[header.split(":", 1)[1].strip() if ":" in header else ""] = set(item[b"FLAGS"])
    return state


MARK_KEYWORDS = {"done": {b"$RepublishDone"}, "person": {b"\\Flagged", b"$RepublishPerson"},
                 "ignored": {b"$RepublishIgnored"}}


def shows(user, flags: set, mark: str) -> bool:
    """Whether a message's flags show `mark` ("done", "person", "ignored") as the user's server can: the
    keywords where it keeps them; on one that keeps none (Exchange), \\Flagged for a person, else nothing."""
    if user.get("kind") == "exchange":
        return (b"\\Flagged" in flags) == (mark == "person")
    return MARK_KEYWORDS[mark] <= flags


def sent_folder_count(user) -> int:
    client = imap_client(user)
    count = client.select_folder(user.get("sent_folder", "Sent"), readonly=True)[b"EXISTS"]
    client.logout()
    return count


@contextmanager
def running_worker(config, poll_seconds: float, imap: dict | None = None, **worker_settings):
    """`republish run` in a thread, stopped (SIGTERM-style) on exit; reconnect delays without jitter."""
    config = replace(config, worker=replace(config.worker, poll_seconds=poll_seconds, **worker_settings),
                     imap=replace(config.imap, **(imap or {})) if config.imap else None)
    worker, engine = build_worker(config)
    worker.edges.rand = lambda: 0.0
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, kwargs={"once": False, "stop": stop})
    thread.start()
    try:
        time.sleep(0.5)  # let it reach IDLE
        yield thread
    finally:
        stop.set()
        thread.join(timeout=15)
        worker.close()
        engine.dispose()
    assert not thread.is_alive()


def wait_for_replies(smtp, count: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while len(smtp.messages) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def folder_flags(user, folder: str = "INBOX") -> list[tuple[str, set]]:
    """(Message-ID, flags) of every message in the folder, duplicates included."""
    client = imap_client(user)
    client.select_folder(folder, readonly=True)
    data = client.fetch(client.search("ALL"), ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
    client.logout()
    rows = []
    for uid in sorted(data):
        header = data[uid][b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode().strip()
        rows.append((header.split(":", 1)[1].strip() if ":" in header else "", set(data[uid][b"FLAGS"])))
    return rows


def start_worker_process(config_path: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    """The real `republish` command in its own process (so it can be killed -9)."""
    return subprocess.Popen([sys.executable, "-m", "processor.cli", "--config", str(config_path), *args],
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
