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

from crypto.envelope import Keyring

CSRF_LABEL = "cipherdesk/csrf-secret/v1"
"""Label of the CSRF secret (kept from the previous derivation: tokens stay valid)."""

LOGIN_THROTTLE_LABEL = "cipherdesk/login-throttle-key/v1"
"""Label of the key that hashes login throttle keys (e-mail, address)."""


def derived_secret(keyring: Keyring, label: str) -> bytes:
    """32 bytes bound to ``label`` and the keyring's *current* master key."""
    master = base64.b64decode(keyring.current.to_b64())
    return hmac.new(master, label.encode("utf-8"), hashlib.sha256).digest()
