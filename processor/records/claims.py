"""Who works on what, when several workers share one mailbox and one database.

PostgreSQL: any number of workers. Before handling a message or sending a reply, a worker
takes a session-level advisory lock on it (`pg_try_advisory_lock`); another worker that
cannot take it leaves that item alone. The lock lives on the worker's own connection, so a
worker that dies (even by kill -9) releases it the moment its connection closes, and a reply
left in "sending" whose lock anyone can take belongs to a dead worker.

SQLite: one worker per database file, enforced by an exclusive lock on a file beside it
(released by the kernel when the process dies); a second worker refuses to start.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
from typing import Protocol

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)


class AnotherWorkerRunning(Exception):
    """A second worker on a database that allows only one."""


class Claims(Protocol):
    def take(self, name: str) -> bool:
        """True if this worker now holds `name`; False if another worker does."""

    def take_all(self, names: list[str]) -> set[str]:
        """Take each of `names` that no other worker holds, in one go; the ones now held."""

    def release_all(self, names: list[str]) -> None: ...

    def close(self) -> None: ...


def claims_for(engine: Engine) -> Claims:
    if engine.dialect.name == "postgresql":
        return PostgresClaims(engine)
    if engine.dialect.name == "sqlite":
        return LocalClaims(_lock_file_for(engine.url.database))
    return LocalClaims(None)


class LocalClaims:
    """The only worker on its database: claims are bookkeeping within this process."""

    def __init__(self, lock_path: str | None) -> None:
        self.held: set[str] = set()
        self._lock_file = _exclusive_lock(lock_path) if lock_path else None

    def take(self, name: str) -> bool:
        if name in self.held:
            return False
        self.held.add(name)
        return True

    def take_all(self, names: list[str]) -> set[str]:
        return {name for name in dict.fromkeys(names) if self.take(name)}

    def release_all(self, names: list[str]) -> None:
        self.held.difference_update(names)

    def close(self) -> None:
        self.held.clear()
        if self._lock_file is not None:
            self._lock_file.close()  # closing the descriptor drops the lock
            self._lock_file = None


class PostgresClaims:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connection: Connection | None = None
        self.held: set[str] = set()
        self.namespace = ""

    def _connection(self) -> Connection:
        if self.connection is None:
            self.connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            # Advisory locks are shared by the whole database: installations kept apart by schema
            # (two newsrooms, or tests running side by side) must not take each other's claims.
            self.namespace = self.connection.scalar(text("SELECT current_schema()")) or ""
        return self.connection

    def take(self, name: str) -> bool:
        return name in self.take_all([name])

    def take_all(self, names: list[str]) -> set[str]:
        try:
            wanted = {self._key(name): name for name in dict.fromkeys(names) if name not in self.held}
            if not wanted:
                return set()
            rows = self._connection().execute(
                text("SELECT key FROM unnest(CAST(:keys AS bigint[])) AS key WHERE pg_try_advisory_lock(key)"),
                {"keys": list(wanted)}).all()
        except Exception:
            self._discard_connection()
            raise
        taken = {wanted[key] for key, in rows}
        self.held.update(taken)
        return taken

    def release_all(self, names: list[str]) -> None:
        mine = [name for name in dict.fromkeys(names) if name in self.held]
        if not mine:
            return
        try:
            keys = [self._key(name) for name in mine]
            self.held.difference_update(mine)
            self._connection().execute(text("SELECT pg_advisory_unlock(key) FROM unnest(CAST(:keys AS bigint[])) AS key"),
                                       {"keys": keys})
        except Exception:
            self._discard_connection()  # a closed connection has released its locks anyway
            raise

    def _key(self, name: str) -> int:
        self._connection()  # the namespace comes with the connection
        return lock_key(f"{self.namespace}:{name}")

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.execute(text("SELECT pg_advisory_unlock_all()"))
                self.connection.close()
            except SQLAlchemyError as exc:
                log.info("claims: the connection could not be closed cleanly (%s); the server releases its locks",
                         str(exc).splitlines()[0])
                self._discard_connection()
        self.connection = None
        self.held.clear()

    def _discard_connection(self) -> None:
        # The server ends a broken session's locks with it; never hand this connection back to the pool.
        connection, self.connection = self.connection, None
        self.held.clear()
        if connection is not None:
            try:
                connection.invalidate()
                connection.close()
            except SQLAlchemyError as exc:  # already broken: closing it is all that was left to do
                log.info("claims: a broken connection could not be closed (%s)", str(exc).splitlines()[0])


def lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for a claim name."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big", signed=True)


def _lock_file_for(database: str | None) -> str | None:
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return os.path.abspath(database) + ".worker-lock"


def _exclusive_lock(path: str):
    handle = open(path, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise AnotherWorkerRunning(
            f"another worker is already running on this SQLite database (pid {holder}); SQLite allows one "
            f"worker at a time: stop the other one, or use PostgreSQL to run several"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
