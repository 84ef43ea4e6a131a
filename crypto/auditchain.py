"""Tamper evidence for the audit log: per-tenant MAC chains and signed checkpoints.

Why a chain: SQL triggers make the audit table append-only for the application, but a
database administrator can drop them and edit freely. Each row therefore carries
``mac = HMAC-SHA256(chain_key, prev_mac ‖ canonical(row))``: editing a row breaks its
MAC, deleting or inserting one breaks the sequence of ``seq`` numbers or the next row's
MAC, and nobody without the chain key can repair the chain afterwards.

Which key, and why it survives master-key rotation: the chain key is *derived* from an
installation-wide random **audit root** (:func:`new_audit_root`), one chain key per tenant
(:func:`derive_chain_key`). The root is stored wrapped by the master keyring like a chat
data key; rotating the master key only re-wraps the root, so the key that verifies a
row never changes with rotation. (The alternative, deriving from the master key itself
and recording its id per row, would make old rows unverifiable once the old master key
is retired.) Each row records the *audit root's* id, so the root itself can be replaced
later (suspected compromise) without orphaning older rows.

Checkpoints (:func:`checkpoint_transcript`) are signed with the gateway's Ed25519 key
(:meth:`crypto.identity.GatewayIdentity.sign_checkpoint`): they pin ``(chain, seq, mac)``
for anyone holding only the public key, and they anchor the chain when retention purges
old rows. Pure functions only (no I/O), like the rest of :mod:`crypto`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any, Final

import nacl.exceptions
import nacl.signing

__all__ = [
    "CHECKPOINT_CONTEXT",
    "GENESIS_MAC",
    "MAC_SIZE",
    "canonical_row",
    "checkpoint_transcript",
    "derive_chain_key",
    "new_audit_root",
    "root_key_id",
    "row_mac",
    "verify_checkpoint",
    "verify_row",
]

ROOT_SIZE: Final = 32
MAC_SIZE: Final = 32
GENESIS_MAC: Final = bytes(MAC_SIZE)
"""The ``prev_mac`` of a chain's first row."""
CHECKPOINT_CONTEXT: Final = "cipherdesk/v1/audit-checkpoint"
"""Domain-separation prefix (distinct from ``cipherdesk/v1/hello``): a checkpoint
signature can never be replayed as a hello signature or the reverse."""
_CHAIN_INFO: Final = b"cipherdesk/v1/audit-chain-key|"
_FORMAT: Final = 1


def new_audit_root() -> bytes:
    """A fresh random audit root secret (stored only wrapped by the master keyring)."""
    return secrets.token_bytes(ROOT_SIZE)


def root_key_id(root: bytes) -> str:
    """Public 16-hex label of a root (BLAKE2b-64 of a one-way derivation, not the key)."""
    _check(root, ROOT_SIZE, "audit root")
    tag = hmac.new(root, b"cipherdesk/v1/audit-root-id", hashlib.sha256).digest()
    return hashlib.blake2b(tag, digest_size=8).hexdigest()


def derive_chain_key(root: bytes, chain: str) -> bytes:
    """The MAC key of one chain (``chain`` = tenant id, ``""`` for installation events).

    HKDF-Expand (RFC 5869) with one output block: the root is already uniformly random,
    so the Extract step adds nothing; the info string binds the key to its chain, so a
    tenant's rows cannot be moved into another tenant's chain.
    """
    _check(root, ROOT_SIZE, "audit root")
    return hmac.new(root, _CHAIN_INFO + chain.encode("utf-8") + b"\x01", hashlib.sha256).digest()


def canonical_row(
    *,
    chain: str,
    seq: int,
    key_id: str,
    ts: float,
    action: str,
    tenant_id: str | None,
    actor: str | None,
    target: str | None,
    ip: str | None,
    details: dict[str, Any],
) -> bytes:
    """The exact bytes a row's MAC covers: a JSON array, keys sorted, floats by ``repr``.

    Everything a reader relies on is covered; the database's own row id is not (it is
    assigned by the engine after the MAC is computed), ``seq`` is its chained stand-in.
    """
    value = [
        _FORMAT,
        chain,
        int(seq),
        key_id,
        float(ts),
        action,
        tenant_id,
        actor,
        target,
        ip,
        details,
    ]
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def row_mac(chain_key: bytes, prev_mac: bytes, canonical: bytes) -> bytes:
    """``HMAC-SHA256(chain_key, prev_mac ‖ canonical)``."""
    _check(chain_key, 32, "chain key")
    _check(prev_mac, MAC_SIZE, "previous MAC")
    return hmac.new(chain_key, prev_mac + canonical, hashlib.sha256).digest()


def verify_row(chain_key: bytes, prev_mac: bytes, canonical: bytes, mac: bytes) -> bool:
    """Constant-time check of one row's MAC; False for a malformed MAC."""
    if len(mac) != MAC_SIZE or len(prev_mac) != MAC_SIZE:
        return False
    return hmac.compare_digest(row_mac(chain_key, prev_mac, canonical), mac)


def checkpoint_transcript(chain: str, seq: int, mac: bytes, ts: float) -> bytes:
    """The bytes a checkpoint signature covers:
    ``cipherdesk/v1/audit-checkpoint|<chain hex>|<seq>|<mac hex>|<ts repr>``.

    The chain name is hex-encoded so that no tenant id can contain the separator.
    """
    _check(mac, MAC_SIZE, "checkpoint MAC")
    return "|".join(
        (CHECKPOINT_CONTEXT, chain.encode("utf-8").hex(), str(int(seq)), mac.hex(), repr(float(ts)))
    ).encode("ascii")


def verify_checkpoint(verify_key: bytes, transcript: bytes, signature: bytes) -> bool:
    """Check an Ed25519 checkpoint signature; False for anything invalid, never raises."""
    if not transcript.startswith(CHECKPOINT_CONTEXT.encode() + b"|"):
        return False
    try:
        nacl.signing.VerifyKey(verify_key).verify(transcript, signature)
    except (nacl.exceptions.CryptoError, TypeError, ValueError):
        return False
    return True


def _check(value: bytes, size: int, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise ValueError(f"{what} must be {size} bytes")
