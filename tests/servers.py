"""Real servers for the integration tests, started from configs of their own on loopback."""

from __future__ import annotations

import asyncio
import base64
import grp
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope


def missing(what: str, how_to_get_it: str) -> None:
    """A server or data set a test needs is not there: skipped on a developer's machine, but under CI
    (CI=true) the run fails, so a green CI never hides tests that did not run."""
    import pytest

    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{what} ({how_to_get_it}); CI=true, so a missing server or data set fails the run")
    pytest.skip(f"{what} ({how_to_get_it})")


def close_listener(listener: socket.socket | None) -> None:
    """Stop a listening socket, waking the thread blocked in its accept()."""
    if listener is not None:
        try:
            listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # not connected on some platforms: close() below is what counts
        listener.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next((p for p in ("/usr/sbin/dovecot",) if os.path.exists(p)), None)


class Dovecot:
    """A private Dovecot instance: its own config, base dir, users file and ports.

    With `oauth2_tokeninfo_url` the accounts log in only with OAuth2 bearer tokens (XOAUTH2, OAUTHBEARER),
    which Dovecot checks at that URL, instead of with the instance's static password.
    """

    def __init__(self, binary: str, root: Path, tls: dict, oauth2_tokeninfo_url: str | None = None) -> None:
        self.binary = binary
        self.root = root
        self.tls = tls
        self.oauth2_tokeninfo_url = oauth2_tokeninfo_url
        self.imap_port = free_port()
        self.imaps_port = free_port()
        self.process: subprocess.Popen | None = None
        self.password = "test-" + uuid.uuid4().hex[:12]

    def _accounts(self) -> tuple[str, str, int, int]:
        if os.geteuid() == 0:
            user = pwd.getpwnam("dovecot")
            return "dovecot", "dovenull", user.pw_uid, user.pw_gid
        me = pwd.getpwuid(os.geteuid()).pw_name
        return me, me, os.geteuid(), os.getegid()

    def config_text(self) -> str:
        internal, login, uid, gid = self._accounts()
        group = grp.getgrgid(gid).gr_name
        root = self.root
        auth, passdb = self._auth_text()
        return f"""
base_dir = {root}/run
state_dir = {root}/state
instance_name = republish-test-{self.imap_port}
protocols = imap
listen = 127.0.0.1
log_path = {root}/dovecot.log
mail_location = maildir:{root}/mail/%u
first_valid_uid = {uid}
last_valid_uid = 0
default_internal_user = {internal}
default_internal_group = {group}
default_login_user = {login}
disable_plaintext_auth = no
{auth}
ssl = yes
ssl_cert = <{self.tls['cert']}
ssl_key = <{self.tls['key']}
mail_max_userip_connections = 50
{passdb}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot ={self._penalty_text()}
}}
namespace inbox {{
  inbox = yes
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
}}
"""

    def _auth_text(self) -> tuple[str, str]:
        if self.oauth2_tokeninfo_url is None:
            return "auth_mechanisms = plain login", f"""passdb {{
  driver = static
  args = password={self.password}
}}"""
        # Dovecot asks the tokeninfo endpoint about each bearer token (the token is appended to the URL) and
        # accepts it only for the account named in the answer's `email`, and only while `active` is true.
        return "auth_mechanisms = xoauth2 oauthbearer\nauth_failure_delay = 0", f"""passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {self.root}/dovecot-oauth2.conf.ext
}}"""

    def _penalty_text(self) -> str:
        # Refused tokens are part of the OAuth2 tests: no growing per-IP delay (Dovecot's documented switch).
        if self.oauth2_tokeninfo_url is None:
            return ""
        return "\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }"

    def _oauth2_args_text(self) -> str:
        return (f"tokeninfo_url = {self.oauth2_tokeninfo_url}\n"
                "username_attribute = email\n"
                "active_attribute = active\n"
                "active_value = true\n"
                "timeout_msecs = 5000\n")

    def start(self) -> None:
        _, _, uid, gid = self._accounts()
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("mail", "home"):
            os.chown(self.root / sub, uid, gid)
        if self.oauth2_tokeninfo_url is not None:
            (self.root / "dovecot-oauth2.conf.ext").write_text(self._oauth2_args_text())
        config = self.root / "dovecot.conf"
        config.write_text(self.config_text())
        self.process = subprocess.Popen([self.binary, "-F", "-c", str(config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True)
        try:
            wait_for_port(self.imap_port)
            wait_for_port(self.imaps_port)
        except RuntimeError:
            self.stop()
            log = (self.root / "dovecot.log").read_text() if (self.root / "dovecot.log").exists() else ""
            raise RuntimeError(f"dovecot did not start: {log[-2000:]}")

    def add_user(self, name: str) -> dict:
        # Every user name logs in with the instance's password: each test gets a fresh, empty account.
        return {"username": name, "password": self.password, "host": "127.0.0.1", "port": self.imap_port,
                "tls_port": self.imaps_port, "ca_file": self.tls["ca"]}

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class OAuthServer:
    """A small identity provider on loopback: a token endpoint (refresh-token grant) and a tokeninfo endpoint.

    Tokens are random strings kept in memory. `rotate = True` makes every refresh return a new refresh token
    and retire the old one (the strictest rotation a provider may do); `expires_in` sets access token lifetimes;
    `careless = True` quotes the refresh token it refuses in its error description, as no provider should.
    """

    def __init__(self, tls: dict | None = None) -> None:
        self.lock = threading.Lock()
        self.clients: dict[str, str | None] = {}          # client id -> secret (None: a public client)
        self.refresh_tokens: dict[str, tuple[str, str]] = {}  # refresh token -> (client id, user)
        self.access_tokens: dict[str, tuple[str, float]] = {}  # access token -> (user, expiry, monotonic)
        self.token_requests: list[dict[str, str]] = []
        self.tokeninfo_calls = 0
        self.expires_in = 3600
        self.rotate = False
        self.careless = False
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _oauth_handler(self))
        self.httpd.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls["cert"]), str(tls["key"]))
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
            self.httpd.handle_error = lambda request, address: None  # a client refusing our certificate is expected
            self.scheme = "https"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def token_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/token"

    @property
    def tokeninfo_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/tokeninfo?access_token="

    @property
    def token_calls(self) -> int:
        with self.lock:
            return len(self.token_requests)

    def register_client(self, secret: str | None = None) -> str:
        client_id = "client-" + secrets.token_hex(4)
        with self.lock:
            self.clients[client_id] = secret
        return client_id

    def grant(self, client_id: str, user: str) -> str:
        """A refresh token, as the provider hands out after the user consented once."""
        token = "rt-" + secrets.token_urlsafe(24)
        with self.lock:
            self.refresh_tokens[token] = (client_id, user)
        return token

    def mint(self, user: str) -> str:
        """An access token straight away (for test code that only needs to log in)."""
        with self.lock:
            return self._new_access_token(user)

    def user_of(self, access_token: str) -> str | None:
        with self.lock:
            user, expiry = self.access_tokens.get(access_token, (None, 0.0))
        return user if expiry > time.monotonic() else None

    def revoke_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    def _new_access_token(self, user: str) -> str:
        token = "at-" + secrets.token_urlsafe(24)
        self.access_tokens[token] = (user, time.monotonic() + self.expires_in)
        return token

    def token_response(self, form: dict[str, str]) -> tuple[int, dict]:
        with self.lock:
            self.token_requests.append(form)
            client_id = form.get("client_id", "")
            if client_id not in self.clients or self.clients[client_id] != form.get("client_secret"):
                return 401, {"error": "invalid_client", "error_description": "Client authentication failed."}
            if form.get("grant_type") != "refresh_token":
                return 400, {"error": "unsupported_grant_type"}
            owner = self.refresh_tokens.get(form.get("refresh_token", ""))
            if owner is None or owner[0] != client_id:
                description = "Token has been expired or revoked."
                if self.careless:
                    description = f"Refresh token {form.get('refresh_token')} has been expired or revoked."
                return 400, {"error": "invalid_grant", "error_description": description}
            body = {"access_token": self._new_access_token(owner[1]), "token_type": "Bearer",
                    "expires_in": self.expires_in}
            if "scope" in form:
                body["scope"] = form["scope"]
            if self.rotate:
                del self.refresh_tokens[form["refresh_token"]]
                body["refresh_token"] = "rt-" + secrets.token_urlsafe(24)
                self.refresh_tokens[body["refresh_token"]] = owner
            return 200, body

    def tokeninfo_response(self, access_token: str) -> tuple[int, dict]:
        with self.lock:
            self.tokeninfo_calls += 1
            user, expiry = self.access_tokens.get(access_token, (None, 0.0))
        remaining = int(expiry - time.monotonic())
        if user is None or remaining <= 0:
            return 400, {"error": "invalid_token"}
        return 200, {"email": user, "active": "true", "expires_in": remaining}

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _oauth_handler(server: OAuthServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/token":
                return self._answer(404, {"error": "not_found"})
            length = int(self.headers.get("Content-Length") or 0)
            if self.headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
                return self._answer(400, {"error": "invalid_request"})
            fields = parse_qs(self.rfile.read(length).decode("ascii"), keep_blank_values=True)
            self._answer(*server.token_response({key: values[-1] for key, values in fields.items()}))

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/tokeninfo":
                return self._answer(404, {"error": "not_found"})
            self._answer(*server.tokeninfo_response(parse_qs(parts.query).get("access_token", [""])[-1]))

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    return Handler


class _Collector:
    def __init__(self, server: "SmtpServer") -> None:
        self.server = server

    async def handle_DATA(self, server, session, envelope: Envelope) -> str:
        with self.server.lock:  # all of it, its final "." included, reached the server
            self.server.received.append(envelope.original_content)
        if self.server.delay:
            await asyncio.sleep(self.server.delay)
        with self.server.lock:
            reply = self.server.next_reply()
            if reply is not None:
                return reply
            self.server.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
            self.server.accepted_at.append(time.time())
        if self.server.stall_after_accepting:  # stored, but the client never hears so
            await asyncio.sleep(self.server.stall_after_accepting)
        return "250 OK"


class _OAuthCollector(_Collector):
    """Also answers AUTH XOAUTH2 and AUTH OAUTHBEARER, asking the identity provider about the bearer token."""

    async def auth_XOAUTH2(self, server, args) -> AuthResult:
        return await self._bearer(server, args, "XOAUTH2")

    async def auth_OAUTHBEARER(self, server, args) -> AuthResult:
        return await self._bearer(server, args, "OAUTHBEARER")

    async def _bearer(self, server, args, mechanism: str) -> AuthResult:
        response = base64.b64decode(args[1]) if len(args) > 1 else await server.challenge_auth("")
        if not isinstance(response, bytes):
            return AuthResult(success=False, handled=True)
        user, token = _parse_bearer(response.decode("utf-8", "replace"), mechanism)
        if token is not None and user is not None and self.server.oauth.user_of(token) == user:
            with self.server.lock:
                self.server.logins.append((mechanism, user))
            return AuthResult(success=True, auth_data=user)
        # As Gmail and Exchange do: an error challenge first, which the client must acknowledge (an empty
        # response for XOAUTH2, a single 0x01 for OAUTHBEARER, RFC 7628 3.2.3), then the refusal.
        acknowledgement = await server.challenge_auth(json.dumps({"status": "invalid_token", "schemes": "bearer"}))
        expected = b"\x01" if mechanism == "OAUTHBEARER" else b""
        if acknowledgement != expected:
            return AuthResult(success=False, handled=False, message="501 5.5.2 Bad acknowledgement of the error")
        return AuthResult(success=False, handled=False)


def _parse_bearer(text: str, mechanism: str) -> tuple[str | None, str | None]:
    user = token = None
    if mechanism == "OAUTHBEARER":
        header, _, text = text.partition("\x01")
        if header.startswith("n,a="):
            user = header[4:].rstrip(",").replace("=2C", ",").replace("=3D", "=")
    for pair in text.split("\x01"):
        key, _, value = pair.partition("=")
        if key == "user" and mechanism == "XOAUTH2":
            user = value
        elif key == "auth" and value.startswith("Bearer "):
            token = value[len("Bearer "):]
    return user, token


class SmtpServer:
    """aiosmtpd on loopback that keeps what it accepts; `refuse` scripts 4xx/5xx answers,
    `refuse_every_other` answers 451 to every second message, `delay` slows each DATA down,
    `stall_after_accepting` keeps a message and then does not answer for that long.

    With `oauth` (an OAuthServer) it requires AUTH with XOAUTH2 or OAUTHBEARER before it accepts mail. TLS
    is not required for that here: the tests run on loopback only.
    """

    def __init__(self, oauth: OAuthServer | None = None) -> None:
        self.port = free_port()
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.received: list[bytes] = []  # every message whose DATA ended, kept or not (a connection lost first)
        self.accepted_at: list[float] = []  # wall-clock time each message in `messages` was accepted
        self.lock = threading.Lock()
        self.scripted: list[str] = []
        self.refuse_every_other = False
        self.refused = 0
        self.delay = 0.0
        self.stall_after_accepting = 0.0
        self._offered = 0
        self.oauth = oauth
        self.logins: list[tuple[str, str]] = []
        if oauth is None:
            self.controller = Controller(_Collector(self), hostname="127.0.0.1", port=self.port)
        else:
            self.controller = Controller(_OAuthCollector(self), hostname="127.0.0.1", port=self.port,
                                         auth_required=True, auth_require_tls=False,
                                         auth_exclude_mechanism=["LOGIN", "PLAIN"])

    def next_reply(self) -> str | None:
        self._offered += 1
        if self.scripted:
            self.refused += 1
            return self.scripted.pop(0)
        if self.refuse_every_other and self._offered % 2 == 1:
            self.refused += 1
            return "451 4.3.2 please try again later"
        return None

    def replies_by_request(self, reached: bool = False) -> dict[str, int]:
        """How many replies each request (by the In-Reply-To of the reply) received; with `reached`, how many
        reached the server, whether or not it kept them."""
        counts: dict[str, int] = {}
        with self.lock:
            for raw in self.received if reached else [raw for _, _, raw in self.messages]:
                match = re.search(rb"(?im)^In-Reply-To:\s*<([^>]+)>", raw)
                key = match.group(1).decode() if match else ""
                counts[key] = counts.get(key, 0) + 1
        return counts

    def refuse(self, *replies: str) -> None:
        with self.lock:
            self.scripted.extend(replies)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def postgres_url():
    """(url, schema, cleanup) for a fresh schema in the local test database, or (None, reason, None)."""
    import psycopg

    base = os.environ.get("REPUBLISH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        connection = psycopg.connect(base, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        return None, f"{type(exc).__name__}", None
    schema = "t_" + uuid.uuid4().hex[:12]
    connection.execute(f'CREATE SCHEMA "{schema}"')

    def cleanup() -> None:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        connection.close()

    url = base.replace("postgresql://", "postgresql+psycopg://", 1) + f"?options=-csearch_path%3D{schema}"
    return url, schema, cleanup


class TcpProxy:
    """A loopback TCP forwarder that can be cut and restored: a database that goes away and comes back."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        close_listener(self._listener)
        self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def restore(self) -> None:
        self.start()

    def stop(self) -> None:
        self.cut()
