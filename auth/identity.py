"""Widget identity verification: a company's backend vouches for who the customer is.

The company signs a compact JWT (HS256) with a secret shared with cipherdesk and
puts it on the widget; the gateway verifies it and shows the agent a "verified"
badge, so agents can trust the customer's identity before discussing an account.

Token: ``base64url(header) . base64url(payload) . base64url(HMAC-SHA256)`` without
padding; header ``{"alg": "HS256", "typ": "JWT"}``; claims ``sub`` (user id),
``exp`` (int UNIX seconds) and ``nonce`` are required, ``name``, ``email`` and
``iat`` optional.

Why hand-written rather than a JWT library: it is about 30 lines of hmac + json,
it needs no extra dependency, and it has no algorithm-confusion surface at all —
exactly one algorithm exists here, so ``none``, ``HS512``, RSA/HMAC key confusion
and ``jwk``/``jku`` header tricks are refused by construction, not by configuration.
The parser is strict: bounded length, canonical base64url, JSON objects without
duplicate keys or NaN, and the signature is checked before the claims are parsed.

Replay: the verifier returns ``nonce`` and ``expires_at``; the caller MUST record
the nonce until it expires (``store.remember_nonce``) and refuse a nonce seen
before. Without that, a captured token could be replayed until ``exp``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from auth.clock import Clock

__all__ = [
    "ERROR_CODES",
    "MAX_TOKEN_LENGTH",
    "MIN_SECRET_BYTES",
    "IdentityError",
    "IdentityVerifier",
    "VerifiedIdentity",
    "sign_identity",
]

MAX_TOKEN_LENGTH = 4096
"""Longer tokens are refused before any decoding."""

MIN_SECRET_BYTES = 32
"""Shared secrets shorter than this are refused (HMAC keys need real entropy)."""

ERROR_CODES = frozenset(
    {"malformed", "bad_alg", "bad_signature", "expired", "lifetime_too_long", "missing_claim"}
)

_MAX_CLAIM_LENGTH = {"sub": 256, "nonce": 256, "name": 256, "email": 320}
_B64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_MESSAGES = {
    "malformed": "identity token is malformed",
    "bad_alg": "identity token algorithm is not HS256",
    "bad_signature": "identity token signature does not verify",
    "expired": "identity token has expired",
    "lifetime_too_long": "identity token lives longer than allowed",
    "missing_claim": "identity token lacks a required claim",
}


class IdentityError(Exception):
    """Verification failed; ``code`` is one of :data:`ERROR_CODES`.

    The message is generic and safe to log; it never contains token contents.
    """

    def __init__(self, code: str) -> None:
        super().__init__(_MESSAGES[code])
        self.code = code


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """The claims of a token that verified. Check ``nonce`` for replay before use."""

    user_id: str
    name: str | None
    email: str | None
    nonce: str
    expires_at: float


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(part: str) -> bytes:
    if not _B64URL.match(part) or len(part) % 4 == 1:
        raise IdentityError("malformed")
    try:
        data = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise IdentityError("malformed") from None
    if _b64encode(data) != part:  # non-canonical trailing bits: one token, one spelling
        raise IdentityError("malformed")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError("duplicate key")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError included
        raise IdentityError("malformed") from None
    if not isinstance(value, dict):
        raise IdentityError("malformed")
    return value


def _key(secret: str) -> bytes:
    if not isinstance(secret, str):
        raise TypeError("identity secrets are str")
    key = secret.encode("utf-8")
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"identity secrets must be at least {MIN_SECRET_BYTES} bytes")
    return key


def _mac(key: bytes, signing_input: bytes) -> bytes:
    return hmac.new(key, signing_input, hashlib.sha256).digest()


def sign_identity(secret: str, claims: Mapping[str, Any]) -> str:
    """Sign ``claims`` as an HS256 compact JWT (what a company's backend does).

    Provided for tests and as the reference for companies' integrations; any JWT
    library producing HS256 tokens interoperates.
    """
    header = _b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64encode(json.dumps(dict(claims), separators=(",", ":")).encode("utf-8"))
    signing_input = f"{header}.{payload}".encode("ascii")
    return f"{header}.{payload}.{_b64encode(_mac(_key(secret), signing_input))}"


class IdentityVerifier:
    """Verifies widget identity tokens for one tenant.

    ``secrets`` are the tenant's currently valid shared secrets, newest first;
    during a rotation both the new and the old one are listed, and a token signed
    by either verifies. ``max_lifetime`` bounds how far in the future ``exp`` may
    be (long-lived tokens are replayable for long); ``leeway`` absorbs clock skew
    between the company's servers and ours.
    """

    def __init__(
        self,
        secrets: Sequence[str],
        clock: Clock = time.time,
        max_lifetime: float = 3600.0,
        leeway: float = 30.0,
    ) -> None:
        if isinstance(secrets, str) or not secrets:
            raise ValueError("IdentityVerifier needs a non-empty sequence of secrets")
        self._keys = tuple(_key(s) for s in secrets)
        self._clock = clock
        self._max_lifetime = float(max_lifetime)
        self._leeway = float(leeway)

    def verify(self, token: str) -> VerifiedIdentity:
        """Return the verified identity or raise :class:`IdentityError`.

        Never raises anything else, whatever ``token`` is. The caller MUST then
        check and remember ``nonce`` (see the module docstring).
        """
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise IdentityError("malformed")
        parts = token.split(".")
        if len(parts) != 3:
            raise IdentityError("malformed")
        header_b64, payload_b64, signature_b64 = parts
        header = _json_object(_b64decode(header_b64))
        if header.get("alg") != "HS256":
            raise IdentityError("bad_alg")
        if "crit" in header or header.get("typ", "JWT") not in ("JWT", "jwt"):
            raise IdentityError("malformed")
        signature = _b64decode(signature_b64)
        signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
        matched = False
        for key in self._keys:  # always try every key: timing does not reveal which
            matched |= hmac.compare_digest(_mac(key, signing_input), signature)
        if not matched:
            raise IdentityError("bad_signature")
        return self._claims(_json_object(_b64decode(payload_b64)))

    def _claims(self, claims: dict[str, Any]) -> VerifiedIdentity:
        for required in ("sub", "exp", "nonce"):
            if required not in claims:
                raise IdentityError("missing_claim")
        user_id = _text_claim(claims, "sub")
        nonce = _text_claim(claims, "nonce")
        name = _text_claim(claims, "name") if "name" in claims else None
        email = _text_claim(claims, "email") if "email" in claims else None
        exp = _int_claim(claims, "exp")
        now = self._clock()
        if now > exp + self._leeway:
            raise IdentityError("expired")
        if exp - now > self._max_lifetime + self._leeway:
            raise IdentityError("lifetime_too_long")
        if "iat" in claims:
            iat = _int_claim(claims, "iat")
            if iat > now + self._leeway:
                raise IdentityError("malformed")  # issued in the future
            if exp - iat > self._max_lifetime:
                raise IdentityError("lifetime_too_long")
        return VerifiedIdentity(
            user_id=user_id, name=name, email=email, nonce=nonce, expires_at=float(exp)
        )


def _text_claim(claims: Mapping[str, Any], name: str) -> str:
    value = claims[name]
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_CLAIM_LENGTH[name]:
        raise IdentityError("malformed")
    return value


def _int_claim(claims: Mapping[str, Any], name: str) -> int:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise IdentityError("malformed")
    return value
