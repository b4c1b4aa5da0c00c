"""The [imap] / [smtp] OAuth2 keys: what loads, and a message naming the key for everything else."""

from __future__ import annotations

import pytest

from processor.config import ConfigError, load_config
from tests.helpers import write_config

ENV = {"TEST_IMAP_PASSWORD": "pw", "IMAP_REFRESH": "refresh-token-value", "IMAP_CLIENT_SECRET": "client-secret-value"}
OAUTH_KEYS = (
    'auth = "oauth2"\n'
    'oauth2_token_url = "https://login.example.com/tenant/oauth2/v2.0/token"\n'
    'oauth2_client_id = "the-client-id"\n'
    'oauth2_client_secret_env = "IMAP_CLIENT_SECRET"\n'
    'oauth2_refresh_token_env = "IMAP_REFRESH"\n'
    'oauth2_scope = "https://outlook.office.com/IMAP.AccessAsUser.All  offline_access"\n'
)


def oauth_config(tmp_path, change=lambda t: t):
    path = write_config(tmp_path, "sqlite:///x.sqlite3",
                        imap={"host": "127.0.0.1", "port": 1143, "username": "desk@example.org"}, smtp_port=2525)
    text = path.read_text().replace('password_env = "TEST_IMAP_PASSWORD"\n', OAUTH_KEYS)
    path.write_text(change(text))
    return path


def test_oauth2_config_loads_and_hides_its_secrets(tmp_path):
    config = load_config(oauth_config(tmp_path), environ=ENV)
    oauth2 = config.imap.oauth2
    assert oauth2.token_url == "https://login.example.com/tenant/oauth2/v2.0/token"
    assert oauth2.client_id == "the-client-id" and oauth2.mechanism == "XOAUTH2"
    assert oauth2.refresh_token.reveal() == "refresh-token-value" and oauth2.refresh_token_file is None
    assert oauth2.client_secret.reveal() == "client-secret-value"
    assert oauth2.scope == "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"
    assert config.imap.password is None and config.smtp.oauth2 is None
    assert "refresh-token-value" not in repr(config) and "client-secret-value" not in repr(config)


def test_oauth2_refresh_token_file_public_client_and_mechanism(tmp_path):
    (tmp_path / "imap-refresh").write_text("from-a-file\n")
    path = oauth_config(tmp_path, lambda t: t.replace('oauth2_refresh_token_env = "IMAP_REFRESH"',
                                                      'oauth2_refresh_token_file = "imap-refresh"')
                        .replace('oauth2_client_secret_env = "IMAP_CLIENT_SECRET"\n', 'oauth2_mechanism = "oauthbearer"\n'))
    oauth2 = load_config(path, environ={}).imap.oauth2
    assert oauth2.refresh_token.reveal() == "from-a-file"
    assert oauth2.refresh_token_file == tmp_path / "imap-refresh"
    assert oauth2.client_secret is None and oauth2.mechanism == "OAUTHBEARER"


def test_token_url_may_be_http_on_loopback(tmp_path):
    path = oauth_config(tmp_path, lambda t: t.replace("https://login.example.com", "http://127.0.0.1:8080"))
    assert load_config(path, environ=ENV).imap.oauth2.token_url.startswith("http://127.0.0.1:8080/")


@pytest.mark.parametrize("change, key", [
    (lambda t: t.replace('auth = "oauth2"', 'auth = "oauth"'), "[imap] auth must be one of password, oauth2"),
    (lambda t: t.replace('oauth2_token_url = "https://login.example.com/tenant/oauth2/v2.0/token"\n', ""),
     "[imap] oauth2_token_url is missing"),
    (lambda t: t.replace("https://login.example.com", "http://login.example.com"),
     "[imap] oauth2_token_url must be https unless its host is loopback"),
    (lambda t: t.replace("https://login.example.com", "ftp://login.example.com"), "[imap] oauth2_token_url"),
    (lambda t: t.replace("https://login.example.com", "https://user:pass@login.example.com"),
     "[imap] oauth2_token_url must not contain a user name or password"),
    (lambda t: t.replace('oauth2_client_id = "the-client-id"\n', ""), "[imap] oauth2_client_id is missing"),
    (lambda t: t.replace('oauth2_refresh_token_env = "IMAP_REFRESH"\n', ""),
     "[imap] oauth2_refresh_token_env or oauth2_refresh_token_file is missing"),
    (lambda t: t.replace('oauth2_refresh_token_env = "IMAP_REFRESH"\n',
                         'oauth2_refresh_token_env = "IMAP_REFRESH"\noauth2_refresh_token_file = "x"\n'),
     "[imap] oauth2_refresh_token_env and oauth2_refresh_token_file: set only one"),
    (lambda t: t.replace('oauth2_client_secret_env = "IMAP_CLIENT_SECRET"',
                         'oauth2_client_secret_env = "IMAP_CLIENT_SECRET"\noauth2_client_secret_file = "y"'),
     "[imap] oauth2_client_secret_env and oauth2_client_secret_file: set only one"),
    (lambda t: t.replace('auth = "oauth2"', 'auth = "oauth2"\noauth2_mechanism = "PLAIN"'),
     "[imap] oauth2_mechanism must be one of XOAUTH2, OAUTHBEARER, got 'PLAIN'"),
    (lambda t: t.replace('auth = "oauth2"', 'auth = "oauth2"\npassword_env = "TEST_IMAP_PASSWORD"'),
     "[imap] password_env is not used with auth = \"oauth2\""),
    (lambda t: t.replace('auth = "oauth2"\n', ""), "[imap] oauth2_client_id is only used with auth = \"oauth2\""),
    (lambda t: t.replace('username = "desk@example.org"', 'username = "bücher@example.org"'),
     "[imap] username must be ASCII"),
    (lambda t: t.replace('from_address = "republish@riversideledger.example"\n',
                         'from_address = "republish@riversideledger.example"\n' + OAUTH_KEYS),
     "[smtp] username is missing (needed because auth = \"oauth2\")"),
])
def test_bad_oauth2_keys_are_named_and_no_secret_leaks(tmp_path, change, key):
    with pytest.raises(ConfigError) as error:
        load_config(oauth_config(tmp_path, change), environ=ENV)
    assert key in str(error.value)
    assert "refresh-token-value" not in str(error.value) and "client-secret-value" not in str(error.value)


@pytest.mark.parametrize("change, environ, key", [
    (lambda t: t.replace('"IMAP_REFRESH"', '"NOT_SET_ANYWHERE"'), ENV,
     "[imap] oauth2_refresh_token_env: environment variable NOT_SET_ANYWHERE is not set"),
    (lambda t: t.replace('oauth2_refresh_token_env = "IMAP_REFRESH"', 'oauth2_refresh_token_file = "missing-file"'),
     ENV, "[imap] oauth2_refresh_token_file: cannot read"),
    (lambda t: t, {**ENV, "IMAP_REFRESH": ""}, "[imap] oauth2_refresh_token_env: the refresh token is empty"),
])
def test_a_refresh_token_that_cannot_be_read_is_named_when_first_needed(tmp_path, change, environ, key):
    config = load_config(oauth_config(tmp_path, change), environ=environ)  # commands that never connect work
    with pytest.raises(ConfigError) as error:
        config.imap.oauth2.refresh_token.reveal()
    assert key in str(error.value) and "client-secret-value" not in str(error.value)


def test_example_config_with_its_oauth2_lines_uncommented_is_valid(tmp_path):
    from pathlib import Path

    example = (Path(__file__).resolve().parents[1] / "config.example.toml").read_text()
    lines = []
    for line in example.splitlines():
        if line.startswith("password_env ="):
            continue  # OAuth2 replaces the password
        if line.startswith(("# auth = ", "# oauth2_", "# provider = ")):
            line = line[2:]
        lines.append(line)
    token_file = tmp_path / "refresh-token"
    token_file.write_text("refresh-token-value\n")
    text = "\n".join(lines).replace("/var/lib/republish/oauth2-refresh-token", str(token_file))
    (tmp_path / "config.toml").write_text(text)
    config = load_config(tmp_path / "config.toml", environ={"REPUBLISH_OAUTH2_CLIENT_SECRET": "client-secret-value"})
    assert config.imap.oauth2.token_url == "https://login.microsoftonline.com/TENANT-ID/oauth2/v2.0/token"
    assert config.imap.oauth2.client_secret.reveal() == "client-secret-value"
    assert config.smtp.oauth2.client_secret is None and config.smtp.oauth2.mechanism == "XOAUTH2"
    assert config.smtp.oauth2.refresh_token.reveal() == "refresh-token-value"
