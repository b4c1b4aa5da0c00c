"""The worker against the mailboxes newsrooms use: Exchange Online (no keywords, "Sent Items", an IDLE
that can go quiet), Gmail ([Gmail]/Sent Mail, SMTP that files its own copy) and a plain host with no Sent
folder, each a double built on the real Dovecot (tests/provider_emulation.py), on SQLite and PostgreSQL."""

import pytest

from tests.conftest import pipeline_on
from tests.helpers import deliver, folder_flags, imap_client, request_message, running_worker, wait_for_replies
from tests.provider_emulation import EXCHANGE_CAPABILITY, ExchangeLikeImapProxy

BIKE = "https://riversideledger.example/news/2026/11/council-approves-protected-bike-lanes/"
LIBRARY = "https://riversideledger.example/news/2026/11/library-launches-free-tutoring-for-teens/"


def _folder_count(user, folder: str, port_key: str = "port") -> int:
    client = imap_client({**user, "port": user[port_key]})
    count = client.select_folder(folder, readonly=True)[b"EXISTS"]
    client.logout()
    return count


def _question() -> bytes:
    return request_message(sender="desk@harborgazette.example", body="Can we run the bike lanes story in print? "
                           "What would it cost?", message_id="<ask@harborgazette.example>")


def test_exchange_online(tmp_path, database_url, exchange_like_user, exchange_like_proxy, smtp_server):
    user = exchange_like_user
    with pipeline_on(tmp_path, database_url, user, smtp_server) as pipeline:
        deliver(user, request_message(body=BIKE, message_id="<x1@valleynews.example>"), _question())
        first = pipeline["run"]()
        assert (first.seen, first.replies_sent) == (2, 1)
        assert exchange_like_proxy.refused_stores == 0  # no keyword was ever sent to a server that refuses them
        flags = dict(folder_flags({**user, "port": user["direct_port"]}))
        assert b"\\Flagged" in flags["<ask@harborgazette.example>"]            # the editor sees it in Outlook
        assert not any(flag.startswith(b"$") for values in flags.values() for flag in values)
        assert _folder_count(user, "Sent Items") == 1                            # found by name
        deliver(user, request_message(sender="desk@lakesidetimes.example", body=LIBRARY,
                                      message_id="<x2@lakesidetimes.example>"))
        second = pipeline["run"]()
        assert (second.seen, second.replies_sent) == (1, 1)  # only the new mail is downloaded
        assert pipeline["run"]().seen == 0
        assert smtp_server.replies_by_request() == {"x1@valleynews.example": 1, "x2@lakesidetimes.example": 1}


def test_exchange_online_with_an_idle_gone_quiet(tmp_path, database_url, exchange_like_user, exchange_like_proxy,
                                                 smtp_server):
    user = exchange_like_user
    exchange_like_proxy.idle_silent = True  # no EXISTS during IDLE: only the renewal finds new mail
    with pipeline_on(tmp_path, database_url, user, smtp_server, imap_extra="idle_renew_minutes = 0.03\n") as pipeline:
        with running_worker(pipeline["config"], poll_seconds=300) as thread:
            deliver(user, request_message(body=BIKE, message_id="<quiet@valleynews.example>"))
            wait_for_replies(smtp_server, 1, 20)  # within a few renewals (2 s each), not the 300 s poll
            assert thread.is_alive()
    assert smtp_server.replies_by_request() == {"quiet@valleynews.example": 1}


def test_google_workspace(tmp_path, database_url, gmail_like_user, gmail_filing_smtp_server):
    user, smtp = gmail_like_user, gmail_filing_smtp_server
    # provider = "google" with the preset's servers replaced by the doubles': save_sent stays "auto".
    with pipeline_on(tmp_path, database_url, user, smtp, imap_extra='provider = "google"\nauth = "password"\n') as pipeline:
        deliver(user, request_message(body=BIKE, message_id="<g1@valleynews.example>"))
        assert pipeline["run"]().replies_sent == 1
        assert _folder_count(user, "[Gmail]/Sent Mail") == 1  # the provider's copy, and not ours as well


def test_google_workspace_when_copies_are_asked_for(tmp_path, database_url, gmail_like_user, gmail_filing_smtp_server):
    """save_sent = "always": ours is appended unless the provider's copy is there already (by Message-ID)."""
    user, smtp = gmail_like_user, gmail_filing_smtp_server
    with pipeline_on(tmp_path, database_url, user, smtp, imap_extra='save_sent = "always"\n') as pipeline:
        deliver(user, request_message(body=BIKE, message_id="<g2@valleynews.example>"))
        assert pipeline["run"]().replies_sent == 1
        assert _folder_count(user, "[Gmail]/Sent Mail") == 1  # found by its \Sent flag; the filed copy seen


def test_a_plain_host_with_no_sent_folder(tmp_path, database_url, no_sent_user, smtp_server, caplog):
    user = no_sent_user
    with pipeline_on(tmp_path, database_url, user, smtp_server) as pipeline:
        deliver(user, request_message(body=BIKE, message_id="<p1@valleynews.example>"),
                request_message(sender="desk@harborgazette.example", body=LIBRARY,
                                message_id="<p2@harborgazette.example>"))
        assert pipeline["run"]().replies_sent == 2
        assert _folder_count(user, "Sent") == 2  # made, then used
        assert "Sent" not in caplog.text or "not saved" not in caplog.text


@pytest.mark.parametrize("server_takes_use", [True, False], ids=["use-taken", "use-refused"])
def test_a_sent_folder_made_where_the_server_takes_its_special_use(tmp_path, database_url, no_sent_dovecot_server,
                                                                 no_sent_user, smtp_server, server_takes_use):
    """RFC 6154 CREATE-SPECIAL-USE: the Sent folder made is marked \\Sent, so mail clients show it as such;
    a server that answers NO [USEATTR] gets a plain folder instead."""
    proxy = ExchangeLikeImapProxy(no_sent_dovecot_server.imap_port, list_special_use=True,
                                  capability=EXCHANGE_CAPABILITY + b" SPECIAL-USE CREATE-SPECIAL-USE",
                                  refuse_create_use=not server_takes_use)
    proxy.start()
    try:
        user = {**no_sent_user, "port": proxy.port, "tls_port": None}
        with pipeline_on(tmp_path, database_url, user, smtp_server) as pipeline:
            deliver(user, request_message(body=BIKE, message_id="<u1@valleynews.example>"))
            assert pipeline["run"]().replies_sent == 1
    finally:
        proxy.stop()
    made = [b'CREATE "Sent" (USE (\\Sent))'] + ([] if server_takes_use else [b'CREATE "Sent"'])
    assert [command.split(b" ", 1)[1] for command in proxy.creates] == made
    assert _folder_count(no_sent_user, "Sent") == 1
