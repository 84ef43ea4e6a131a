"""Agent session tokens, their lifetime rules, and CSRF tokens bound to them.

The browser holds a random 256-bit session token; the store holds only its SHA-256
(:func:`hash_token`), so a database dump cannot be replayed as live sessions. A
session ends at the first of: revocation, ``idle_timeout`` without activity, or
``absolute_lifetime`` after login, whichever comes first. Short sessions are what
the handbooks' "revoke access" and "force re-login" rules rely on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "SessionLifetime",
    "SessionStatus",
    "check_csrf",
    "csrf_token_for",
    "hash_token",
    "new_session_token",
]

TOKEN_BYTES = 32
"""256 bits of randomness per session token."""

MIN_CSRF_SECRET_BYTES = 32
_CSRF_CONTEXT = b"cipherdesk/csrf/v1|"


def new_session_token() -> str:
    """Return a fresh session token (URL-safe base64, 43 characters, 256 bits)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """SHA-256 hex of ``token``: the form that is stored and looked up.

    A plain hash is enough because the token is 256 random bits (no dictionary to
    try); it also keeps the lookup an indexed equality.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SessionStatus(StrEnum):
    """Outcome of :meth:`SessionLifetime.check`; only ``VALID`` lets a request in."""

    VALID = "valid"
    IDLE_EXPIRED = "idle_expired"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class SessionLifetime:
    """The two clocks on a session: idle (30 min) and absolute (12 h) by default.

    Times are UNIX seconds; a session is expired *at* its deadline (``>=``).
    """

    idle_timeout: float = 1800.0
    absolute_lifetime: float = 43200.0

    def __post_init__(self) -> None:
        if self.idle_timeout <= 0 or self.absolute_lifetime <= 0:
            raise ValueError("SessionLifetime durations must be positive")

    def check(
        self,
        created_at: float,
        last_seen_at: float,
        revoked_at: float | None,
        now: float,
    ) -> SessionStatus:
        """Classify a session at ``now``; revocation wins, then absolute, then idle."""
        if revoked_at is not None:
            return SessionStatus.REVOKED
        if now >= created_at + self.absolute_lifetime:
            return SessionStatus.EXPIRED
        if now >= last_seen_at + self.idle_timeout:
            return SessionStatus.IDLE_EXPIRED
        return SessionStatus.VALID

    def expires_at(self, created_at: float, last_seen_at: float) -> float:
        """When the session ends if nothing else happens (for cookies and the UI)."""
        return min(created_at + self.absolute_lifetime, last_seen_at + self.idle_timeout)


def csrf_token_for(session_token: str, secret: bytes) -> str:
    """The CSRF token for a session: HMAC-SHA256(secret, session token).

    Binding it to the session (the "signed double-submit" pattern) means a token
    from one session is useless in another, and nothing extra is stored.
    ``secret`` is a server-side key of at least 32 bytes.
    """
    if len(secret) < MIN_CSRF_SECRET_BYTES:
        raise ValueError(f"CSRF secret must be at least {MIN_CSRF_SECRET_BYTES} bytes")
    mac = hmac.new(secret, _CSRF_CONTEXT + session_token.encode("utf-8"), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


def check_csrf(session_token: str, presented: str | None, secret: bytes) -> bool:
    """True iff ``presented`` is the CSRF token of ``session_token`` (constant time).

    Missing, empty or non-string values are simply False.
    """
    if not isinstance(presented, str) or not presented or not session_token:
        return False
    expected = csrf_token_for(session_token, secret)
    return hmac.compare_digest(expected.encode("ascii"), presented.encode("utf-8"))
