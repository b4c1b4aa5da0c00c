"""Telling a database that is away from a problem with one message."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError


class DatabaseUnavailable(Exception):
    """The database cannot be reached (or is locked); nothing is marked, everything is retried."""


def unavailable(exc: SQLAlchemyError) -> bool:
    """A lost or refused connection (or a locked SQLite file), as opposed to a problem with one message."""
    return isinstance(exc, (OperationalError, InterfaceError)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated)


def describe_database_error(exc: Exception) -> str:
    """The first line of the driver's message: says what went wrong without a traceback's worth of SQL."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


@contextmanager
def database_needed():
    """Turn "the database is away" into DatabaseUnavailable; other errors pass as they are."""
    try:
        yield
    except SQLAlchemyError as exc:
        if unavailable(exc):
            raise DatabaseUnavailable("database unavailable: " + describe_database_error(exc)) from None
        raise
