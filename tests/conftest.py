"""Shared fixtures: real Dovecot, real SMTP (aiosmtpd), real SQLite and PostgreSQL databases, and a small
OAuth2 identity provider (token and tokeninfo endpoints) for the OAuth2 logins."""

from __future__ import annotations

import os
from contextlib import contextmanager
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from datetime import datetime, timezone

from processor.app import build_worker
from processor.records import db
from processor.catalog.stories import import_articles, parse_source
from processor.app import run_once
from tests.helpers import import_pages, load, write_config
from tests.servers import Dovecot, OAuthServer, SmtpServer, dovecot_binary, missing, postgres_url

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = Path(__file__).resolve().parents[1] / "processor" / "sample_data" / "stories"  # the demo's stories


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory):
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    folder = tmp_path_factory.mktemp("tls")
    ca_file = folder / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert_file = folder / "server.pem"
    key_file = folder / "server.key"
    cert.private_key_pem.write_to_path(str(key_file))
    for blob in cert.cert_chain_pems:
        blob.write_to_path(str(cert_file), append=True)
    os.chmod(key_file, 0o644)  # Dovecot's master reads it; test-only key
    return {"ca": ca_file, "cert": cert_file, "key": key_file}


def _running_dovecot(tls_ca, **options):
    binary = dovecot_binary()
    if binary is None:
        missing("dovecot is not installed", "scripts/setup.sh installs it: apt package dovecot-imapd")
    # Not under pytest's tmp dir: that is private (0700) and Dovecot's unprivileged processes must read here.
    root = Path(tempfile.mkdtemp(prefix="republish-dovecot-"))
    root.chmod(0o755)
    server = Dovecot(binary, root, tls_ca, **options)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def dovecot_server(tmp_path_factory, tls_ca):
    yield from _running_dovecot(tls_ca)


@pytest.fixture(scope="session")
def oauth_idp():
    """The identity provider the OAuth2 Dovecot asks about tokens (shared: Dovecot's config names its port)."""
    server = OAuthServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def idp(oauth_idp):
    """`oauth_idp` with its default behaviour restored after each test."""
    yield oauth_idp
    oauth_idp.expires_in, oauth_idp.rotate = 3600, False


@pytest.fixture(scope="session")
def dovecot_oauth_server(tls_ca, oauth_idp):
    """A second private Dovecot whose accounts log in with OAuth2 bearer tokens only."""
    yield from _running_dovecot(tls_ca, oauth2_tokeninfo_url=oauth_idp.tokeninfo_url)


@pytest.fixture
def oauth_mailbox_user(dovecot_oauth_server):
    """A fresh account on the OAuth2 Dovecot for one test."""
    return dovecot_oauth_server.add_user(f"desk{uuid.uuid4().hex[:8]}@test.example")


@pytest.fixture
def oauth_smtp_server(idp):
    """aiosmtpd that takes mail only after AUTH XOAUTH2 / OAUTHBEARER with a token from `idp`."""
    server = SmtpServer(oauth=idp)
    server.start()
    yield server
    server.stop()


# The mailboxes the worker's integration tests run against: plain Dovecot and each provider's double
# (tests/provider_emulation.py). A test marked `every_mailbox` runs on each (`but=(...)` leaves some out);
# `mailbox_user` is Dovecot's otherwise.
MAILBOXES = {"dovecot": "dovecot_user", "exchange": "exchange_like_user", "gmail": "gmail_like_user",
             "no_sent": "no_sent_user"}


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("every_mailbox")
    if "mailbox_user" in metafunc.fixturenames and marker is not None:
        kinds = [kind for kind in MAILBOXES if kind not in marker.kwargs.get("but", ())]
        metafunc.parametrize("mailbox_user", kinds, indirect=True)


@pytest.fixture
def mailbox_user(request):
    """A fresh IMAP account for one test, on the mailbox server the test is parametrized with (its "kind")."""
    kind = getattr(request, "param", "dovecot")
    return {**request.getfixturevalue(MAILBOXES[kind]), "kind": kind}


@pytest.fixture
def dovecot_user(dovecot_server):
    return dovecot_server.add_user(f"desk{uuid.uuid4().hex[:8]}@test.example")


@pytest.fixture
def smtp_server():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.sqlite3'}"
        return
    url, schema, cleanup = postgres_url()
    if url is None:
        missing(f"PostgreSQL not reachable on 127.0.0.1:5432 ({schema})", "start it with trust auth and a database `test`")
    yield url
    cleanup()


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'test.sqlite3'}"


@pytest.fixture
def pipeline(tmp_path, database_url, mailbox_user, smtp_server):
    """A real Dovecot account, a real SMTP server, a migrated database with the demo's stories; `run` = `run --once`."""
    with pipeline_on(tmp_path, database_url, mailbox_user, smtp_server) as parts:
        yield parts


@contextmanager
def pipeline_on(tmp_path, database_url, user, smtp_server, imap_extra: str = ""):
    """The `pipeline` fixture's parts for any account and SMTP server (a provider's double, say)."""
    path = write_config(tmp_path, database_url, imap=user, smtp_port=smtp_server.port,
                        extra="retry_first_seconds = 1\nretry_max_seconds = 4\n")
    if imap_extra:
        path.write_text(path.read_text().replace('folder = "INBOX"\n', 'folder = "INBOX"\n' + imap_extra))
    config = load(path, user["password"])
    engine = db.make_engine(config.database_url)
    db.upgrade(engine)
    sessions = db.make_session_factory(engine)
    import_pages(sessions, config.publication, (SAMPLES / "bike-lanes.html", SAMPLES / "library-tutoring.html",
                                                SAMPLES / "wire-defense-agreement.html", FIXTURES / "seed-forward-jta.html"))
    try:
        yield {"config": config, "sessions": sessions, "run": lambda with_config=None: run_once(with_config or config),
               "user": user, "smtp": smtp_server, "path": path, "env": {"TEST_IMAP_PASSWORD": user["password"]}}
    finally:
        engine.dispose()


@pytest.fixture
def maildir_pipeline(tmp_path):
    """The pipeline on a Maildir, an outbox folder and SQLite, with the demo's bike-lanes story: no servers."""
    maildir = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (maildir / sub).mkdir(parents=True)
    outbox = tmp_path / "outbox"

    def configure(extra: str = ""):
        return load(write_config(tmp_path, "sqlite:///maildir.sqlite3", maildir=maildir, outbox=outbox, extra=extra))

    config = configure()
    engine = db.make_engine(config.database_url)
    db.upgrade(engine)
    sessions = db.make_session_factory(engine)
    with sessions() as session:
        import_articles(session, parse_source((SAMPLES / "bike-lanes.html").read_bytes(), url=None,
                                              publication=config.publication), source="bike", now=datetime.now(timezone.utc))
        session.commit()
    def run(extra: str = ""):
        """`republish run --once` over what is in the Maildir, with `extra` [worker] lines; its RunStats."""
        worker, worker_engine = build_worker(configure(extra))
        try:
            return worker.run(once=True)
        finally:
            worker.close()
            worker_engine.dispose()

    yield {"maildir": maildir, "outbox": outbox, "sessions": sessions, "configure": configure, "run": run}
    engine.dispose()


# -- provider emulation (tests/provider_emulation.py): servers that behave like Exchange Online and Gmail --

from tests.provider_emulation import (EXCHANGE_LAYOUT, GMAIL_LAYOUT, NO_SENT_LAYOUT,  # noqa: E402
                                      ExchangeLikeImapProxy, FilingSmtpServer, running_layout_dovecot)


@pytest.fixture(scope="session")
def exchange_dovecot_server(tls_ca):
    """A private Dovecot with Exchange Online's folders ("Sent Items", "Deleted Items", ...); meant to be
    reached through `exchange_like_proxy`."""
    yield from running_layout_dovecot(tls_ca, EXCHANGE_LAYOUT)


@pytest.fixture
def exchange_like_proxy(exchange_dovecot_server):
    """An ExchangeLikeImapProxy for one test; its switches (idle_silent, keyword_refusal, list_special_use)
    may be changed while it runs."""
    proxy = ExchangeLikeImapProxy(exchange_dovecot_server.imap_port)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def exchange_like_user(exchange_like_proxy, exchange_dovecot_server):
    """A fresh account seen through the Exchange-like proxy (plain IMAP on loopback: security "none").
    `direct_port` reaches the same account on Dovecot itself, to check what the proxy hides."""
    user = exchange_dovecot_server.add_user(f"desk{uuid.uuid4().hex[:8]}@test.example")
    return {**user, "port": exchange_like_proxy.port, "tls_port": None, "direct_port": user["port"],
            "sent_folder": "Sent Items"}


@pytest.fixture(scope="session")
def gmail_dovecot_server(tls_ca):
    """A private Dovecot with Gmail's folders: [Gmail]/Sent Mail (\\Sent), [Gmail]/All Mail (\\All), ..."""
    yield from running_layout_dovecot(tls_ca, GMAIL_LAYOUT)


@pytest.fixture
def gmail_like_user(gmail_dovecot_server):
    user = gmail_dovecot_server.add_user(f"desk{uuid.uuid4().hex[:8]}@test.example")
    return {**user, "sent_folder": "[Gmail]/Sent Mail"}


@pytest.fixture
def gmail_filing_smtp_server(gmail_like_user):
    """SMTP that files a \\Seen copy of each message it accepts in `gmail_like_user`'s [Gmail]/Sent Mail."""
    server = FilingSmtpServer(gmail_like_user, gmail_like_user["sent_folder"])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def no_sent_dovecot_server(tls_ca):
    """A private Dovecot whose accounts have INBOX only: no Sent folder, no special-use attributes."""
    yield from running_layout_dovecot(tls_ca, NO_SENT_LAYOUT)


@pytest.fixture
def no_sent_user(no_sent_dovecot_server):
    return no_sent_dovecot_server.add_user(f"desk{uuid.uuid4().hex[:8]}@test.example")
