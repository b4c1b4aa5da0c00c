import pytest

from processor.config import ConfigError, Secret, load_config
from tests.helpers import write_config


def _with(tmp_path, text_change):
    path = write_config(tmp_path, "sqlite:///x.sqlite3", imap={"host": "127.0.0.1", "port": 1143, "username": "u"},
                        smtp_port=2525)
    text = path.read_text()
    path.write_text(text_change(text))
    return path


def test_valid_config_loads(tmp_path):
    config = load_config(_with(tmp_path, lambda t: t), environ={"TEST_IMAP_PASSWORD": "s3cret-pw"})
    assert config.imap.port == 1143
    assert isinstance(config.imap.password, Secret)
    assert "s3cret-pw" not in repr(config)
    assert config.database_url.startswith("sqlite:////")


@pytest.mark.parametrize("change, key", [
    (lambda t: t.replace("port = 1143", 'port = "x"'), "[imap] port"),
    (lambda t: t.replace('security = "none"', 'security = "ssl"', 1), "[imap] security"),
    (lambda t: t.replace('host = "127.0.0.1"', 'host = "mail.example.com"', 1), "[imap] security"),
    (lambda t: t.replace("[publication]", "[publication_x]"), "[publication_x] is not known (did you mean publication?)"),
    (lambda t: t.replace("&t={token}", ""), "[publication] pixel_url"),
    (lambda t: t.replace("{token}", "{secret}"), "[publication] pixel_url"),
    (lambda t: t.replace('from_address = "republish@riversideledger.example"', 'from_address = "nobody"'), "[smtp] from_address"),
    (lambda t: t.replace("poll_seconds = 1", "poll_seconds = 1\nrequire_authenticated_sender = true"), "[worker] authserv_id"),
    (lambda t: t.replace("poll_seconds = 1", "poll_seconds = 1\nretry_first_seconds = 0"), "[worker] retry_first_seconds"),
    (lambda t: t.replace("poll_seconds = 1", "poll_seconds = 1\nmax_replies_per_sender_per_day = -1"),
     "[worker] max_replies_per_sender_per_day"),
    (lambda t: t.replace('username = "u"\n', ""), "[imap] username"),
])
def test_bad_keys_are_named(tmp_path, change, key):
    with pytest.raises(ConfigError) as error:
        load_config(_with(tmp_path, change), environ={"TEST_IMAP_PASSWORD": "pw"})
    assert key in str(error.value)


def test_a_missing_password_variable_is_named_when_the_password_is_first_needed(tmp_path):
    """Reading the log or serving the dashboard needs no mail password: it is read when a connection needs it."""
    config = load_config(_with(tmp_path, lambda t: t), environ={})
    with pytest.raises(ConfigError) as error:
        config.imap.password.reveal()
    assert "[imap] password_env" in str(error.value) and "TEST_IMAP_PASSWORD" in str(error.value)


def test_password_file(tmp_path):
    (tmp_path / "imap.secret").write_text("from-a-file\n")
    path = _with(tmp_path, lambda t: t.replace('password_env = "TEST_IMAP_PASSWORD"', 'password_file = "imap.secret"'))
    assert load_config(path, environ={}).imap.password.reveal() == "from-a-file"


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_example_config_is_valid(monkeypatch):
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "config.example.toml"
    config = load_config(example, environ={"REPUBLISH_IMAP_PASSWORD": "x", "REPUBLISH_SMTP_PASSWORD": "y"})
    assert config.imap.security == "tls" and config.smtp.security == "starttls"


def test_a_key_of_an_earlier_version_says_it_is_no_longer_used(tmp_path):
    path = _with(tmp_path, lambda t: t.replace("poll_seconds = 1", "poll_seconds = 1\nprepare_processes = 1"))
    with pytest.raises(ConfigError, match=r"\[worker\] prepare_processes is no longer used: .*delete the line"):
        load_config(path, environ={"TEST_IMAP_PASSWORD": "pw"})


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace("poll_seconds = 1", "poll_second = 1"), "[worker] poll_second is not known (did you mean poll_seconds?)"),
    (lambda t: t + "\n[webb]\npassword_hash = 'x'\n", "[webb] is not known (did you mean web?)"),
    (lambda t: t.replace('username = "u"', 'username = "u"\npassword = "hunter2"'),
     "[imap] password is not allowed: passwords never go in the config file"),
    (lambda t: t.replace('username = "u"', 'username = "u"\nfoldr = "INBOX"'), "[imap] foldr is not known (did you mean folder?)"),
    (lambda t: "poll_seconds = 5\n" + t, "config key poll_seconds stands outside any table: it belongs under [worker]"),
])
def test_an_unknown_key_stops_start_up_naming_the_nearest_known_one(tmp_path, change, message):
    with pytest.raises(ConfigError) as error:
        load_config(_with(tmp_path, change), environ={"TEST_IMAP_PASSWORD": "pw"})
    assert message in str(error.value)


@pytest.mark.parametrize("value, name, address", [
    ("republish@riversideledger.example", "", "republish@riversideledger.example"),
    ("The Riverside Ledger <republish@riversideledger.example>", "The Riverside Ledger",
     "republish@riversideledger.example"),
    ('"Ledger, Riverside" <republish@riversideledger.example>', "Ledger, Riverside", "republish@riversideledger.example"),
])
def test_an_address_may_carry_a_display_name(tmp_path, value, name, address):
    path = _with(tmp_path, lambda t: t.replace('from_address = "republish@riversideledger.example"',
                                               f"from_address = '{value}'"))
    config = load_config(path, environ={"TEST_IMAP_PASSWORD": "pw"})
    assert (config.smtp.from_name, config.smtp.from_address, config.reply_from) == (name, address, address)
    assert config.reply_name == (name or config.publication.name)


@pytest.mark.parametrize("value", ["nobody", "a@b.example, c@d.example", "x <a@b.example> <c@d.example>",
                                   "a@b.example (comment)", "<>", "Name <no-at-sign>", "a b@c.example"])
def test_anything_else_is_refused(tmp_path, value):
    path = _with(tmp_path, lambda t: t.replace('contact_email = "republish@riversideledger.example"',
                                               f"contact_email = '{value}'"))
    with pytest.raises(ConfigError, match=r"\[publication\] contact_email must be an address such as"):
        load_config(path, environ={"TEST_IMAP_PASSWORD": "pw"})


def _preset_config(tmp_path, imap: str, smtp: str):
    token = tmp_path / "refresh-token"
    token.write_text("rt")
    path = tmp_path / "preset.toml"
    path.write_text(f"""
[worker]
source = "imap"
sink = "smtp"
[imap]
provider = "microsoft365"
username = "republish@ledger.example"
oauth2_client_id = "client-id"
oauth2_refresh_token_file = "{token}"
{imap}
[smtp]
provider = "google"
username = "republish@ledger.example"
oauth2_client_id = "client-id"
oauth2_refresh_token_file = "{token}"
from_address = "Riverside Ledger <republish@ledger.example>"
{smtp}
[publication]
name = "Riverside Ledger"
site_url = "https://ledger.example/"
guidelines_url = "https://ledger.example/republish/"
contact_email = "republish@ledger.example"
pixel_url = "https://ledger.example/px/{{token}}.gif"
""")
    return path


def test_a_provider_preset_takes_a_username_a_client_id_and_a_token_file(tmp_path):
    config = load_config(_preset_config(tmp_path, "", ""), environ={})
    imap, smtp = config.imap, config.smtp
    assert (imap.host, imap.port, imap.security, imap.provider) == ("outlook.office365.com", 993, "tls", "microsoft365")
    assert imap.oauth2.token_url == "https://login.microsoftonline.com/organizations/oauth2/v2.0/token"
    assert "IMAP.AccessAsUser.All" in imap.oauth2.scope and imap.idle_renew_minutes == 10
    assert (smtp.host, smtp.port, smtp.security) == ("smtp.gmail.com", 587, "starttls")
    assert (smtp.oauth2.token_url, smtp.oauth2.scope) == ("https://oauth2.googleapis.com/token", "https://mail.google.com/")


def test_every_preset_key_can_be_overridden(tmp_path):
    own = "https://login.example/token"
    path = _preset_config(tmp_path, 'oauth2_tenant = "ledger.example"\nidle_renew_minutes = 3\nport = 1993',
                          f'port = 465\nsecurity = "tls"\noauth2_token_url = "{own}"')
    config = load_config(path, environ={})
    assert config.imap.oauth2.token_url == "https://login.microsoftonline.com/ledger.example/oauth2/v2.0/token"
    assert (config.imap.idle_renew_minutes, config.imap.port) == (3, 1993)
    assert (config.smtp.port, config.smtp.security, config.smtp.oauth2.token_url) == (465, "tls", own)
    path.write_text(path.read_text().replace('oauth2_token_url = "https://login.example/token"',
                                             'oauth2_tenant = "x"'))
    with pytest.raises(ConfigError, match=r"\[smtp\] oauth2_tenant is only used with provider = \"microsoft365\""):
        load_config(path, environ={})


def test_a_preset_with_a_password_fills_in_no_oauth2_keys(tmp_path):
    path = _preset_config(tmp_path, "", "")
    text = path.read_text().replace('[imap]\nprovider = "microsoft365"\nusername = "republish@ledger.example"\n'
                                    'oauth2_client_id = "client-id"\n', '[imap]\nprovider = "microsoft365"\n'
                                    'username = "republish@ledger.example"\nauth = "password"\npassword_env = "PW"\n')
    text = text.replace(f'oauth2_refresh_token_file = "{tmp_path / "refresh-token"}"\n\n[smtp]', "\n[smtp]")
    path.write_text(text)
    config = load_config(path, environ={"PW": "secret"})
    assert config.imap.oauth2 is None and config.imap.password.reveal() == "secret"
    assert config.imap.host == "outlook.office365.com"


def test_an_unknown_provider_is_refused(tmp_path):
    path = _preset_config(tmp_path, "", "")
    path.write_text(path.read_text().replace('provider = "google"', 'provider = "gmail"'))
    with pytest.raises(ConfigError, match=r"\[smtp\] provider must be one of generic, microsoft365, google"):
        load_config(path, environ={})
