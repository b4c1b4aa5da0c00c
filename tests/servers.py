"""Real servers for the integration tests, started from configs of their own on loopback."""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope


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
    """A private Dovecot instance: its own config, base dir, users file and ports."""

    def __init__(self, binary: str, root: Path, tls: dict) -> None:
        self.binary = binary
        self.root = root
        self.tls = tls
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
auth_mechanisms = plain login
ssl = yes
ssl_cert = <{self.tls['cert']}
ssl_key = <{self.tls['key']}
mail_max_userip_connections = 50
passdb {{
  driver = static
  args = password={self.password}
}}
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
  chroot =
}}
namespace inbox {{
  inbox = yes
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
}}
"""

    def start(self) -> None:
        _, _, uid, gid = self._accounts()
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("mail", "home"):
            os.chown(self.root / sub, uid, gid)
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


class _Collector:
    def __init__(self, server: "SmtpServer") -> None:
        self.server = server

    async def handle_DATA(self, server, session, envelope: Envelope) -> str:
        if self.server.delay:
            await asyncio.sleep(self.server.delay)
        with self.server.lock:
            reply = self.server.next_reply()
            if reply is not None:
                return reply
            self.server.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"


class SmtpServer:
    """aiosmtpd on loopback that keeps what it accepts; `refuse` scripts 4xx/5xx answers,
    `refuse_every_other` answers 451 to every second message, `delay` slows each DATA down."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()
        self.scripted: list[str] = []
        self.refuse_every_other = False
        self.refused = 0
        self.delay = 0.0
        self._offered = 0
        self.controller = Controller(_Collector(self), hostname="127.0.0.1", port=self.port)

    def next_reply(self) -> str | None:
        self._offered += 1
        if self.scripted:
            self.refused += 1
            return self.scripted.pop(0)
        if self.refuse_every_other and self._offered % 2 == 1:
            self.refused += 1
            return "451 4.3.2 please try again later"
        return None

    def replies_by_request(self) -> dict[str, int]:
        """How many replies each request (by the In-Reply-To of the reply) received."""
        counts: dict[str, int] = {}
        with self.lock:
            for _, _, raw in self.messages:
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
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            self._listener.close()
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
