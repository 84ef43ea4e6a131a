"""Fuzz target: the widget identity token parser (``auth/identity.py``).

Half of the inputs are taken as the token text itself; the other half become the
*payload* of a token correctly signed with the tenant secret, so the fuzzer gets past
the signature into claim parsing (types, lengths, ``exp``/``iat`` arithmetic).
Contract: a :class:`VerifiedIdentity` or :class:`IdentityError` with a documented code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from auth.identity import ERROR_CODES, IdentityError, IdentityVerifier

SECRET = "fuzz-secret-0123456789abcdef0123456789"
NOW = 1_700_000_000.0
_VERIFIER = IdentityVerifier([SECRET], clock=lambda: NOW)
_HEADER = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()


def _signed(payload: bytes) -> str:
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    signing_input = f"{_HEADER}.{body}".encode()
    mac = hmac.new(SECRET.encode(), signing_input, hashlib.sha256).digest()
    return f"{_HEADER}.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def test_one_input(data: bytes) -> None:
    if not data:
        return
    token = _signed(data[1:]) if data[0] & 1 else data[1:].decode("utf-8", "replace")
    try:
        identity = _VERIFIER.verify(token)
    except IdentityError as exc:
        assert exc.code in ERROR_CODES
        return
    assert identity.user_id.strip() and identity.nonce.strip()
    assert identity.expires_at >= NOW - 30
