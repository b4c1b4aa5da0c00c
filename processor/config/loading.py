"""TOML configuration -> the frozen dataclasses of `settings`, validated once at start-up.

Every problem is reported as one `ConfigError` that names the key (`[imap] port`), so a
newsroom editor can fix the file without reading code. Passwords never live in the file:
the config names an environment variable (`password_env`) or a file (`password_file`), and
the value is wrapped in `Secret`, whose repr never shows it. OAuth2 client secrets and
refresh tokens are read the same way (`oauth2_client_secret_env`, `oauth2_refresh_token_file`, ...).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any
from email.utils import getaddresses
from urllib.parse import urlsplit

from processor.config.reader import Reader, is_loopback
from processor.config.schema import SAVE_SENT_MODES, check_keys, with_presets

from processor.config.settings import (AUTH_MODES, CORRECTION_MODES, DEFAULT_CONFIG_NAME, DEFAULT_WIRE_SOURCES,
                                       OAUTH2_MECHANISMS, SECURITY_MODES, SINKS, SOURCES, CatalogConfig, Config,
                                       ConfigError, CorrectionsConfig, ImapConfig, OAuth2Config, PublicationConfig,
                                       SmtpConfig, WebConfig, WorkerConfig)
from processor.urls import host_matches

_WORKER = WorkerConfig()  # the defaults
_IMAP_FOLDER, _IMAP_IDLE, _IMAP_IDLE_RENEW = ({f.name: f.default for f in fields(ImapConfig)}[name]
                                              for name in ("folder", "use_idle", "idle_renew_minutes"))


def config_path(explicit: str | os.PathLike[str] | None, environ: dict[str, str] | None = None) -> Path:
    """`--config PATH`, else `$REPUBLISH_CONFIG`, else `./config.toml`."""
    environ = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if environ.get("REPUBLISH_CONFIG"):
        return Path(environ["REPUBLISH_CONFIG"])
    return Path(DEFAULT_CONFIG_NAME)


def load_config(path: str | os.PathLike[str], environ: dict[str, str] | None = None) -> Config:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found (copy config.example.toml to config.toml)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    return parse_config(data, base_dir=path.parent, environ=environ, path=path)


def parse_config(
    data: dict[str, Any],
    *,
    base_dir: Path = Path("."),
    environ: dict[str, str] | None = None,
    path: Path | None = None,
) -> Config:
    environ = dict(os.environ) if environ is None else environ
    check_keys(data)
    reader = Reader(with_presets(data), base_dir, environ)
    worker = _worker(reader)
    publication = _publication(reader)
    return Config(
        database_url=_database_url(reader),
        publication=publication,
        worker=worker,
        imap=_imap(reader) if worker.source == "imap" else None,
        smtp=_smtp(reader) if worker.sink == "smtp" else None,
        path=path,
        web=_web(reader) if "web" in data else None,
        catalog=_catalog(reader, publication),
        corrections=CorrectionsConfig(
            mode=_choice(reader, "corrections", "mode", CORRECTION_MODES, required_table=False),
            max_age_days=_positive(reader, "corrections", "max_age_days", CorrectionsConfig.max_age_days),
        ),
    )


def _catalog(reader: Reader, publication: PublicationConfig) -> CatalogConfig:
    feeds = reader.get("catalog", "feeds", list, [], required_table=False)
    for feed in feeds:
        parts = urlsplit(feed) if isinstance(feed, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"config key [catalog] feeds must be a list of http(s) URLs, got {feed!r}")
        if not host_matches(parts.hostname, publication.allowed_hosts):
            raise ConfigError(f"config key [catalog] feeds: {feed} is not on the publication's allowed_hosts "
                              f"({', '.join(publication.allowed_hosts)}); only the publication's own feeds are read")
    return CatalogConfig(feeds=tuple(dict.fromkeys(feeds)),
                         poll_minutes=float(_positive(reader, "catalog", "poll_minutes", CatalogConfig.poll_minutes,
                                                      kind=float)))


def _database_url(reader: Reader) -> str:
    url = reader.text("database", "url", "sqlite:///republish.sqlite3", required_table=False)
    if "://" not in url:
        raise ConfigError(f"config key [database] url must be a SQLAlchemy URL such as sqlite:///republish.sqlite3, got {url!r}")
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        # A relative SQLite path is relative to the config file, not to wherever the worker was started.
        url = "sqlite:///" + str((reader.base_dir / url[len("sqlite:///"):]).resolve())
    return url


def _worker(reader: Reader) -> WorkerConfig:
    source = reader.text("worker", "source", _WORKER.source, required_table=False)
    if source not in SOURCES:
        raise ConfigError(f"config key [worker] source must be one of {', '.join(SOURCES)}, got {source!r}")
    sink = reader.text("worker", "sink", _WORKER.sink, required_table=False)
    if sink not in SINKS:
        raise ConfigError(f"config key [worker] sink must be one of {', '.join(SINKS)}, got {sink!r}")
    worker = WorkerConfig(
        source=source,
        sink=sink,
        batch_size=_positive(reader, "worker", "batch_size", _WORKER.batch_size),
        poll_seconds=float(_positive(reader, "worker", "poll_seconds", _WORKER.poll_seconds, kind=float)),
        max_age_days=_positive(reader, "worker", "max_age_days", _WORKER.max_age_days),
        max_message_bytes=_positive(reader, "worker", "max_message_bytes", _WORKER.max_message_bytes),
        fetch_timeout=float(_positive(reader, "worker", "fetch_timeout", _WORKER.fetch_timeout, kind=float)),
        fetch_max_bytes=_positive(reader, "worker", "fetch_max_bytes", _WORKER.fetch_max_bytes),
        maildir_path=reader.path("maildir", "path"),
        outbox_path=reader.path("outbox", "path"),
        retry_first_seconds=float(_positive(reader, "worker", "retry_first_seconds", _WORKER.retry_first_seconds, kind=float)),
        retry_max_seconds=float(_positive(reader, "worker", "retry_max_seconds", _WORKER.retry_max_seconds, kind=float)),
        retry_give_up_hours=float(_positive(reader, "worker", "retry_give_up_hours", _WORKER.retry_give_up_hours, kind=float)),
        max_replies_per_sender_per_day=_positive(reader, "worker", "max_replies_per_sender_per_day", _WORKER.max_replies_per_sender_per_day),
        max_replies_per_domain_per_day=_positive(reader, "worker", "max_replies_per_domain_per_day", _WORKER.max_replies_per_domain_per_day),
        max_replies_per_hour=_positive(reader, "worker", "max_replies_per_hour", _WORKER.max_replies_per_hour),
        max_stories_per_request=_positive(reader, "worker", "max_stories_per_request", _WORKER.max_stories_per_request),
        smtp_connections=_at_least(reader, "worker", "smtp_connections", _WORKER.smtp_connections, minimum=1),
        require_authenticated_sender=reader.get("worker", "require_authenticated_sender", bool, _WORKER.require_authenticated_sender,
                                                required_table=False),
        authserv_id=reader.text("worker", "authserv_id", "", required_table=False).strip().lower(),
    )
    if worker.require_authenticated_sender and not worker.authserv_id:
        raise ConfigError("config key [worker] authserv_id is missing (needed because require_authenticated_sender "
                          "= true): the name your receiving mail server puts in its Authentication-Results headers")
    if source == "maildir" and worker.maildir_path is None:
        raise ConfigError("config key [maildir] path is missing (needed because [worker] source = \"maildir\")")
    if sink == "outbox" and worker.outbox_path is None:
        raise ConfigError("config key [outbox] path is missing (needed because [worker] sink = \"outbox\")")
    return worker


def _positive(reader: Reader, table: str, key: str, default: Any, kind: type = int) -> Any:
    value = reader.get(table, key, kind, default, required_table=False)
    if value <= 0:
        raise ConfigError(f"config key [{table}] {key} must be greater than 0, got {value!r}")
    return value


def _at_least(reader: Reader, table: str, key: str, default: int, *, minimum: int, maximum: int = 64) -> int:
    value = reader.get(table, key, int, default, required_table=False)
    if not minimum <= value <= maximum:
        raise ConfigError(f"config key [{table}] {key} must be between {minimum} and {maximum}, got {value!r}")
    return value


def _server(reader: Reader, table: str, default_ports: dict[str, int]) -> dict[str, Any]:
    host = reader.text(table, "host")
    security = reader.text(table, "security", "tls")
    if security not in SECURITY_MODES:
        raise ConfigError(f"config key [{table}] security must be one of {', '.join(SECURITY_MODES)}, got {security!r}")
    allow_plaintext = reader.get(table, "allow_plaintext", bool, False)
    if security == "none" and not is_loopback(host) and not allow_plaintext:
        raise ConfigError(
            f"config key [{table}] security = \"none\" is only allowed to a loopback host "
            f"(got host {host!r}); set allow_plaintext = true to override"
        )
    port = reader.get(table, "port", int, default_ports[security])
    if not 0 < port < 65536:
        raise ConfigError(f"config key [{table}] port must be between 1 and 65535, got {port}")
    ca_file = reader.path(table, "ca_file")
    if ca_file is not None and not ca_file.is_file():
        raise ConfigError(f"config key [{table}] ca_file: {ca_file} not found")
    username = reader.text(table, "username", "")
    oauth2 = _oauth2(reader, table, username)
    return {
        "host": host,
        "port": port,
        "security": security,
        "username": username,
        "password": reader.secret(table) if oauth2 is None else None,
        "ca_file": ca_file,
        "timeout": float(_positive(reader, table, "timeout", 30.0, kind=float)),
        "oauth2": oauth2,
    }


def _oauth2(reader: Reader, table: str, username: str) -> OAuth2Config | None:
    """The OAuth2 settings when `auth = "oauth2"`; None for passwords. Contradictory keys are refused."""
    auth = reader.text(table, "auth", "password")
    if auth not in AUTH_MODES:
        raise ConfigError(f"config key [{table}] auth must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
    values = reader.table(table)
    if auth == "password":
        stray = sorted(key for key in values if key.startswith("oauth2_"))
        if stray:
            raise ConfigError(f"config key [{table}] {stray[0]} is only used with auth = \"oauth2\" (auth is \"password\")")
        return None
    for key in ("password_env", "password_file"):
        if key in values:
            raise ConfigError(f"config key [{table}] {key} is not used with auth = \"oauth2\": remove it")
    if not username:
        raise ConfigError(f"config key [{table}] username is missing (needed because auth = \"oauth2\")")
    if not username.isascii():
        # SMTP AUTH carries the SASL response as ASCII (smtplib), and the providers' accounts are ASCII anyway.
        raise ConfigError(f"config key [{table}] username must be ASCII for auth = \"oauth2\", got {username!r}")
    client_id = reader.text(table, "oauth2_client_id", "")
    if not client_id:
        raise ConfigError(f"config key [{table}] oauth2_client_id is missing (needed because auth = \"oauth2\")")
    refresh_token = reader.secret(table, "oauth2_refresh_token", check=_not_empty("the refresh token is empty"))
    if refresh_token is None:
        raise ConfigError(
            f"config key [{table}] oauth2_refresh_token_env or oauth2_refresh_token_file is missing "
            f"(needed because auth = \"oauth2\")"
        )
    client_secret = reader.secret(table, "oauth2_client_secret")  # an empty one is none: a public client
    mechanism = reader.text(table, "oauth2_mechanism", "XOAUTH2")
    if mechanism.upper() not in OAUTH2_MECHANISMS:
        raise ConfigError(
            f"config key [{table}] oauth2_mechanism must be one of {', '.join(OAUTH2_MECHANISMS)}, got {mechanism!r}"
        )
    return OAuth2Config(
        token_url=_token_url(reader, table),
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
        refresh_token_file=reader.path(table, "oauth2_refresh_token_file"),
        scope=" ".join(reader.text(table, "oauth2_scope", "").split()) or None,
        mechanism=mechanism.upper(),
    )


def _token_url(reader: Reader, table: str) -> str:
    value = reader.text(table, "oauth2_token_url", "")
    if not value:
        raise ConfigError(f"config key [{table}] oauth2_token_url is missing (needed because auth = \"oauth2\")")
    parts = urlsplit(value)
    if parts.username is not None or parts.password is not None:
        # Said without echoing the URL: what is in it may be a secret.
        raise ConfigError(f"config key [{table}] oauth2_token_url must not contain a user name or password")
    if not parts.hostname or parts.scheme not in ("https", "http"):
        raise ConfigError(f"config key [{table}] oauth2_token_url must be an https URL, got {value!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        # The refresh token and client secret travel in the request: plain http only on this machine.
        raise ConfigError(
            f"config key [{table}] oauth2_token_url must be https unless its host is loopback, got {value!r}"
        )
    return value


def _imap(reader: Reader) -> ImapConfig:
    reader.table("imap")
    common = _server(reader, "imap", {"tls": 993, "starttls": 143, "none": 143})
    if not common["username"]:
        raise ConfigError("config key [imap] username is missing")
    return ImapConfig(
        **common,
        folder=reader.text("imap", "folder", _IMAP_FOLDER),
        processed_folder=reader.text("imap", "processed_folder", "") or None,
        sent_folder=reader.text("imap", "sent_folder", "") or None,
        save_sent=_choice(reader, "imap", "save_sent", SAVE_SENT_MODES),
        use_idle=reader.get("imap", "idle", bool, _IMAP_IDLE),
        idle_renew_minutes=float(_positive(reader, "imap", "idle_renew_minutes", _IMAP_IDLE_RENEW, kind=float)),
        provider=reader.text("imap", "provider", "generic"),
    )


def _smtp(reader: Reader) -> SmtpConfig:
    reader.table("smtp")
    common = _server(reader, "smtp", {"tls": 465, "starttls": 587, "none": 25})
    from_name, from_address = _address(reader, "smtp", "from_address")
    return SmtpConfig(**common, from_address=from_address, from_name=from_name,
                      provider=reader.text("smtp", "provider", "generic"))


def _publication(reader: Reader) -> PublicationConfig:
    reader.table("publication")
    site_url = _http_url(reader, "site_url")
    hosts = reader.get("publication", "allowed_hosts", list, None)
    if hosts is None:
        hosts = [urlsplit(site_url).hostname or ""]
    if not hosts or not all(isinstance(h, str) and h for h in hosts):
        raise ConfigError("config key [publication] allowed_hosts must be a list of host names")
    pixel_url = reader.text("publication", "pixel_url")
    try:
        pixel_url.format(story_id="1", outlet_id="1", token="t")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"config key [publication] pixel_url may only use the placeholders {{story_id}}, "
            f"{{outlet_id}} and {{token}} ({exc!s})"
        ) from None
    if "{token}" not in pixel_url:
        raise ConfigError("config key [publication] pixel_url must contain {token}, so views can be told apart per outlet")
    _, contact = _address(reader, "publication", "contact_email")
    wire = reader.get("publication", "wire_sources", list, list(DEFAULT_WIRE_SOURCES))
    if not all(isinstance(w, str) and w.strip() for w in wire):
        raise ConfigError("config key [publication] wire_sources must be a list of publication names")
    return PublicationConfig(
        name=reader.text("publication", "name"),
        site_url=site_url,
        allowed_hosts=tuple(h.lower().strip(".") for h in hosts),
        guidelines_url=_http_url(reader, "guidelines_url"),
        contact_email=contact,
        pixel_url=pixel_url,
        wire_sources=tuple(w.strip() for w in wire),
        paragraph_style=reader.text("publication", "paragraph_style", "margin: 0 0 1em 0; line-height: 1.5;"),
        signature=reader.get("publication", "signature", str, ""),
    )


def _choice(reader: Reader, table: str, key: str, choices: tuple[str, ...], required_table: bool = True) -> str:
    value = reader.text(table, key, choices[0], required_table=required_table)
    if value not in choices:
        raise ConfigError(f"config key [{table}] {key} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _address(reader: Reader, table: str, key: str) -> tuple[str, str]:
    """(display name, address) from `Name <addr@example.org>` or a bare `addr@example.org`; else refused."""
    value = reader.text(table, key).strip()
    pairs = getaddresses([value]) if value else []
    name, address = pairs[0] if len(pairs) == 1 else ("", "")
    local, _, domain = address.rpartition("@")
    bare = value == address
    # Exactly one address, written as one of the two forms (getaddresses also takes "a@b (comment)" and
    # broken forms, which would silently become something else).
    if not (local and domain and not any(ch.isspace() or ch in '<>(),;:"[]\\' for ch in address)
            and (bare or value.endswith(f"<{address}>"))):
        raise ConfigError(f"config key [{table}] {key} must be an address such as republish@example.org or "
                          f"\"The Example Ledger <republish@example.org>\", got {value!r}")
    return name, address


def _http_url(reader: Reader, key: str) -> str:
    value = reader.text("publication", key)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"config key [publication] {key} must be an http(s) URL, got {value!r}")
    return value


def _web(reader: Reader) -> WebConfig:
    from processor.passwords import is_password_hash

    reader.table("web")
    password_hash = reader.text("web", "password_hash", "") or None
    header = reader.text("web", "trusted_user_header", "").strip() or None
    if password_hash and header:
        raise ConfigError("config keys [web] password_hash and trusted_user_header: set only one")
    if not password_hash and not header:
        raise ConfigError("config key [web] password_hash is missing (make one with `republish web hash-password`), "
                          "or set trusted_user_header behind a reverse proxy that logs editors in")
    if password_hash and not is_password_hash(password_hash):
        raise ConfigError("config key [web] password_hash is not a hash made by `republish web hash-password`")
    if header and not all(ch.isalnum() or ch == "-" for ch in header):
        raise ConfigError(f"config key [web] trusted_user_header must be an HTTP header name, got {header!r}")
    secret = reader.secret("web", "session_secret", check=_not_shorter(32, "the secret must be at least 32 characters "
                                                                      "(for example: python3 -c 'import secrets; "
                                                                      "print(secrets.token_urlsafe(32))')"))
    if password_hash and secret is None:
        raise ConfigError("config key [web] session_secret_env or session_secret_file is missing "
                          "(needed to sign the login cookie when password_hash is set)")
    return WebConfig(
        password_hash=password_hash,
        session_secret=secret,
        trusted_user_header=header,
        cookie_secure=reader.get("web", "cookie_secure", bool, True),
        trusted_proxies=_addresses(reader.get("web", "trusted_proxies", list, [])),
    )


def _addresses(values: list) -> tuple[str, ...]:
    import ipaddress

    try:
        return tuple(str(ipaddress.ip_address(str(value).strip())) for value in values)
    except ValueError as exc:
        raise ConfigError(f"config key [web] trusted_proxies must list IP addresses: {exc}") from None


def _not_empty(problem: str):
    def check(value: str, key: str) -> None:
        if not value:
            raise ConfigError(f"config key {key}: {problem}")
    return check


def _not_shorter(length: int, problem: str):
    def check(value: str, key: str) -> None:
        if len(value) < length:
            raise ConfigError(f"config key {key}: {problem}")
    return check
