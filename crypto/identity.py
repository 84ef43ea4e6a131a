"""The gateway's long-term Ed25519 identity.

The identity signs every ``hello`` so that a widget pinning the gateway's verify
key notices a middlebox that swaps the per-connection X25519 key. Its seed lives in an
owner-only file that :mod:`gateway.keyfiles` reads and creates; this module does no I/O.
"""

from __future__ import annotations

import hashlib

import nacl.exceptions
import nacl.signing

from crypto.auditchain import checkpoint_transcript
from crypto.encoding import b64decode, b64encode

__all__ = [
    "HELLO_CONTEXT",
    "REPORT_CONTEXT",
    "SEED_SIZE",
    "GatewayIdentity",
    "hello_transcript",
    "report_transcript",
    "verify_hello",
    "verify_report",
]

HELLO_CONTEXT = "cipherdesk/v1/hello"
"""Domain-separation prefix: a hello signature can never be replayed as anything else."""

REPORT_CONTEXT = "cipherdesk/v1/report"
"""Domain-separation prefix of destruction reports: a report signature is never a valid
hello or checkpoint signature, and the reverse."""

SEED_SIZE = 32
_SIGNATURE_SIZE = 64
_PUBLIC_KEY_SIZE = 32


# --- the hello signature -----------------------------------------------------------


def hello_transcript(sid: str, server_pk_b64: str) -> bytes:
    """The exact bytes signed in ``hello``: ``cipherdesk/v1/hello|<sid>|<server_pk>``.

    Binding the session id stops a captured hello from being replayed onto
    another session; binding the key is the point of the signature.
    """
    return f"{HELLO_CONTEXT}|{sid}|{server_pk_b64}".encode()


def verify_hello(verify_key_b64: str, sid: str, server_pk_b64: str, sig_b64: str) -> bool:
    """Check a hello signature; ``False`` for any invalid or malformed input, never raises.

    Used by SDKs, bots and tests that play the client; the browser widget does the
    same with tweetnacl.
    """
    try:
        key_bytes = b64decode(verify_key_b64, expected_len=_PUBLIC_KEY_SIZE)
        verify_key = nacl.signing.VerifyKey(key_bytes)
        signature = b64decode(sig_b64, expected_len=_SIGNATURE_SIZE)
        verify_key.verify(hello_transcript(sid, server_pk_b64), signature)
    except (nacl.exceptions.CryptoError, TypeError, ValueError):  # ValueError: bad b64/UTF-8
        return False
    return True


# --- destruction reports ---------------------------------------------------------


def report_transcript(body: bytes) -> bytes:
    """The exact bytes signed for a destruction report: ``cipherdesk/v1/report|`` + body.

    ``body`` is the report's canonical JSON (the caller fixes the encoding); the prefix
    keeps report signatures apart from every other signature of the gateway's key.
    """
    return REPORT_CONTEXT.encode() + b"|" + body


def verify_report(verify_key_b64: str, body: bytes, sig_b64: str) -> bool:
    """Check a report signature offline; ``False`` for any invalid input, never raises."""
    try:
        key_bytes = b64decode(verify_key_b64, expected_len=_PUBLIC_KEY_SIZE)
        signature = b64decode(sig_b64, expected_len=_SIGNATURE_SIZE)
        nacl.signing.VerifyKey(key_bytes).verify(report_transcript(body), signature)
    except (nacl.exceptions.CryptoError, TypeError, ValueError):
        return False
    return True


# --- the identity ------------------------------------------------------------------


class GatewayIdentity:
    """The gateway's long-term Ed25519 signing key.

    Shared by every node of a deployment (same file or secret), so that widgets
    can pin one verify key published at ``/.well-known/cipherdesk.json``.
    """

    __slots__ = ("_signing_key",)

    def __init__(self, signing_key: nacl.signing.SigningKey) -> None:
        """Wrap an existing key; use :meth:`generate` or :meth:`load_or_create`."""
        self._signing_key = signing_key

    @classmethod
    def generate(cls) -> GatewayIdentity:
        """A new random identity (tests, or before persisting it)."""
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> GatewayIdentity:
        """Rebuild an identity from its 32-byte seed (RFC 8032 private key)."""
        if len(seed) != SEED_SIZE:
            raise ValueError(f"seed must be {SEED_SIZE} bytes")
        return cls(nacl.signing.SigningKey(seed))

    @property
    def verify_key_bytes(self) -> bytes:
        """The 32-byte Ed25519 public key."""
        return bytes(self._signing_key.verify_key)

    @property
    def verify_key_b64(self) -> str:
        """The public key as published for pinning (``data-gateway-key``)."""
        return b64encode(self.verify_key_bytes)

    @property
    def key_id(self) -> str:
        """Short fingerprint for logs and admin UI: 16 hex of BLAKE2b-64(verify key).

        Not a security boundary (pin the full key); just a human-checkable label.
        """
        return hashlib.blake2b(self.verify_key_bytes, digest_size=8).hexdigest()

    def sign_hello(self, sid: str, server_pk_b64: str) -> str:
        """Sign the hello transcript; returns the base64 64-byte detached signature.

        ``server_pk_b64`` must be canonical base64 of a 32-byte key: that keeps the
        ``|``-joined transcript unambiguous whatever the session id contains.
        """
        b64decode(server_pk_b64, expected_len=_PUBLIC_KEY_SIZE)
        signed = self._signing_key.sign(hello_transcript(sid, server_pk_b64))
        return b64encode(signed.signature)

    def sign_checkpoint(self, chain: str, seq: int, mac: bytes, ts: float) -> bytes:
        """Sign an audit checkpoint (:func:`crypto.auditchain.checkpoint_transcript`);
        returns the raw 64-byte signature. The transcript's own prefix keeps it apart
        from hello signatures."""
        return self._signing_key.sign(checkpoint_transcript(chain, seq, mac, ts)).signature

    def sign_report(self, body: bytes) -> str:
        """Sign a destruction report's canonical bytes (:func:`report_transcript`);
        returns the base64 64-byte detached signature, checked by :func:`verify_report`."""
        return b64encode(self._signing_key.sign(report_transcript(body)).signature)

    def __repr__(self) -> str:
        return f"GatewayIdentity(key_id={self.key_id!r})"
