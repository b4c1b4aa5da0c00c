"""OAuth2 logins for real: Dovecot's oauth2 passdb (IMAP) and aiosmtpd with AUTH XOAUTH2 / OAUTHBEARER (SMTP),
both asking the test identity provider about the bearer tokens; then the whole worker on OAuth2."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from email import message_from_bytes, policy
from pathlib import Path

import imapclient
import pytest

from processor.records import db
from processor.app import build_worker
from processor.catalog.stories import import_articles, parse_source
from processor.config import load_config
from processor.mail.imap import ImapSource, MailboxError
from processor.mail.smtp import SendError, SmtpSender
from tests.helpers import request_message, write_config

SAMPLES = Path(__file__).resolve().parents[1] / "processor" / "sample_data" / "stories"
BIKE = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
# aiosmtpd warns that it takes AUTH without TLS: deliberate here, on loopback only.
pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")]


def oauth_keys(idp, client_id: str, prefix: str, mechanism: str, username: str | None = None) -> str:
    return ((f'username = "{username}"\n' if username else "")
            + 'auth = "oauth2"\n'
            f'oauth2_token_url = "{idp.token_url}"\n'
            f'oauth2_client_id = "{client_id}"\n'
            f'oauth2_client_secret_env = "{prefix}_CLIENT_SECRET"\n'
            f'oauth2_refresh_token_env = "{prefix}_REFRESH_TOKEN"\n'
            f'oauth2_mechanism = "{mechanism}"\n')


def oauth_config(tmp_path, idp, database_url: str, *, imap_user: dict | None = None, smtp_port: int | None = None,
                 mechanism: str = "XOAUTH2", smtp_user: str = "republish@riversideledger.example"):
    """A config with [imap] and/or [smtp] on OAuth2, each with its own client registration and refresh token."""
    environ = {}
    path = write_config(tmp_path, database_url, imap=imap_user, smtp_port=smtp_port,
                        maildir=None if imap_user else tmp_path / "maildir",
                        outbox=None if smtp_port else tmp_path / "outbox")
    text = path.read_text()
    if imap_user:
        client = idp.register_client("imap-client-secret")
        environ.update(IMAP_CLIENT_SECRET="imap-client-secret", IMAP_REFRESH_TOKEN=idp.grant(client, imap_user["username"]))
        text = text.replace('password_env = "TEST_IMAP_PASSWORD"\n', oauth_keys(idp, client, "IMAP", mechanism))
    if smtp_port:
        client = idp.register_client("smtp-client-secret")
        environ.update(SMTP_CLIENT_SECRET="smtp-client-secret", SMTP_REFRESH_TOKEN=idp.grant(client, smtp_user))
        sender = 'from_address = "republish@riversideledger.example"\n'
        text = text.replace(sender, sender + oauth_keys(idp, client, "SMTP", mechanism, smtp_user))
    path.write_text(text)
    return load_config(path, environ=environ), environ


def oauth_imap(user: dict, idp) -> imapclient.IMAPClient:
    """A test-side IMAP connection, logged in with imapclient's own XOAUTH2 and a token straight from the provider."""
    client = imapclient.IMAPClient(user["host"], port=user["port"], ssl=False)
    client.oauth2_login(user["username"], idp.mint(user["username"]))
    return client


# -- IMAP --------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_imap_login_with_oauth2(tmp_path, idp, oauth_mailbox_user, sqlite_url, mechanism):
    config, _ = oauth_config(tmp_path, idp, sqlite_url, imap_user=oauth_mailbox_user, mechanism=mechanism)
    checks_before = idp.tokeninfo_calls
    source = ImapSource(config.imap)
    try:
        source.connect()
        assert list(source.batches(10, 10_000)) == []  # logged in and the inbox selected
    finally:
        source.close()
    assert idp.tokeninfo_calls == checks_before + 1  # Dovecot asked the provider about our token


def test_refused_imap_token_is_a_clear_error_and_the_next_connect_gets_a_new_one(tmp_path, idp, oauth_mailbox_user,
                                                                                  sqlite_url):
    config, environ = oauth_config(tmp_path, idp, sqlite_url, imap_user=oauth_mailbox_user)
    source = ImapSource(config.imap)
    source.connect()
    source.close()
    idp.revoke_access_tokens()  # e.g. an administrator revoked the app's tokens
    with pytest.raises(MailboxError) as error:
        source.connect()
    assert "IMAP OAuth2 login (XOAUTH2) refused" in str(error.value)
    assert not any(value in str(error.value) for value in environ.values())
    calls = idp.token_calls
    source.connect()  # a reconnect asks the token endpoint again instead of offering the refused token
    source.close()
    assert idp.token_calls == calls + 1


def test_imap_server_without_the_mechanism_is_named(tmp_path, idp, mailbox_user, sqlite_url):
    # The password-only Dovecot offers AUTH=PLAIN and LOGIN: say so rather than blame the token.
    config, _ = oauth_config(tmp_path, idp, sqlite_url, imap_user=mailbox_user, mechanism="OAUTHBEARER")
    calls = idp.token_calls
    with pytest.raises(MailboxError, match="IMAP server 127.0.0.1 does not offer AUTH=OAUTHBEARER"):
        ImapSource(config.imap).connect()
    assert idp.token_calls == calls  # no token asked for in vain


def test_refused_refresh_stops_the_worker_with_a_clear_error_and_no_secret_in_logs(tmp_path, idp, oauth_mailbox_user,
                                                                                    sqlite_url, caplog):
    config, environ = oauth_config(tmp_path, idp, sqlite_url, imap_user=oauth_mailbox_user)
    idp.refresh_tokens.pop(environ["IMAP_REFRESH_TOKEN"])  # the user revoked the app's consent
    db.upgrade(db.make_engine(config.database_url))
    worker, engine = build_worker(config)
    with caplog.at_level(logging.DEBUG), pytest.raises(MailboxError) as error:
        worker.run(once=True)
    engine.dispose()
    assert "no OAuth2 access token" in str(error.value) and "invalid_grant" in str(error.value)
    for secret in environ.values():
        assert secret not in str(error.value) and secret not in caplog.text


# -- SMTP --------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_smtp_send_with_oauth2(tmp_path, idp, oauth_smtp_server, sqlite_url, mechanism):
    config, _ = oauth_config(tmp_path, idp, sqlite_url, smtp_port=oauth_smtp_server.port, mechanism=mechanism)
    with SmtpSender(config.smtp).connect() as connection:
        connection.send(request_message(body="hello"), "republish@riversideledger.example", "priya@valleynews.example")
    assert oauth_smtp_server.logins == [(mechanism, "republish@riversideledger.example")]
    assert len(oauth_smtp_server.messages) == 1


def test_smtp_server_without_the_mechanism_is_named(tmp_path, idp, smtp_server, sqlite_url):
    config, _ = oauth_config(tmp_path, idp, sqlite_url, smtp_port=smtp_server.port)
    with pytest.raises(SendError, match="does not offer AUTH XOAUTH2"), SmtpSender(config.smtp).connect():
        pass


def test_smtp_server_requires_the_login(tmp_path, idp, oauth_smtp_server, sqlite_url):
    # The same server without our OAuth2 login refuses the mail: the test above proves the login, not luck.
    path = write_config(tmp_path, sqlite_url, imap=None, smtp_port=oauth_smtp_server.port, maildir=tmp_path)
    config = load_config(path, environ={})
    with pytest.raises(SendError, match="530"), SmtpSender(config.smtp).connect() as connection:
        connection.send(request_message(body="hello"), "republish@riversideledger.example", "priya@valleynews.example")


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_refused_smtp_token_is_a_clear_error(tmp_path, idp, oauth_smtp_server, sqlite_url, mechanism):
    config, environ = oauth_config(tmp_path, idp, sqlite_url, smtp_port=oauth_smtp_server.port, mechanism=mechanism)
    sender = SmtpSender(config.smtp)
    with sender.connect():
        pass
    idp.revoke_access_tokens()
    with pytest.raises(SendError) as error, sender.connect():
        pass
    # 535, not 501: the client acknowledged the server's error challenge the way the mechanism wants
    assert f"SMTP OAuth2 login ({mechanism}) to 127.0.0.1 refused (535)" in str(error.value)
    assert not error.value.permanent
    assert not any(value in str(error.value) for value in environ.values())
    with sender.connect():  # a new token for the next batch
        pass
    assert len(oauth_smtp_server.logins) == 2


# -- the worker --------------------------------------------------------------


def test_worker_answers_a_request_with_imap_and_smtp_on_oauth2(tmp_path, idp, oauth_mailbox_user, oauth_smtp_server,
                                                               sqlite_url):
    config, _ = oauth_config(tmp_path, idp, sqlite_url, imap_user=oauth_mailbox_user,
                             smtp_port=oauth_smtp_server.port)
    engine = db.make_engine(config.database_url)
    db.upgrade(engine)
    with db.make_session_factory(engine)() as session:
        page = SAMPLES / "bike-lanes.html"
        import_articles(session, parse_source(page.read_bytes(), url=None, publication=config.publication),
                        source=page.name, now=datetime.now(timezone.utc))
        session.commit()
    engine.dispose()
    client = oauth_imap(oauth_mailbox_user, idp)
    client.append("INBOX", request_message(body=f"Running this: {BIKE}", message_id="<oauth1@valleynews.example>"))
    client.logout()

    worker, worker_engine = build_worker(config)
    try:
        stats = worker.run(once=True)
    finally:
        worker.edges.source.close()
        worker_engine.dispose()

    assert stats.replies_sent == 1
    assert oauth_smtp_server.logins == [("XOAUTH2", "republish@riversideledger.example")]
    reply = message_from_bytes(oauth_smtp_server.messages[0][2], policy=policy.default)
    assert reply["In-Reply-To"] == "<oauth1@valleynews.example>"
    client = oauth_imap(oauth_mailbox_user, idp)
    client.select_folder("INBOX", readonly=True)
    flags = next(iter(client.get_flags(client.search("ALL")).values()))
    sent = client.select_folder("Sent", readonly=True)[b"EXISTS"]
    client.logout()
    assert b"$RepublishDone" in flags and sent == 1
