"""A private Dovecot for the benchmarks, and a mailbox filled with realistic mail straight into its Maildir."""

from __future__ import annotations

import os
import random
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from processor.records import db
from processor.catalog.stories import import_articles, parse_source
from tests.servers import Dovecot, dovecot_binary

SAMPLES = Path(__file__).resolve().parents[1] / "processor" / "sample_data" / "stories"

SITE = "https://riversideledger.example/news/2026/11/"
STORIES = ["council-approves-protected-bike-lanes/", "library-launches-free-tutoring-for-teens/",
           "israel-and-japan-sign-new-defense-agreement/"]
OTHER_SUBJECTS = ["Lunch on Friday?", "Invoice 2291", "Newsletter: this week in local news", "Re: your story idea"]
DECOY_SUBJECTS = ["How to republish stories from other newsrooms", "Republish rights for our newsletter?"]


class LargeFolderDovecot(Dovecot):
    """Dovecot as set up for big Maildir folders: it is the only one writing them, so it need not read the
    whole cur/ directory again after each change it makes itself (`maildir_very_dirty_syncs`). Without
    it, on a 100,000-message folder every NOOP after new mail and every flag change costs Dovecot 0.3 to
    1.3 s of rescanning, whoever its client is."""

    def config_text(self) -> str:
        return super().config_text() + "\nmaildir_very_dirty_syncs = yes\n"


def start_dovecot(root: Path, *, large_folders: bool = False) -> Dovecot:
    import trustme

    binary = dovecot_binary()
    if binary is None:
        raise SystemExit("dovecot is not installed: run scripts/setup.sh")
    root.chmod(0o755)
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    tls = {"ca": root / "ca.pem", "cert": root / "server.pem", "key": root / "server.key"}
    ca.cert_pem.write_to_path(str(tls["ca"]))
    cert.private_key_pem.write_to_path(str(tls["key"]))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(tls["cert"]), append=True)
    os.chmod(tls["key"], 0o644)
    server = (LargeFolderDovecot if large_folders else Dovecot)(binary, root, tls)
    server.start()
    return server


def message(index: int, rng: random.Random, *, old: bool) -> bytes:
    """About 3/4 republish requests, the rest other mail and decoys whose subject merely contains the word."""
    kind = rng.random()
    mail = EmailMessage()
    outlet = f"outlet{rng.randrange(400)}.example"
    mail["From"] = f"Editor {index} <desk{rng.randrange(5)}@{outlet}>"
    mail["To"] = "republish@riversideledger.example"
    age = timedelta(days=rng.randrange(60, 2000)) if old else timedelta(seconds=rng.randrange(1, 60))
    mail["Date"] = format_datetime(datetime.now(timezone.utc) - age)
    mail["Message-ID"] = f"<bench-{index}-{rng.randrange(1 << 30)}@{outlet}>"
    story = SITE + rng.choice(STORIES)
    if kind < 0.75:
        mail["Subject"] = rng.choice(["republish", "Re: republish", "Republish", "RE: [External] republish"])
        text = (f"Hi,\n\nWe would like to run this one in our weekend edition:\n{story}\n\n"
                f"Thanks,\nEditor {index}\n{outlet}\n" + "We appreciate the work of your newsroom.\n" * rng.randrange(1, 20))
        mail.set_content(text)
        mail.add_alternative(f"<p>Hi,</p><p>We would like to run <a href=\"{story}\">this one</a>.</p>"
                             f"<p>Thanks,<br>Editor {index}</p>", subtype="html")
    elif kind < 0.875:
        mail["Subject"] = rng.choice(OTHER_SUBJECTS)
        mail.set_content("Just a note.\n" * rng.randrange(1, 50))
    else:
        mail["Subject"] = rng.choice(DECOY_SUBJECTS)
        mail.set_content(f"Is there a guide? {story}\n")
    return mail.as_bytes()


def fill_maildir(dovecot: Dovecot, user: dict, count: int, *, old: bool, seed: int = 7) -> None:
    """Write `count` messages into the user's Maildir, as a delivery agent would (far faster than APPEND).

    Old mail goes to cur/, where years of mail that clients have opened sits; new mail to new/, where
    the server moves it on the first read-write SELECT (work the read-only baselines never do)."""
    _, _, uid, gid = dovecot._accounts()
    maildir = dovecot.root / "mail" / user["username"]
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
        os.chown(maildir / sub, uid, gid)
    os.chown(maildir, uid, gid)
    rng = random.Random(seed)
    for index in range(count):
        name = f"{1700000000 + index}.M{index}P1.bench"
        path = maildir / "cur" / f"{name}:2," if old else maildir / "new" / name
        path.write_bytes(message(index, rng, old=old))
        os.chown(path, uid, gid)


def prepare_database(config) -> None:
    """Migrate the configured database and import the demo's stories, which the requests link to."""
    engine = db.make_engine(config.database_url)
    db.upgrade(engine)
    with db.make_session_factory(engine)() as session:
        for page in sorted(SAMPLES.glob("*.html")):
            import_articles(session, parse_source(page.read_bytes(), url=None, publication=config.publication),
                            source=page.name, now=datetime.now(timezone.utc))
        session.commit()
    engine.dispose()


def on_each_database(measure, database_urls: list[str] | None) -> list:
    """measure(url) on each database named, or else on a new SQLite file (url None) and then the local
    PostgreSQL in a schema of its own, dropped afterwards (skipped, saying why, when it is not there);
    what each returned."""
    from tests.servers import postgres_url

    if database_urls:
        return [measure(url) for url in database_urls]
    results = [measure(None)]
    url, schema, cleanup = postgres_url()
    if url is None:
        print(f"postgresql: skipped, not reachable on 127.0.0.1:5432 ({schema})")
        return results
    try:
        results.append(measure(url))
    finally:
        cleanup()
    return results


def scratch_database(database_url: str | None, *, web: bool = False):
    """(config, engine, sessions) on the given database, or a new SQLite file; migrated to the latest schema."""
    import tempfile

    from tests.helpers import load, write_config
    from tests.web_fixtures import add_web_table

    folder = Path(tempfile.mkdtemp(prefix="republish-bench-"))
    url = database_url or f"sqlite:///{folder / 'bench.sqlite3'}"
    path = write_config(folder, url, maildir=folder / "Maildir", outbox=folder / "outbox")
    config = add_web_table(path) if web else load(path)
    engine = db.make_engine(config.database_url)
    db.upgrade(engine)
    return config, engine, db.make_session_factory(engine)
