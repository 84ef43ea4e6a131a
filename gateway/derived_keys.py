"""Secrets derived from the current master key, looked up on every use.

Why a derivation and not a stored secret: every node that shares the keyring agrees on
the value without extra files, and a master-key rotation changes it at once (a value
cached at first use would survive the rotation, which is what issue 11.13 found for the
CSRF secret). HMAC-SHA256 over a fixed label is a standard PRF-based KDF step (the
"expand" of HKDF with one block); the labels keep the derived secrets independent.

Every lookup starts from the keyring's *current* key object; the key remembers its own
derivations (:meth:`crypto.envelope.MasterKey.derive`) and :class:`PreparedHmacs` its
prepared HMACs only while that key is current, so a rotation takes effect on the next use.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from crypto.envelope import Keyring, MasterKey
from gateway.clientip import rate_limit_key

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

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
    return keyring.keys[0].derive(label)


def derived_secrets(keyring: Keyring, label: str) -> list[bytes]:
    """The secret of ``label`` under every master key of the ring, current first: a value
    stored keyed under an older key is still found while that key is in the ring."""
    return [key.derive(label) for key in keyring.keys]


class UnderCurrentKey(Generic[K, V]):
    """Values worked out under the keyring's current master key: all forgotten as soon as
    the current key is another one, and all at once when ``bound`` are held (a bound, not
    an eviction order). What :class:`PreparedHmacs` and :func:`address_hasher` keep."""

    def __init__(self, keyring: Keyring, bound: int) -> None:
        self._keyring = keyring
        self._bound = bound
        self._key: MasterKey | None = None
        self._values: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        """The value kept for ``key`` under the current master key, if any."""
        current = self._keyring.keys[0]
        if current is not self._key:
            self._values.clear()
            self._key = current
        return self._values.get(key)

    def put(self, key: K, value: V) -> V:
        """Keep ``value`` (worked out under the key :meth:`get` just checked)."""
        if len(self._values) >= self._bound:
            self._values.clear()
        self._values[key] = value
        return value


class PreparedHmacs:
    """HMAC-SHA256 under the secret of ``label`` (optionally narrowed to a context, e.g. a
    tenant: ``HMAC(secret, context)``), prepared once per context and current master key.

    Why: starting an HMAC (key schedule, OpenSSL's digest lookup) costs more than hashing
    a short value, and the relay hashes several values per message (a client address, a
    message's search tokens). A prepared object is copied instead (about 1 µs against
    2.5). Prepared objects are dropped as soon as the keyring's current key is another
    one, and all of them when ``max_contexts`` is reached (a bound, not an eviction order).
    """

    def __init__(self, keyring: Keyring, label: str, *, max_contexts: int = 4096) -> None:
        self._keyring = keyring
        self._label = label
        self._prepared: UnderCurrentKey[str | None, hmac.HMAC] = UnderCurrentKey(
            keyring, max_contexts
        )

    def new(self, context: str | None = None) -> hmac.HMAC:
        """A fresh HMAC to ``update`` and ``digest``; the key is the label's secret, or
        ``HMAC(secret, context)`` when a context is given."""
        prepared = self._prepared.get(context)
        if prepared is None:
            secret = self._keyring.keys[0].derive(self._label)
            if context is not None:
                secret = hmac.digest(secret, context.encode("utf-8"), "sha256")
            prepared = self._prepared.put(context, hmac.new(secret, digestmod=hashlib.sha256))
        return prepared.copy()


def address_hasher(keyring: Keyring) -> Callable[[str], str]:
    """Rate-limit key of a client address: its /64 for IPv6 (``rate_limit_key``), as a
    keyed hash. The limiter's keys live in Redis on a multi-node installation; an address
    is personal data and has no business there in plain text. Every node derives the same
    key from the shared master key; a master-key rotation starts fresh budgets."""
    hmacs = PreparedHmacs(keyring, RATE_LIMIT_ADDRESS_LABEL)
    # The relay asks for the key of the same few addresses on every message: remembered
    # per current master key (a rotation starts afresh).
    remembered: UnderCurrentKey[str, str] = UnderCurrentKey(keyring, MAX_REMEMBERED_ADDRESSES)

    def key(ip: str) -> str:
        found = remembered.get(ip)
        if found is None:
            mac = hmacs.new()
            mac.update(rate_limit_key(ip).encode())
            found = remembered.put(ip, mac.hexdigest()[:32])
        return found

    return key


MAX_REMEMBERED_ADDRESSES = 65_536
"""Client addresses whose rate-limit key ``address_hasher`` keeps (about 10 MiB at most)."""
