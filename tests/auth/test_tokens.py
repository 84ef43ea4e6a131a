"""Session tokens, session lifetime rules, CSRF tokens."""

from __future__ import annotations

import base64
import hashlib

import pytest

from auth.tokens import (
    SessionLifetime,
    SessionStatus,
    check_csrf,
    csrf_token_for,
    hash_token,
    new_session_token,
)

SECRET = b"k" * 32


def test_session_token_is_256_bit_urlsafe() -> None:
    token = new_session_token()
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert len(raw) == 32
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len({new_session_token() for _ in range(100)}) == 100


def test_hash_token() -> None:
    assert hash_token("abc") == hashlib.sha256(b"abc").hexdigest()
    assert hash_token("abc") != hash_token("abd")


LIFE = SessionLifetime(idle_timeout=100.0, absolute_lifetime=1000.0)


@pytest.mark.parametrize(
    ("created", "seen", "revoked", "now", "status"),
    [
        (0, 0, None, 0, SessionStatus.VALID),
        (0, 0, None, 99.999, SessionStatus.VALID),
        (0, 0, None, 100, SessionStatus.IDLE_EXPIRED),  # boundary: expired at the deadline
        (0, 950, None, 999, SessionStatus.VALID),
        (0, 950, None, 1000, SessionStatus.EXPIRED),  # absolute beats recent activity
        (0, 800, None, 1000, SessionStatus.EXPIRED),  # both over: absolute reported
        (0, 10, 5.0, 11, SessionStatus.REVOKED),
        (0, 10, 0.0, 11, SessionStatus.REVOKED),  # revoked_at == 0 is still revoked
        (0, 0, 1.0, 5000, SessionStatus.REVOKED),  # revocation wins over expiry
    ],
)
def test_lifetime_check(
    created: float, seen: float, revoked: float | None, now: float, status: SessionStatus
) -> None:
    assert LIFE.check(created, seen, revoked, now) is status


def test_defaults_and_expires_at() -> None:
    default = SessionLifetime()
    assert (default.idle_timeout, default.absolute_lifetime) == (1800.0, 43200.0)
    assert LIFE.expires_at(0, 0) == 100
    assert LIFE.expires_at(0, 950) == 1000
    assert LIFE.expires_at(0, 500) == 600
    with pytest.raises(ValueError):
        SessionLifetime(idle_timeout=0)


def test_csrf_round_trip() -> None:
    session = new_session_token()
    token = csrf_token_for(session, SECRET)
    assert check_csrf(session, token, SECRET)
    assert token == csrf_token_for(session, SECRET)  # deterministic, nothing to store


def test_csrf_rejects() -> None:
    session, other = new_session_token(), new_session_token()
    token = csrf_token_for(session, SECRET)
    assert not check_csrf(other, token, SECRET)  # bound to the session
    assert not check_csrf(session, token, b"j" * 32)  # bound to the server key
    assert not check_csrf(session, token[:-1], SECRET)
    assert not check_csrf(session, "", SECRET)
    assert not check_csrf(session, None, SECRET)
    assert not check_csrf(session, "é" * 43, SECRET)  # non-ASCII never raises
    assert not check_csrf("", csrf_token_for("", SECRET), SECRET)


def test_csrf_secret_length() -> None:
    with pytest.raises(ValueError):
        csrf_token_for("s", b"short")
