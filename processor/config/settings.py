"""What the configuration holds: frozen dataclasses with the one set of defaults, and `Secret`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CONFIG_NAME = "config.toml"
SECURITY_MODES = ("tls", "starttls", "none")
AUTH_MODES = ("password", "oauth2")
OAUTH2_MECHANISMS = ("XOAUTH2", "OAUTHBEARER")
SOURCES = ("imap", "maildir")
SINKS = ("smtp", "outbox")
DEFAULT_WIRE_SOURCES = (
    "JTA",
    "Jewish Telegraphic Agency",
    "Haaretz",
    "Associated Press",
    "AP",
    "Reuters",
    "AFP",
    "Agence France-Presse",
    "dpa",
    "dpa-AFX",
    "Jiji",
    "Kyodo",
    "Xinhua",
    "UPI",
    "Bloomberg",
    "CNN Wire",
    "Religion News Service",
    "Kveller",
)


class ConfigError(Exception):
    """A bad or missing configuration key; the message names the key."""


class Secret:
    """A password or token that must never reach a log, a repr or an error message.

    Read when first used (`resolve`), not when the config is loaded: a command that never connects to the
    mail servers (the log, the review queue, the dashboard) needs no mail password in its environment."""

    __slots__ = ("_value", "_resolve")

    def __init__(self, value: str | None = None, *, resolve: Callable[[], str] | None = None) -> None:
        self._value = value
        self._resolve = resolve

    def reveal(self) -> str:
        """The secret; ConfigError naming the config key when it cannot be read."""
        if self._value is None:
            self._value = self._resolve()
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class OAuth2Config:
    """How to get access tokens for `auth = "oauth2"`: a refresh token exchanged at the provider's token URL."""

    token_url: str
    client_id: str
    client_secret: Secret | None = field(repr=False)  # None: a public client
    refresh_token: Secret = field(repr=False)
    refresh_token_file: Path | None  # where a rotated refresh token is written back; None when from the environment
    scope: str | None
    mechanism: str  # SASL: "XOAUTH2" or "OAUTHBEARER"


@dataclass(frozen=True)
class ServerConfig:
    """Connection settings shared by IMAP and SMTP."""

    host: str
    port: int
    security: str
    username: str
    password: Secret | None = field(repr=False)
    ca_file: Path | None
    timeout: float
    oauth2: OAuth2Config | None = None  # set when auth = "oauth2"; then password is None
    provider: str = "generic"           # "microsoft365", "google": whose preset filled in what the file left out


@dataclass(frozen=True)
class ImapConfig(ServerConfig):
    folder: str = "INBOX"
    processed_folder: str | None = None
    sent_folder: str | None = None
    save_sent: str = "auto"   # "auto", "always", "never": copies of replies in Sent (see mail/sent.py)
    use_idle: bool = True
    # An IDLE is ended and the folder looked at again this often: servers drop long IDLEs on schedules of
    # their own (RFC 2177 allows 30 minutes), and one that goes quiet then costs at most this long.
    idle_renew_minutes: float = 25.0


@dataclass(frozen=True)
class SmtpConfig(ServerConfig):
    from_address: str = ""   # the bare address: envelope sender and From
    from_name: str = ""      # the From header's display name ("" : the publication's name)


@dataclass(frozen=True)
class PublicationConfig:
    name: str
    site_url: str
    allowed_hosts: tuple[str, ...]
    guidelines_url: str
    contact_email: str
    pixel_url: str
    wire_sources: tuple[str, ...]
    paragraph_style: str
    signature: str


@dataclass(frozen=True)
class WorkerConfig:
    """[worker], [maildir] path and [outbox] path. The defaults here are the only ones: the loader reads them."""

    source: str = "imap"
    sink: str = "smtp"
    batch_size: int = 500
    poll_seconds: float = 60.0
    max_age_days: int = 14
    max_message_bytes: int = 10 * 1024 * 1024
    fetch_timeout: float = 10.0
    fetch_max_bytes: int = 5 * 1024 * 1024
    maildir_path: Path | None = None
    outbox_path: Path | None = None
    retry_first_seconds: float = 60.0
    retry_max_seconds: float = 3600.0
    retry_give_up_hours: float = 48.0
    # Caps on automatic replies, so forged requests cannot turn the worker on someone's mailbox: per mailbox
    # (however spelled), per recipient domain, and in all. A request over a cap goes to a person.
    max_replies_per_sender_per_day: int = 5
    max_replies_per_domain_per_day: int = 20
    max_replies_per_hour: int = 100
    max_stories_per_request: int = 10
    # SMTP connections sending side by side, each one reply at a time (worth it when the server is far away).
    smtp_connections: int = 4
    # Trust DMARC/DKIM verdicts only from the Authentication-Results header our own server adds.
    require_authenticated_sender: bool = False
    authserv_id: str = ""


@dataclass(frozen=True)
class CatalogConfig:
    """[catalog]: the publication's own feeds, polled by the worker (and `republish catalog sync`)."""

    feeds: tuple[str, ...] = ()
    poll_minutes: float = 15.0


CORRECTION_MODES = ("auto", "review")


@dataclass(frozen=True)
class CorrectionsConfig:
    """[corrections]: how outlets are told that a story they were granted changed."""

    mode: str = "auto"         # "auto": notices go out at once; "review": they wait for an editor
    max_age_days: int = 90     # pickups first requested longer ago than this are not told


@dataclass(frozen=True)
class WebConfig:
    """`republish serve`: who may see the dashboard. Either a password (its scrypt hash, from
    `republish web hash-password`) with a secret to sign the session cookie, or a reverse proxy's
    login header trusted as is (then the app must only be reachable through that proxy)."""

    password_hash: str | None
    session_secret: Secret | None = field(repr=False)
    trusted_user_header: str | None
    cookie_secure: bool = True
    # The reverse proxies whose X-Forwarded-For names the client (the pixel's per-client limits need it).
    trusted_proxies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    database_url: str
    publication: PublicationConfig
    worker: WorkerConfig
    imap: ImapConfig | None
    smtp: SmtpConfig | None
    path: Path | None = None
    web: WebConfig | None = None
    catalog: CatalogConfig = CatalogConfig()
    corrections: CorrectionsConfig = CorrectionsConfig()

    @property
    def reply_from(self) -> str:
        """The address replies come from: [smtp] from_address, else the publication's contact address."""
        return self.smtp.from_address if self.smtp else self.publication.contact_email

    @property
    def reply_domain(self) -> str:
        """The domain our Message-IDs are made in: the reply address's."""
        return self.reply_from.rsplit("@", 1)[-1]

    @property
    def reply_name(self) -> str:
        """The display name replies come from."""
        return (self.smtp.from_name if self.smtp else "") or self.publication.name
