"""One-time recovery codes: the way back in when an agent loses their TOTP device.

Codes are 12 characters of Crockford's base32 alphabet (no ``i``, ``l``, ``o``,
``u``), shown as ``xxxx-xxxx-xxxx``: 60 random bits each, easy to read aloud and
to type. Input is forgiving in the Crockford way: case, spaces and dashes are
ignored, and ``o`` reads as ``0``, ``i``/``l`` as ``1``.

Only hashes are stored. Unlike passwords, these codes are random with 60 bits of
entropy, so an attacker holding the hashes cannot guess them by dictionary, and
2**60 SHA-256 evaluations per code is out of reach: a slow, salted hash would add
CPU cost to every recovery attempt and protect nothing more. A plain SHA-256 also
lets the gateway look a code up by its hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Iterable

__all__ = [
    "ALPHABET",
    "InvalidRecoveryCode",
    "generate_recovery_codes",
    "hash_recovery_code",
    "match_recovery_code",
    "normalize_recovery_code",
]

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
"""Crockford base32, lowercase: 32 symbols, 5 bits each."""

GROUPS = 3
GROUP_LENGTH = 4
CODE_LENGTH = GROUPS * GROUP_LENGTH

_READ_AS = str.maketrans({"o": "0", "i": "1", "l": "1", "-": None, " ": None})


class InvalidRecoveryCode(ValueError):
    """The input cannot be a recovery code (wrong length or characters)."""


def generate_recovery_codes(n: int = 10) -> list[str]:
    """Return ``n`` distinct fresh codes to show the agent once.

    Store :func:`hash_recovery_code` of each and forget the codes themselves.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    codes: list[str] = []
    while len(codes) < n:
        raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))
        code = _format(raw)
        if code not in codes:
            codes.append(code)
    return codes


def _format(raw: str) -> str:
    return "-".join(raw[i : i + GROUP_LENGTH] for i in range(0, CODE_LENGTH, GROUP_LENGTH))


def normalize_recovery_code(raw: str) -> str:
    """Return the canonical ``xxxx-xxxx-xxxx`` form of what the user typed.

    Raises :class:`InvalidRecoveryCode` if it cannot be a code at all.
    """
    if not isinstance(raw, str) or len(raw) > 64:
        raise InvalidRecoveryCode("That is not a recovery code.")
    text = unicodedata.normalize("NFKC", raw).strip().casefold().translate(_READ_AS)
    if len(text) != CODE_LENGTH or any(ch not in ALPHABET for ch in text):
        raise InvalidRecoveryCode("That is not a recovery code.")
    return _format(text)


def hash_recovery_code(code: str) -> str:
    """SHA-256 hex of the normalised code (see the module docstring for why not argon2)."""
    return hashlib.sha256(normalize_recovery_code(code).encode("ascii")).hexdigest()


def match_recovery_code(raw: str, stored_hashes: Iterable[str]) -> str | None:
    """Return the stored hash that ``raw`` matches, or None.

    Compares against every stored hash in constant time. The caller must then
    delete (or mark used) the returned hash: each code works once.
    """
    try:
        candidate = hash_recovery_code(raw)
    except InvalidRecoveryCode:
        return None
    found: str | None = None
    for stored in stored_hashes:
        if hmac.compare_digest(candidate.encode(), str(stored).encode()) and found is None:
            found = stored
    return found
