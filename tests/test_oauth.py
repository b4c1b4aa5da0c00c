"""OAuth2: the SASL responses, and the token provider against a real token endpoint on loopback."""

from __future__ import annotations

import logging
import stat

import tempfile

import pytest

from processor.config import OAuth2Config, Secret
from processor.mail.oauth import (
    BearerAuth,
    OAuthError,
    TokenProvider,
    oauthbearer_response,
    xoauth2_response,
)
from tests.servers import OAuthServer, free_port


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def token_server():
    server = OAuthServer()
    server.start()
    yield server
    server.stop()


def settings(server: OAuthServer, client_id: str, refresh_token: str, *, client_secret: str | None = None,
             refresh_token_file=None, scope: str | None = "https://mail.example/.default offline_access",
             token_url: str | None = None) -> OAuth2Config:
    return OAuth2Config(token_url=token_url or server.token_url, client_id=client_id,
                        client_secret=Secret(client_secret) if client_secret else None,
                        refresh_token=Secret(refresh_token), refresh_token_file=refresh_token_file,
                        scope=scope, mechanism="XOAUTH2")


# -- SASL ------------------------------------------------------------------


def test_xoauth2_response():
    assert xoauth2_response("desk@example.org", "ya29.token") == "user=desk@example.org\x01auth=Bearer ya29.token\x01\x01"


def test_oauthbearer_response_full_and_minimal():
    assert (oauthbearer_response("desk@example.org", "tok", "imap.example.org", 993)
            == "n,a=desk@example.org,\x01host=imap.example.org\x01port=993\x01auth=Bearer tok\x01\x01")
    assert oauthbearer_response("desk@example.org", "tok") == "n,a=desk@example.org,\x01auth=Bearer tok\x01\x01"
    # RFC 5801: "," and "=" in the authorization identity are escaped
    assert oauthbearer_response("a=b,c@example.org", "tok").startswith("n,a=a=3Db=2Cc@example.org,\x01")


def test_sasl_refuses_a_separator_inside_a_value():
    with pytest.raises(ValueError) as error:
        xoauth2_response("desk@example.org\x01auth=Bearer forged", "secret-token")
    assert "secret-token" not in str(error.value)
    with pytest.raises(ValueError):
        oauthbearer_response("desk@example.org", "")


@pytest.mark.parametrize("mechanism, acknowledgement", [("XOAUTH2", ""), ("OAUTHBEARER", "\x01")])
def test_bearer_auth_sends_the_response_then_acknowledges_an_error(mechanism, acknowledgement):
    auth = BearerAuth(mechanism, "the-response-with-a-token")
    assert auth() == "the-response-with-a-token"  # smtplib asks for the initial response without a challenge
    assert auth(b'{"status":"401","schemes":"bearer"}') == acknowledgement
    assert "token" not in repr(auth)


# -- the token provider ------------------------------------------------------


def test_access_token_is_cached_and_refreshed_five_minutes_before_it_expires(token_server):
    client_id = token_server.register_client("client-secret-value")
    refresh = token_server.grant(client_id, "desk@example.org")
    clock = Clock()
    provider = TokenProvider(settings(token_server, client_id, refresh, client_secret="client-secret-value"), clock=clock)

    first = provider.access_token()
    assert token_server.user_of(first.reveal()) == "desk@example.org"
    assert token_server.token_requests[0] == {
        "grant_type": "refresh_token", "refresh_token": refresh, "client_id": client_id,
        "client_secret": "client-secret-value", "scope": "https://mail.example/.default offline_access",
    }
    clock.now += 3000  # 10 minutes left of the hour: still good
    assert provider.access_token().reveal() == first.reveal()
    assert token_server.token_calls == 1
    clock.now += 301  # under 5 minutes left
    second = provider.access_token()
    assert token_server.token_calls == 2 and second.reveal() != first.reveal()
    assert provider.access_token().reveal() == second.reveal() and token_server.token_calls == 2


def test_short_lived_token_is_refreshed_when_a_tenth_of_its_lifetime_is_left(token_server):
    token_server.expires_in = 600
    client_id = token_server.register_client()
    clock = Clock()
    provider = TokenProvider(settings(token_server, client_id, token_server.grant(client_id, "u@example.org")),
                             clock=clock)
    provider.access_token()
    clock.now += 535  # 65 s left: more than a tenth of 600 s
    provider.access_token()
    assert token_server.token_calls == 1
    clock.now += 6  # 59 s left
    provider.access_token()
    assert token_server.token_calls == 2


def test_public_client_sends_no_secret_and_no_scope_when_none_is_set(token_server):
    client_id = token_server.register_client(None)
    provider = TokenProvider(settings(token_server, client_id, token_server.grant(client_id, "u@example.org"),
                                      scope=None))
    provider.access_token()
    assert set(token_server.token_requests[0]) == {"grant_type", "refresh_token", "client_id"}


def test_invalidate_makes_the_next_call_fetch_a_new_token(token_server):
    client_id = token_server.register_client()
    provider = TokenProvider(settings(token_server, client_id, token_server.grant(client_id, "u@example.org")))
    first = provider.access_token()
    provider.invalidate()
    assert provider.access_token().reveal() != first.reveal() and token_server.token_calls == 2


def test_rotated_refresh_token_is_kept_and_written_back_to_its_file(token_server, tmp_path):
    token_server.rotate = True  # every refresh retires the refresh token it was given
    client_id = token_server.register_client("s3")
    original = token_server.grant(client_id, "u@example.org")
    token_file = tmp_path / "refresh-token"
    token_file.write_text(original + "\n")
    token_file.chmod(0o644)
    clock = Clock()
    provider = TokenProvider(settings(token_server, client_id, original, client_secret="s3",
                                      refresh_token_file=token_file), clock=clock)

    provider.access_token()
    second = token_file.read_text().strip()
    assert second and second != original and second in token_server.refresh_tokens
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    clock.now += 4000  # the next refresh works only with the rotated token
    provider.access_token()
    assert token_server.token_requests[1]["refresh_token"] == second
    assert token_file.read_text().strip() not in (original, second)
    assert [p.name for p in tmp_path.iterdir()] == ["refresh-token"]  # no temporary file left behind


def test_imap_and_smtp_may_share_a_refresh_token_file_under_strict_rotation(token_server, tmp_path):
    token_server.rotate = True
    client_id = token_server.register_client()
    token_file = tmp_path / "refresh-token"
    token_file.write_text(token_server.grant(client_id, "u@example.org"))
    clock = Clock()
    shared = settings(token_server, client_id, token_file.read_text(), refresh_token_file=token_file)
    imap, smtp = TokenProvider(shared, clock=clock), TokenProvider(shared, clock=clock)
    for _ in range(3):
        imap.access_token()  # rotates the token in the file ...
        smtp.access_token()  # ... which the other provider picks up instead of its retired one
        clock.now += 4000
    assert token_server.token_calls == 6
    assert token_file.read_text().strip() in token_server.refresh_tokens


def test_a_new_token_put_in_the_file_is_picked_up_without_a_restart(token_server, tmp_path):
    client_id = token_server.register_client()
    token_file = tmp_path / "refresh-token"
    token_file.write_text("rt-revoked-by-the-user")
    provider = TokenProvider(settings(token_server, client_id, "rt-revoked-by-the-user", refresh_token_file=token_file))
    with pytest.raises(OAuthError, match="invalid_grant"):
        provider.access_token()
    token_file.write_text(token_server.grant(client_id, "u@example.org") + "\n")  # the operator re-consented
    assert token_server.user_of(provider.access_token().reveal()) == "u@example.org"


def test_unsaved_rotation_does_not_fall_back_to_the_older_token_in_the_file(token_server, tmp_path, monkeypatch,
                                                                            caplog):
    def unwritable(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    # A directory the worker cannot write (tests run as root, whom permissions do not stop): no new file there.
    monkeypatch.setattr(tempfile, "mkstemp", unwritable)
    token_server.rotate = True
    client_id = token_server.register_client()
    token_file = tmp_path / "refresh-token"
    original = token_server.grant(client_id, "u@example.org")
    token_file.write_text(original)
    clock = Clock()
    provider = TokenProvider(settings(token_server, client_id, original, refresh_token_file=token_file), clock=clock)
    provider.access_token()
    clock.now += 4000
    provider.access_token()  # with the rotated token kept in memory, not the retired one still in the file
    assert token_file.read_text() == original and token_server.token_calls == 2
    assert "not saved to" in caplog.text and "Permission denied" in caplog.text


def test_rotated_refresh_token_from_the_environment_is_kept_in_memory(token_server, caplog):
    token_server.rotate = True
    client_id = token_server.register_client()
    original = token_server.grant(client_id, "u@example.org")
    clock = Clock()
    provider = TokenProvider(settings(token_server, client_id, original), clock=clock)
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            provider.access_token()
            clock.now += 4000
    assert token_server.token_calls == 3
    assert sum("kept in memory only" in r.getMessage() for r in caplog.records) == 1  # said once, not hourly
    assert not any(token in caplog.text for token in [original, *token_server.refresh_tokens])


@pytest.mark.parametrize("careless", [False, True])
def test_refused_refresh_is_a_clear_error_without_secrets(token_server, caplog, careless):
    token_server.careless = careless  # True: the endpoint quotes the refresh token in its error description
    client_id = token_server.register_client("the-client-secret")
    revoked = "rt-revoked-refresh-token-value"  # never granted: the endpoint answers invalid_grant
    provider = TokenProvider(settings(token_server, client_id, revoked, client_secret="the-client-secret"))
    with caplog.at_level(logging.DEBUG), pytest.raises(OAuthError) as error:
        provider.access_token()
    message = str(error.value)
    assert "HTTP 400 invalid_grant (" in message and "expired or was revoked" in message
    assert token_server.token_url in message
    for secret in (revoked, "the-client-secret"):
        assert secret not in message and secret not in caplog.text


def test_wrong_client_secret_is_named(token_server):
    client_id = token_server.register_client("right")
    provider = TokenProvider(settings(token_server, client_id, token_server.grant(client_id, "u@example.org"),
                                      client_secret="wrong-secret"))
    with pytest.raises(OAuthError, match="HTTP 401 invalid_client.*oauth2_client_id") as error:
        provider.access_token()
    assert "wrong-secret" not in str(error.value)


def test_unreachable_token_endpoint_is_a_clear_error():
    url = f"http://127.0.0.1:{free_port()}/token"
    provider = TokenProvider(OAuth2Config(token_url=url, client_id="c", client_secret=Secret("client-secret"),
                                          refresh_token=Secret("refresh-secret"), refresh_token_file=None,
                                          scope=None, mechanism="XOAUTH2"), timeout=2)
    with pytest.raises(OAuthError, match="unreachable: ConnectError") as error:
        provider.access_token()
    assert "refresh-secret" not in str(error.value) and "client-secret" not in str(error.value)


def test_https_token_endpoint_is_verified_against_the_ca_file(tls_ca):
    server = OAuthServer(tls=tls_ca)
    server.start()
    try:
        client_id = server.register_client()
        config = settings(server, client_id, server.grant(client_id, "u@example.org"))
        assert server.user_of(TokenProvider(config, ca_file=tls_ca["ca"]).access_token().reveal()) == "u@example.org"
        with pytest.raises(OAuthError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            TokenProvider(config).access_token()  # the system's trust store does not know the private CA
    finally:
        server.stop()
