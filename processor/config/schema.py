"""Which tables and keys a config file may hold, and what a provider preset fills in.

A key that is not here stops start-up with its name and the nearest known one (`poll_second`: did
you mean `poll_seconds`?), because a misspelt key that is silently ignored looks like a setting
that works. Keys of earlier versions say what to do instead. The loader reads only keys listed
here (it refuses to read any other), so the list cannot fall behind what the code uses.
"""

from __future__ import annotations

import difflib
from typing import Any

from processor.config.settings import ConfigError

SERVER_KEYS = frozenset({
    "provider", "host", "port", "security", "allow_plaintext", "username", "password_env", "password_file", "auth",
    "oauth2_token_url", "oauth2_client_id", "oauth2_client_secret_env", "oauth2_client_secret_file",
    "oauth2_refresh_token_env", "oauth2_refresh_token_file", "oauth2_scope", "oauth2_mechanism", "oauth2_tenant",
    "ca_file", "timeout",
})

KNOWN_KEYS: dict[str, frozenset[str]] = {
    "database": frozenset({"url"}),
    "worker": frozenset({
        "source", "sink", "batch_size", "poll_seconds", "max_age_days", "max_message_bytes", "fetch_timeout",
        "fetch_max_bytes", "retry_first_seconds", "retry_max_seconds", "retry_give_up_hours",
        "max_replies_per_sender_per_day", "max_replies_per_domain_per_day", "max_replies_per_hour",
        "max_stories_per_request", "smtp_connections",
        "require_authenticated_sender", "authserv_id",
    }),
    "imap": SERVER_KEYS | {"folder", "processed_folder", "sent_folder", "save_sent", "idle", "idle_renew_minutes"},
    "smtp": SERVER_KEYS | {"from_address"},
    "maildir": frozenset({"path"}),
    "outbox": frozenset({"path"}),
    "publication": frozenset({
        "name", "site_url", "allowed_hosts", "guidelines_url", "contact_email", "pixel_url", "wire_sources",
        "paragraph_style", "signature",
    }),
    "catalog": frozenset({"feeds", "poll_minutes"}),
    "corrections": frozenset({"mode", "max_age_days"}),
    "web": frozenset({"password_hash", "session_secret_env", "session_secret_file", "trusted_user_header",
                      "cookie_secure", "trusted_proxies"}),
}

# Keys of earlier versions, or keys people reach for, with what to do instead.
REMOVED_KEYS = {
    ("worker", "prepare_processes"): "is no longer used: messages are parsed by the worker itself now; delete the line",
}
MISPLACED_KEYS = {
    "password": "passwords never go in the config file: name an environment variable with password_env, or a file "
                "with password_file",
    "oauth2_refresh_token": "refresh tokens never go in the config file: use oauth2_refresh_token_file (best: a "
                            "rotated token is written back) or oauth2_refresh_token_env",
    "oauth2_client_secret": "secrets never go in the config file: use oauth2_client_secret_env or "
                            "oauth2_client_secret_file",
    "session_secret": "secrets never go in the config file: use session_secret_env or session_secret_file",
}

PROVIDERS = ("generic", "microsoft365", "google")
# Providers that file a copy of every message sent over their authenticated SMTP in Sent themselves
# (Gmail does; Microsoft 365 is reported to for a mailbox sending as itself): `save_sent = "auto"` adds none.
PROVIDERS_FILING_SENT = ("microsoft365", "google")
SAVE_SENT_MODES = ("auto", "always", "never")
_OAUTH2 = "oauth2_"
# What `provider = "..."` fills in where the table does not say otherwise. Microsoft's token URL names the
# tenant (`oauth2_tenant`: the directory's id or domain); without one, the "organizations" authority, which
# serves apps registered for any work or school directory. Scopes as both providers document them.
PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("imap", "microsoft365"): {
        "host": "outlook.office365.com", "port": 993, "security": "tls", "auth": "oauth2",
        "oauth2_token_url": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "oauth2_scope": "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
        # Office 365's IDLE is reported to go quiet after a while: renewing it often bounds what that costs.
        "idle_renew_minutes": 10,
    },
    ("smtp", "microsoft365"): {
        "host": "smtp.office365.com", "port": 587, "security": "starttls", "auth": "oauth2",
        "oauth2_token_url": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "oauth2_scope": "https://outlook.office.com/SMTP.Send offline_access",
    },
    ("imap", "google"): {
        "host": "imap.gmail.com", "port": 993, "security": "tls", "auth": "oauth2",
        "oauth2_token_url": "https://oauth2.googleapis.com/token", "oauth2_scope": "https://mail.google.com/",
    },
    ("smtp", "google"): {
        "host": "smtp.gmail.com", "port": 587, "security": "starttls", "auth": "oauth2",
        "oauth2_token_url": "https://oauth2.googleapis.com/token", "oauth2_scope": "https://mail.google.com/",
    },
}


def check_keys(data: dict[str, Any]) -> None:
    """Refuse a table or key that is not known, naming it and the nearest known one."""
    for table, values in data.items():
        if table not in KNOWN_KEYS:
            if not isinstance(values, dict):  # written above the first [table]
                owner = next((name for name, keys in KNOWN_KEYS.items() if table in keys), None)
                raise ConfigError(f"config key {table} stands outside any table"
                                  + (f": it belongs under [{owner}]" if owner else ""))
            raise ConfigError(f"config table [{table}] is not known{_nearest(table, KNOWN_KEYS)}")
        if not isinstance(values, dict):
            raise ConfigError(f"config key [{table}] must be a table")
        for key in values:
            if (table, key) in REMOVED_KEYS:
                raise ConfigError(f"config key [{table}] {key} {REMOVED_KEYS[table, key]}")
            if key in MISPLACED_KEYS:
                raise ConfigError(f"config key [{table}] {key} is not allowed: {MISPLACED_KEYS[key]}")
            if key not in KNOWN_KEYS[table]:
                raise ConfigError(f"config key [{table}] {key} is not known{_nearest(key, KNOWN_KEYS[table])}")


def with_presets(data: dict[str, Any]) -> dict[str, Any]:
    """The config with each [imap]/[smtp] provider's preset filled in under the keys the file leaves out.
    OAuth2 keys are filled in only where the table logs in with OAuth2 (a preset's default)."""
    filled = dict(data)
    for table in ("imap", "smtp"):
        values = data.get(table)
        if not isinstance(values, dict) or "provider" not in values:
            continue
        provider = values["provider"]
        if provider not in PROVIDERS:
            raise ConfigError(f"config key [{table}] provider must be one of {', '.join(PROVIDERS)}, got {provider!r}")
        preset = PRESETS.get((table, provider), {})
        oauth2 = values.get("auth", preset.get("auth")) == "oauth2"
        tenant = values.get("oauth2_tenant", "organizations")
        if not isinstance(tenant, str) or not tenant or not all(ch.isalnum() or ch in "-." for ch in tenant):
            raise ConfigError(f"config key [{table}] oauth2_tenant must be a directory id or domain, got {tenant!r}")
        filled[table] = {**{key: value.replace("{tenant}", tenant) if key == "oauth2_token_url" else value
                            for key, value in preset.items() if oauth2 or not key.startswith(_OAUTH2)},
                         **values}
    for table in ("imap", "smtp"):
        values = filled.get(table)
        if isinstance(values, dict) and "oauth2_tenant" in values and values.get("provider") != "microsoft365":
            raise ConfigError(f"config key [{table}] oauth2_tenant is only used with provider = \"microsoft365\"")
    return filled


def _nearest(name: str, known) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(sorted(known))})"
