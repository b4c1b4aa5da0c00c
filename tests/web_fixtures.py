"""A dashboard over a test database: the [web] table, sample pickups, a logged-in client."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert, select

from models import Outlet, Pickup, Story
from processor.config import load_config
from processor.records.pickup_counts import recount
from processor.passwords import hash_password

PASSWORD = "correct horse battery staple"
# Cheap scrypt parameters: the tests hash and check many times; the command uses the real cost.
PASSWORD_HASH = hash_password(PASSWORD, n=2**10)
SECRET = "s" * 40


def add_web_table(config_path: Path, environ: dict[str, str] | None = None, **keys) -> object:
    """Append a [web] table (password login unless told otherwise) and load the config again."""
    values = {"password_hash": PASSWORD_HASH, "session_secret_env": "TEST_WEB_SECRET", "cookie_secure": False, **keys}
    lines = ["", "[web]"]
    for key, value in values.items():
        if value is None:
            continue
        lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else repr(value).replace(chr(39), chr(34))}")
    with open(config_path, "a", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    return load_config(config_path, environ={"TEST_WEB_SECRET": SECRET, **(environ or {})})


def add_pickups(session, story_ids: list[int], outlets: list[str], *, start: datetime, count: int,
                granted_every: int = 1) -> None:
    """`count` pickups spread over outlets and stories one hour apart from `start` backwards, inserted in bulk
    (then counted again, as the bulk insert goes around the counts kept as pickups change)."""
    now = datetime.now(timezone.utc)
    session.execute(insert(Outlet), [{"key": key, "display_name": "", "created_at": now} for key in outlets])
    outlet_ids = list(session.scalars(select(Outlet.id).where(Outlet.key.in_(outlets)).order_by(Outlet.id)))
    rows = []
    pairs = [(o, s) for o in outlet_ids for s in story_ids]
    assert count <= len(pairs), "one pickup per outlet and story"
    for index, (outlet_id, story_id) in enumerate(pairs[:count]):
        when = start - timedelta(hours=index)
        rows.append({"outlet_id": outlet_id, "story_id": story_id, "token": secrets.token_urlsafe(12),
                     "decision": "granted" if index % granted_every == 0 else "declined", "reason": "",
                     "first_requested_at": when, "last_requested_at": when})
    session.execute(insert(Pickup), rows)
    recount(session)


def story_ids(session) -> list[int]:
    return list(session.scalars(select(Story.id).order_by(Story.id)))


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def log_in(client, name: str = "Ana Editor", password: str = PASSWORD):
    page = client.get("/login")
    return client.post("/login", data={"csrf": csrf_of(page.text), "name": name, "password": password, "next": "/"},
                       follow_redirects=False)
