"""Secrets derived from the current master key, recomputed on use (never cached).

Why a derivation and not a stored secret: every node that shares the keyring agrees on
the value without extra files, and a master-key rotation changes it at once (a value
cached at first use would survive the rotation, which is what issue 11.13 found for the
CSRF secret). HMAC-SHA256 over a fixed label is a standard PRF-based KDF step (the
"expand" of HKDF with one block); the labels keep the derived secrets independent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

from crypto.envelope import Keyring, MasterKey
from gateway.clientip import rate_limit_key

CSRF_LABEL = "cipherdesk/csrf-secret/v1"
"""Label of the CSRF secret (kept from the previous derivation: tokens stay valid)."""

LOGIN_THROTTLE_LABEL = "cipherdesk/login-throttle-key/v1"
"""Label of the key that hashes login throttle keys (e-mail, address)."""


RATE_LIMIT_ADDRESS_LABEL = "cipherdesk/rate-limit-address/v1"
"""Label of the key that hashes client addresses in rate-limit keys (kept in Redis)."""


CUSTOMER_KEY_LABEL = "cipherdesk/customer-key/v1"
"""Label of the key that hashes customer identifiers (sub, e-mail) into lookup keys."""


def derived_secret(keyring: Keyring, label: str) -> bytes:
    """32 bytes bound to ``label`` and the keyring's *current* master key (on the message
    path: only the current key is derived, not every key of the ring)."""
    return _derive(keyring.keys[0], label)


def derived_secrets(keyring: Keyring, label: str) -> list[bytes]:
    """The secret of ``label`` under every master key of the ring, current first: a value
    stored keyed under an older key is still found while that key is in the ring."""
    return [_derive(key, label) for key in keyring.keys]


def _derive(key: MasterKey, label: str) -> bytes:
    return hmac.digest(base64.b64decode(key.to_b64()), label.encode("utf-8"), "sha256")


def address_hasher(keyring: Keyring) -> Callable[[str], str]:
    """Rate-limit key of a client address: its /64 for IPv6 (``rate_limit_key``), as a
    keyed hash. The limiter's keys live in Redis on a multi-node installation; an address
    is personal data and has no business there in plain text. Every node derives the same
    key from the shared master key; a master-key rotation starts fresh budgets."""

    def key(ip: str) -> str:
        secret = derived_secret(keyring, RATE_LIMIT_ADDRESS_LABEL)
        return hmac.new(secret, rate_limit_key(ip).encode(), hashlib.sha256).hexdigest()[:32]

    return key
