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
    (lambda t: t.replace("[publication]", "[publication_x]"), "[publication]"),
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


def test_missing_password_variable_is_named_and_no_secret_leaks(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(_with(tmp_path, lambda t: t), environ={})
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
