"""The signed session cookie and the CSRF token it carries. Pure: the caller passes the time.

The cookie is `base64(json).base64(hmac-sha256)`: who is logged in, the per-session CSRF token that
every form posts back, and when it expires. Nothing secret is in it; the signature stops forgery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

COOKIE_NAME = "republish_session"
LIFETIME_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    user: str
    csrf: str
    expires: int


def new_session(user: str, now: float, lifetime: int = LIFETIME_SECONDS) -> Session:
    return Session(user=user, csrf=secrets.token_urlsafe(24), expires=int(now) + lifetime)


def encode(session: Session, secret: bytes) -> str:
    payload = _b64(json.dumps({"u": session.user, "c": session.csrf, "e": session.expires},
                              separators=(",", ":")).encode("utf-8"))
    return f"{payload}.{_sign(payload, secret)}"


def decode(cookie: str | None, secret: bytes, now: float) -> Session | None:
    """The session, or None when the cookie is missing, forged, malformed or expired."""
    if not cookie or "." not in cookie:
        return None
    payload, signature = cookie.rsplit(".", 1)
    if not hmac.compare_digest(signature, _sign(payload, secret)):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        session = Session(user=str(data["u"]), csrf=str(data["c"]), expires=int(data["e"]))
    except (ValueError, KeyError, TypeError):
        return None
    return session if session.expires > now else None


def csrf_ok(session: Session | None, submitted: str | None) -> bool:
    return session is not None and bool(submitted) and hmac.compare_digest(session.csrf, submitted)


def sign_note(session: Session, secret: bytes, note: str) -> str:
    """A signature that lets a page show `note`, carried in its address after a form, to this session only:
    a link from anyone else cannot put words of its own in the page."""
    return _sign(f"note:{session.csrf}:{note}", secret)


def note_ok(session: Session, secret: bytes, note: str, signature: str | None) -> bool:
    return bool(note) and bool(signature) and hmac.compare_digest(sign_note(session, secret, note), signature)


def _sign(payload: str, secret: bytes) -> str:
    return _b64(hmac.new(secret, payload.encode("utf-8"), hashlib.sha256).digest())  # a note may name "José"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
