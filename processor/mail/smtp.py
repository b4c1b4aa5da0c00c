"""The only code that sends mail: SMTP (one connection per batch), or an outbox folder of .eml files."""

from __future__ import annotations

import hashlib
import logging
import re
import smtplib
import socket
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Callable, Protocol

from processor.config import SmtpConfig
from processor.mail.oauth import OAuthError, TokenProvider, bearer_auth
from processor.mail.tls import client_context

log = logging.getLogger(__name__)


class SendError(Exception):
    """The reply was not accepted; `permanent` when retrying cannot help (SMTP 5xx); `uncertain` when
    the connection broke after the whole message was handed over, so it may have been accepted."""

    def __init__(self, message: str, permanent: bool = False, uncertain: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.uncertain = uncertain


class Connection(Protocol):
    def send(self, raw: bytes, sender: str, recipient: str, before_end: Callable[[], None] | None = None) -> None:
        """Hand one message over; `before_end` is called once all of it is with the server, just before
        the step that makes the server keep it."""


class Sender(Protocol):
    def connect(self) -> AbstractContextManager[Connection]: ...


class SmtpSender:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self.tokens = TokenProvider.for_server(config) if config.oauth2 else None  # outlives each connection

    def connect(self) -> _SmtpConnection:
        return _SmtpConnection(self.config, self.tokens)


class _SmtpConnection:
    def __init__(self, config: SmtpConfig, tokens: TokenProvider | None = None) -> None:
        self.config = config
        self.tokens = tokens
        self.smtp: smtplib.SMTP | None = None

    def __enter__(self) -> _SmtpConnection:
        config = self.config
        try:
            if config.security == "tls":
                self.smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout,
                                             context=client_context(config.ca_file))
            else:
                self.smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
                if config.security == "starttls":
                    self.smtp.starttls(context=client_context(config.ca_file))
            # No Nagle delay: smtplib writes a message in parts, and each would wait for the server's ACK.
            self.smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tokens is not None:
                self._oauth2_login()
            elif config.username and config.password is not None:
                self.smtp.login(config.username, config.password.reveal())
        except smtplib.SMTPAuthenticationError as exc:
            self._close()
            if self.tokens is not None:
                self.tokens.invalidate()  # so the next batch does not offer the refused token again
                raise SendError(f"SMTP OAuth2 login ({config.oauth2.mechanism}) to {config.host} refused "
                                f"({exc.smtp_code}): the access token was not accepted") from None
            raise SendError(f"SMTP login to {config.host} refused ({exc.smtp_code})") from None
        except OAuthError as exc:
            self._close()
            raise SendError(f"SMTP login to {config.host}: no OAuth2 access token: {exc}") from None
        except (OSError, smtplib.SMTPException) as exc:
            self._close()
            raise SendError(f"cannot connect to SMTP server {config.host}:{config.port}: {_describe(exc)}") from None
        return self

    def _oauth2_login(self) -> None:
        config, smtp = self.config, self.smtp
        smtp.ehlo_or_helo_if_needed()  # login() does this itself; auth() does not
        mechanism = config.oauth2.mechanism
        if mechanism not in smtp.esmtp_features.get("auth", "").upper().split():
            raise smtplib.SMTPNotSupportedError(f"the server does not offer AUTH {mechanism}")
        smtp.auth(mechanism, bearer_auth(config, self.tokens.access_token()))

    def send(self, raw: bytes, sender: str, recipient: str, before_end: Callable[[], None] | None = None) -> None:
        smtp = self.smtp
        assert smtp is not None
        # The envelope, the message and its end each on their own (not sendmail()): until the final "."
        # the server keeps nothing (RFC 5321 4.1.1.4), so a failure up to there means a retry is safe.
        # Only between the "." and the server's answer can a lost connection leave the reply in doubt;
        # `before_end` records that moment first, and may raise to give up while nothing is delivered.
        try:
            smtp.ehlo_or_helo_if_needed()
            for command, argument in ((smtp.mail, sender), (smtp.rcpt, recipient)):
                code, _ = command(argument)
                if code not in (250, 251):
                    self._reset()
                    raise SendError(f"SMTP server answered {code} to {command.__name__.upper()}",
                                    permanent=500 <= code < 600)
            smtp.putcmd("data")
            code, answer = smtp.getreply()
            if code != 354:
                raise smtplib.SMTPDataError(code, answer)
            smtp.send(_dot_stuffed(raw))
        except smtplib.SMTPResponseException as exc:
            self._reset()
            raise SendError(f"SMTP server answered {exc.smtp_code}", permanent=500 <= exc.smtp_code < 600) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"SMTP connection failed: {_describe(exc)}") from None
        if before_end is not None:
            try:
                before_end()
            except BaseException:
                self._drop()  # a DATA never ended: the server keeps nothing
                raise
        try:
            smtp.send(b".\r\n")
            code, answer = smtp.getreply()
            if code != 250:
                raise smtplib.SMTPDataError(code, answer)
        except smtplib.SMTPResponseException as exc:
            self._reset()
            raise SendError(f"SMTP server answered {exc.smtp_code}", permanent=500 <= exc.smtp_code < 600) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"SMTP connection lost while the reply was being handed over: {_describe(exc)}",
                            uncertain=True) from None

    def _reset(self) -> None:
        try:
            self.smtp.rset()
        except (OSError, smtplib.SMTPException):
            pass

    def __exit__(self, *exc_info) -> None:
        self._close()

    def _drop(self) -> None:
        """Close without a word: inside DATA, even QUIT would be taken for part of the message."""
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None

    def _close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (OSError, smtplib.SMTPException):
                self.smtp.close()
            self.smtp = None


class OutboxSender:
    """Writes each reply as an .eml file instead of sending it: the demo, and a dry run before going live."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def connect(self) -> _OutboxConnection:
        return _OutboxConnection(self.path)


class _OutboxConnection:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> _OutboxConnection:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SendError(f"cannot create the outbox folder {self.path}: {exc.strerror}") from None
        return self

    def __exit__(self, *exc_info) -> None:
        return None

    def send(self, raw: bytes, sender: str, recipient: str, before_end: Callable[[], None] | None = None) -> None:
        if before_end is not None:
            before_end()
        digest = hashlib.sha256(raw).hexdigest()[:8]
        # Named for whom it is, so a person can tell the files apart; the digest keeps two replies apart.
        target = self.path / f"reply-to-{re.sub(r'[^A-Za-z0-9@._+-]', '_', recipient)[:100]}-{digest}.eml"
        temporary = target.with_suffix(".tmp")
        try:
            temporary.write_bytes(raw)
            temporary.replace(target)  # all or nothing: a reply is never half written
        except OSError as exc:
            raise SendError(f"cannot write the reply to the outbox folder {self.path}: {exc.strerror}") from None


def _dot_stuffed(raw: bytes) -> bytes:
    """The message as DATA carries it, save the final ".": lines starting with "." doubled, CRLF at the end."""
    body = re.sub(rb"(?m)^\.", b"..", raw)
    return body if body.endswith(b"\r\n") else body + b"\r\n"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
