"""OAuth2 for IMAP and SMTP: access tokens from a refresh token, and the SASL responses that carry them.

Microsoft 365 and Google Workspace take a short-lived bearer token (about an hour) where a password used
to go. The worker holds a long-lived refresh token; `TokenProvider` trades it for access tokens at the
provider's token URL (RFC 6749 section 6) and keeps each one until shortly before it expires. The SASL
builders are pure: XOAUTH2 (the format Google and Microsoft document) and OAUTHBEARER (RFC 7628).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from processor.config import ConfigError, OAuth2Config, Secret, ServerConfig
from processor.mail.tls import client_context

log = logging.getLogger(__name__)

# Refresh when less than 5 minutes or a tenth of the token's lifetime is left, whichever is less: room for
# a slow login, without refreshing short-lived tokens almost at once.
REFRESH_MARGIN_SECONDS = 300.0
REFRESH_MARGIN_FRACTION = 0.1
# RFC 6749 only recommends `expires_in`; Microsoft and Google always send it. Without it, assume their hour:
# a login refused with a stale token drops it anyway (`invalidate`).
DEFAULT_LIFETIME_SECONDS = 3600.0


class OAuthError(Exception):
    """No access token: the token endpoint refused or could not be reached. Never holds a token or secret."""


class TokenProvider:
    """Access tokens for one mailbox account, refreshed before they expire; thread-safe.

    `clock` (seconds, monotonic) is injectable so tests can move time forward.
    """

    def __init__(self, settings: OAuth2Config, *, ca_file: Path | None = None, timeout: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.ca_file = ca_file
        self.timeout = timeout
        self.clock = clock
        self._refresh_token = settings.refresh_token
        self._file_seen = settings.refresh_token.reveal() if settings.refresh_token_file else None
        self._access_token: Secret | None = None
        self._refresh_at = 0.0
        self._told_not_saved = False
        self._lock = threading.Lock()

    @classmethod
    def for_server(cls, config: ServerConfig) -> TokenProvider:
        """The provider for an [imap] or [smtp] table with auth = "oauth2" (its ca_file and timeout apply)."""
        if config.oauth2 is None:
            raise ValueError("the server is not configured for OAuth2")
        return cls(config.oauth2, ca_file=config.ca_file, timeout=config.timeout)

    def __repr__(self) -> str:
        return f"TokenProvider({self._where})"

    def access_token(self) -> Secret:
        """A token valid for a few more minutes at least: the cached one, else a new one from the endpoint."""
        with self._lock:
            if self._access_token is None or self.clock() >= self._refresh_at:
                self._refresh()
            assert self._access_token is not None
            return self._access_token

    def invalidate(self) -> None:
        """Forget the cached access token (a server refused it): the next `access_token()` fetches a new one."""
        with self._lock:
            self._access_token = None

    @property
    def _where(self) -> str:
        # The token URL without its query: enough to say which endpoint, nothing more.
        parts = urlsplit(self.settings.token_url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}"

    def _refresh(self) -> None:
        settings = self.settings
        self._reread_refresh_token_file()
        form = {"grant_type": "refresh_token", "refresh_token": self._refresh_token.reveal(),
                "client_id": settings.client_id}
        if settings.client_secret is not None and settings.client_secret.reveal():  # empty: a public client
            form["client_secret"] = settings.client_secret.reveal()
        if settings.scope:
            form["scope"] = settings.scope
        started = self.clock()  # the lifetime counts from the request: time on the wire is already spent
        try:
            with httpx.Client(verify=client_context(self.ca_file), timeout=self.timeout) as http:
                response = http.post(settings.token_url, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise OAuthError(f"token endpoint {self._where} unreachable: {self._scrub(detail)}") from None
        body = _json_object(response)
        if response.status_code != 200:
            raise OAuthError(self._refusal(response.status_code, body))
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise OAuthError(f"token endpoint {self._where} answered HTTP 200 without an access token")
        token_type = body.get("token_type", "Bearer")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise OAuthError(f"token endpoint {self._where} issued a {str(token_type)[:20]!r} token, not a bearer token")
        lifetime = _lifetime(body.get("expires_in"))
        self._access_token = Secret(token)
        self._refresh_at = started + lifetime - min(REFRESH_MARGIN_SECONDS, lifetime * REFRESH_MARGIN_FRACTION)
        log.info("new OAuth2 access token from %s, valid for %d s", self._where, lifetime)
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != self._refresh_token.reveal():
            self._refresh_token = Secret(rotated)
            self._keep_rotated_refresh_token()

    def _reread_refresh_token_file(self) -> None:
        # A token file that changed since we last read or wrote it holds a newer token: the other table
        # ([imap] / [smtp]) sharing the file rotated it, or an operator put a new one there after the old one
        # was revoked. Unchanged or unreadable, the token in memory stands (it may be newer than the file).
        path = self.settings.refresh_token_file
        if path is None:
            return
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError:
            return
        if text and text != self._file_seen:
            self._file_seen = text
            self._refresh_token = Secret(text)

    def _keep_rotated_refresh_token(self) -> None:
        # Providers may hand out a new refresh token with every access token (Microsoft does; each lives 90
        # days from issue). The new one is used from now on. When it came from a file it is also written back,
        # so a restart months later starts from a token that is still valid instead of the expired original:
        # to a temporary file renamed over the old one, so a crash mid-write never leaves half a token, and
        # mode 0600, since it opens the mailbox.
        path = self.settings.refresh_token_file
        if path is None:
            if not self._told_not_saved:
                self._told_not_saved = True
                log.warning("the token endpoint issued a new refresh token; it is kept in memory only (the old one "
                            "came from the environment): use oauth2_refresh_token_file to keep it across restarts")
            return
        try:
            _write_private(path, self._refresh_token.reveal() + "\n")
        except OSError as exc:
            log.warning("new refresh token kept in memory, but not saved to %s: %s", path, exc.strerror or exc)
            return
        self._file_seen = self._refresh_token.reveal()
        log.info("new refresh token saved to %s", path)

    def _refusal(self, status: int, body: dict) -> str:
        error = body.get("error") if isinstance(body.get("error"), str) else None
        description = body.get("error_description") if isinstance(body.get("error_description"), str) else None
        text = f"token endpoint {self._where} refused to issue an access token: HTTP {status}"
        if error:
            text += f" {self._scrub(error)[:60]}"
        if description:
            text += f" ({self._scrub(' '.join(description.split()))[:300]})"
        if error == "invalid_grant":
            text += "; the refresh token has expired or was revoked: get a new one (README, OAuth2)"
        elif error in ("invalid_client", "unauthorized_client"):
            text += "; check oauth2_client_id and the client secret"
        return text

    def _scrub(self, text: str) -> str:
        """`text` from the network, with any of our secrets in it masked: an endpoint might echo one."""
        secrets = [self._refresh_token, self.settings.refresh_token, self.settings.client_secret]
        for secret in secrets:
            value = _known(secret)
            if value:
                text = text.replace(value, "***")
        return text


def _known(secret: Secret | None) -> str:
    """The secret's value for masking, or "" when it cannot be read (masking must not fail)."""
    try:
        return secret.reveal() if secret is not None else ""
    except ConfigError:
        return ""


def _json_object(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _lifetime(expires_in: object) -> float:
    try:
        seconds = float(expires_in)  # some endpoints send a string: "3599"
    except (TypeError, ValueError):
        return DEFAULT_LIFETIME_SECONDS
    return seconds if seconds > 0 else DEFAULT_LIFETIME_SECONDS


def _write_private(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


# -- SASL ------------------------------------------------------------------


def xoauth2_response(user: str, token: str) -> str:
    """The XOAUTH2 client response: user=USER ^A auth=Bearer TOKEN ^A ^A (before base64)."""
    _check(user, token)
    return f"user={user}\x01auth=Bearer {token}\x01\x01"


def oauthbearer_response(user: str, token: str, host: str | None = None, port: int | None = None) -> str:
    """The OAUTHBEARER client response (RFC 7628 3.1); host and port are optional there."""
    _check(user, token)
    authzid = user.replace("=", "=3D").replace(",", "=2C")  # RFC 5801 saslname
    fields = (f"host={host}\x01" if host else "") + (f"port={port}\x01" if port else "")
    return f"n,a={authzid},\x01{fields}auth=Bearer {token}\x01\x01"


def _check(user: str, token: str) -> None:
    # ^A separates the fields; one inside a value would forge another field. Said without the values.
    if "\x01" in user or "\x01" in token or not token:
        raise ValueError("user name or access token not usable in a SASL response")


class BearerAuth:
    """A SASL client for imapclient's `sasl_login` and smtplib's `SMTP.auth`.

    First the client response. If the server then sends an error challenge (JSON saying why), the
    acknowledgement the mechanism expects (empty for XOAUTH2, a single ^A for OAUTHBEARER, RFC 7628
    3.2.3), after which the server ends the exchange with a plain refusal.
    """

    def __init__(self, mechanism: str, response: str) -> None:
        self.mechanism = mechanism
        self._response = response
        self._sent = False

    def __call__(self, challenge: bytes | None = None) -> str:
        if not self._sent:
            self._sent = True
            return self._response
        return "\x01" if self.mechanism == "OAUTHBEARER" else ""

    def __repr__(self) -> str:
        return f"BearerAuth({self.mechanism})"


def bearer_auth(config: ServerConfig, token: Secret) -> BearerAuth:
    """The SASL client for `config`'s mechanism, user name and server, carrying `token`."""
    assert config.oauth2 is not None
    if config.oauth2.mechanism == "OAUTHBEARER":
        return BearerAuth("OAUTHBEARER", oauthbearer_response(config.username, token.reveal(), config.host, config.port))
    return BearerAuth("XOAUTH2", xoauth2_response(config.username, token.reveal()))
