"""Finding a customer's chats without storing who they are in plain text (issue 15.3).

Chats keep the customer's identity and form data sealed under the chat's own data key,
so "every chat of ann@example.com" cannot be answered by a query over them. When a chat is
opened, its customer identifiers (the verified ``sub``, and the e-mail of the verified
identity or of the form) are stored as *customer keys*: HMAC-SHA256 under a secret derived
from the master key (:data:`gateway.derived_keys.CUSTOMER_KEY_LABEL`) over the tenant,
the kind and the normalised value. Without the master key the column is useless to a
reader of the database; with it, the gateway finds the chats to erase for a customer.

Lookups compute the key under every master key of the ring, so chats opened before a
master-key rotation are found as long as their old master key is in the ring. After it is
retired, they are found by their chat token only (limitation, see README).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from crypto.envelope import Keyring
from gateway.derived_keys import CUSTOMER_KEY_LABEL, derived_secrets

CustomerKind = Literal["sub", "email"]


def normalize(kind: CustomerKind, value: str) -> str:
    """The form in which an identifier is hashed: e-mail addresses compare without case
    or surrounding spaces; a ``sub`` is the company's own id and compared exactly (but
    trimmed)."""
    value = value.strip()
    return value.casefold() if kind == "email" else value


class CustomerKeys:
    """Computes the customer keys of identifiers (see the module docstring)."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def _mac(self, secret: bytes, tenant_id: str, kind: CustomerKind, value: str) -> str:
        message = f"{tenant_id}\x00{kind}\x00{normalize(kind, value)}".encode()
        return hmac.new(secret, message, hashlib.sha256).hexdigest()

    def current(self, tenant_id: str, kind: CustomerKind, value: str) -> str:
        """The key stored for a new chat (current master key)."""
        secret = derived_secrets(self._keyring, CUSTOMER_KEY_LABEL)[0]
        return self._mac(secret, tenant_id, kind, value)

    def candidates(self, tenant_id: str, kind: CustomerKind, value: str) -> list[str]:
        """Every key the identifier may have been stored under (one per master key)."""
        return [
            self._mac(secret, tenant_id, kind, value)
            for secret in derived_secrets(self._keyring, CUSTOMER_KEY_LABEL)
        ]
