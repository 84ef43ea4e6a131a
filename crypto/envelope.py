"""Encryption at rest: per-session data keys, wrapped by rotating master keys.

Envelope encryption keeps erasure cheap and certain. Each chat session (or
customer) gets its own random *data key*; transcript rows are sealed under it
with :func:`seal_record`. The data key is stored only *wrapped* by a master key
(:meth:`Keyring.wrap`). Deleting the wrapped data key makes every row sealed
under it unreadable, in every backup too: crypto-shredding.

Master keys come from ``CIPHERDESK_MASTER_KEY`` or an owner-only key file. They
rotate: new wraps use the newest key, older keys keep unwrapping until a rewrap
job (:meth:`Keyring.needs_rewrap`, :meth:`Keyring.rewrap`) has moved everything.

All AEAD is XChaCha20-Poly1305-IETF with random 192-bit nonces (safe to pick at
random for any realistic number of messages under one key). The associated data
binds each ciphertext to where it belongs, e.g. ``b"msg|<chat>|<seq>"``, so a
database writer cannot swap rows between chats or positions undetected.

Formats (byte strings, stored as-is in BLOB/BYTEA columns)::

    record:          0x01 ‖ nonce(24) ‖ ciphertext+tag
    wrapped/sealed:  0x01 ‖ master key id(4) ‖ nonce(24) ‖ ciphertext+tag
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Final

import nacl.bindings
import nacl.exceptions
import nacl.utils

from crypto.encoding import EncodingError, b64decode, b64encode

__all__ = [
    "DATA_KEY_SIZE",
    "ENV_VAR",
    "EnvelopeError",
    "Keyring",
    "KeyringError",
    "MasterKey",
    "UnknownKeyError",
    "new_data_key",
    "open_record",
    "seal_record",
]

VERSION: Final = 0x01
DATA_KEY_SIZE: Final = 32
"""Size of data keys and master keys (XChaCha20-Poly1305 key size)."""
ENV_VAR: Final = "CIPHERDESK_MASTER_KEY"
"""Environment variable holding master keys: base64, comma-separated, newest first."""

_VERSION_BYTE: Final = bytes((VERSION,))
_NONCE_SIZE: Final = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
_TAG_SIZE: Final = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_ABYTES
_KEY_ID_SIZE: Final = 4
_WRAP_AAD: Final = b"cipherdesk/v1/datakey"
# Keyring.seal prefixes the caller's AAD so a sealed secret can never pass as a
# wrapped data key (or the reverse), whatever AAD a caller picks.
_SECRET_AAD_PREFIX: Final = b"cipherdesk/v1/secret|"


class EnvelopeError(Exception):
    """A blob cannot be opened: tampered, wrong key, wrong AAD, or unknown format."""


class UnknownKeyError(EnvelopeError):
    """The blob names a master key id that is not in the keyring (retired too early?)."""


class KeyringError(EnvelopeError):
    """The master key configuration (env value or key file) is invalid or unsafe."""


# --- AEAD core ---------------------------------------------------------------------


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != DATA_KEY_SIZE:
        raise EnvelopeError(f"key must be {DATA_KEY_SIZE} bytes")


def _encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """nonce ‖ ciphertext+tag under a fresh random nonce."""
    nonce = nacl.utils.random(_NONCE_SIZE)
    return nonce + nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, aad, nonce, key
    )


def _decrypt(key: bytes, body: bytes, aad: bytes) -> bytes:
    """Inverse of :func:`_encrypt`; every failure is an :class:`EnvelopeError`."""
    if len(body) < _NONCE_SIZE + _TAG_SIZE:
        raise EnvelopeError("blob too short")
    nonce, ciphertext = body[:_NONCE_SIZE], body[_NONCE_SIZE:]
    try:
        return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, aad, nonce, key)
    except nacl.exceptions.CryptoError:
        raise EnvelopeError("authentication failed (tampered, wrong key or wrong aad)") from None


def _check_version(blob: bytes) -> None:
    if not isinstance(blob, bytes) or not blob:
        raise EnvelopeError("empty blob")
    if blob[0] != VERSION:
        raise EnvelopeError(f"unsupported envelope version {blob[0]:#04x}")


# --- records under a data key ------------------------------------------------------


def new_data_key() -> bytes:
    """A fresh random data key for one session/customer; store it only wrapped."""
    return nacl.utils.random(DATA_KEY_SIZE)


def seal_record(data_key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Seal one stored row; ``aad`` must name the row (chat id, sequence, column)."""
    _check_key(data_key)
    return _VERSION_BYTE + _encrypt(data_key, plaintext, aad)


def open_record(data_key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Open a row sealed by :func:`seal_record` with the same ``aad``.

    :raises EnvelopeError: wrong key, wrong aad, tampering, truncation or bad version.
    """
    _check_key(data_key)
    _check_version(blob)
    return _decrypt(data_key, blob[1:], aad)


# --- master keys -------------------------------------------------------------------


class MasterKey:
    """One 32-byte master key and its public 4-byte id.

    The id is a personalised BLAKE2b of the key: stable across restarts and nodes
    without extra configuration, and it reveals nothing usable about the key.
    """

    __slots__ = ("_derived", "_key", "key_id", "key_id_bytes")

    def __init__(self, key: bytes) -> None:
        """Wrap raw key bytes; see :meth:`generate` and :meth:`from_b64`."""
        _check_key(key)
        self._key = key
        self._derived: dict[str, bytes] = {}
        self.key_id_bytes: bytes = hashlib.blake2b(
            key, digest_size=_KEY_ID_SIZE, person=b"cipherdesk-mkid"
        ).digest()
        self.key_id: str = self.key_id_bytes.hex()

    @classmethod
    def generate(cls) -> MasterKey:
        """A new random master key."""
        return cls(nacl.utils.random(DATA_KEY_SIZE))

    @classmethod
    def from_b64(cls, text: str) -> MasterKey:
        """Parse one base64 key as found in the env var or key file.

        :raises KeyringError: not canonical base64 of 32 bytes (the value is never echoed).
        """
        try:
            return cls(b64decode(text, expected_len=DATA_KEY_SIZE))
        except EncodingError as exc:
            raise KeyringError(f"not a base64 {DATA_KEY_SIZE}-byte key ({exc})") from None

    def to_b64(self) -> str:
        """Export for the key file or env var. The only way the key leaves this object."""
        return b64encode(self._key)

    def derive(self, label: str) -> bytes:
        """32 bytes bound to this key and ``label``: HMAC-SHA256(key, label), the "expand"
        step of HKDF with one block; distinct labels give independent secrets.

        Remembered per label on this object: a derivation is asked for on every relayed
        message (rate-limit and search keys), and a rotated-out key takes its derivations
        with it when it is dropped, so nothing outlives a rotation.
        """
        secret = self._derived.get(label)
        if secret is None:
            secret = hmac.digest(self._key, label.encode("utf-8"), "sha256")
            self._derived[label] = secret
        return secret

    def _seal(self, plaintext: bytes, aad: bytes) -> bytes:
        return _VERSION_BYTE + self.key_id_bytes + _encrypt(self._key, plaintext, aad)

    def _open(self, blob: bytes, aad: bytes) -> bytes:
        return _decrypt(self._key, blob[1 + _KEY_ID_SIZE :], aad)

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"


class Keyring:
    """The current master key plus older ones still needed to unwrap (newest first)."""

    __slots__ = ("_by_id", "_keys")

    def __init__(self, keys: Iterable[MasterKey]) -> None:
        """Build from keys, newest (current) first.

        :raises KeyringError: no keys, or two keys share an id.
        """
        self._keys: tuple[MasterKey, ...] = tuple(keys)
        if not self._keys:
            raise KeyringError("a keyring needs at least one master key")
        self._by_id: dict[bytes, MasterKey] = {}
        for key in self._keys:
            if key.key_id_bytes in self._by_id:
                raise KeyringError(f"master key {key.key_id} is listed twice")
            self._by_id[key.key_id_bytes] = key

    # construction

    @classmethod
    def generate(cls) -> Keyring:
        """A keyring with one new random key (tests, first start)."""
        return cls([MasterKey.generate()])

    @classmethod
    def from_env_value(cls, value: str) -> Keyring:
        """Parse ``CIPHERDESK_MASTER_KEY``: base64 keys, comma-separated, newest first."""
        parts = [part.strip() for part in value.split(",")]
        if not any(parts):
            raise KeyringError(f"{ENV_VAR} is empty")
        keys = []
        for index, part in enumerate(parts, start=1):
            try:
                keys.append(MasterKey.from_b64(part))
            except KeyringError as exc:
                raise KeyringError(f"{ENV_VAR}: key #{index} is invalid: {exc}") from None
        return cls(keys)

    @classmethod
    def from_file_content(cls, content: bytes, *, source: str = "key file") -> Keyring:
        """Parse key-file content: one base64 key per line, newest first.

        Blank lines and lines starting with ``#`` are ignored.
        """
        try:
            text = content.decode("ascii")
        except UnicodeDecodeError:
            raise KeyringError(f"{source}: not ASCII base64 lines") from None
        keys = []
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                keys.append(MasterKey.from_b64(line))
            except KeyringError as exc:
                raise KeyringError(f"{source}, line {number}: {exc}") from None
        if not keys:
            raise KeyringError(f"{source} holds no keys")
        return cls(keys)

    def with_new_key(self) -> Keyring:
        """A new keyring whose current key is freshly generated, keeping every older key
        so existing blobs still open; this one is left unchanged (see :meth:`adopt`)."""
        return Keyring([MasterKey.generate(), *self._keys])

    def adopt(self, other: Keyring) -> None:
        """Take over ``other``'s keys in place (after :meth:`rotate`), so every component
        holding this object wraps and seals with the new current key from now on.

        :raises KeyringError: ``other`` lacks one of this ring's keys (blobs under it
            would stop opening); retire keys by restarting with a shorter ring instead.
        """
        missing = [key.key_id for key in self._keys if key.key_id_bytes not in other._by_id]
        if missing:
            raise KeyringError(f"the new keyring lacks master key(s) {', '.join(missing)}")
        # one assignment each, no await in between: readers see the old or the new ring
        self._by_id = dict(other._by_id)
        self._keys = other._keys

    def dump(self) -> bytes:
        """The key file's content: one key per line, current first."""
        return "".join(f"{key.to_b64()}\n" for key in self._keys).encode("ascii")

    # inspection

    @property
    def current(self) -> MasterKey:
        """The key every new wrap/seal uses."""
        return self._keys[0]

    @property
    def keys(self) -> tuple[MasterKey, ...]:
        """All keys, newest (current) first: lookups of values keyed under an older key
        (derived secrets) try each."""
        return self._keys

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of all keys, newest first (for status pages and rotation jobs)."""
        return tuple(key.key_id for key in self._keys)

    # data keys

    def wrap(self, data_key: bytes) -> bytes:
        """Encrypt a data key under the current master key for storage."""
        _check_key(data_key)
        return self.current._seal(data_key, _WRAP_AAD)

    def unwrap(self, blob: bytes) -> bytes:
        """Recover a data key wrapped by any key of this ring.

        :raises UnknownKeyError: the blob's master key is not in the ring.
        :raises EnvelopeError: malformed or tampered blob.
        """
        data_key = self._key_for(blob)._open(blob, _WRAP_AAD)
        if len(data_key) != DATA_KEY_SIZE:
            raise EnvelopeError("wrapped value is not a data key")
        return data_key

    def needs_rewrap(self, blob: bytes) -> bool:
        """Whether ``blob`` (wrapped or sealed) is under an older key than the current one."""
        return self._key_id_of(blob) != self.current.key_id_bytes

    def rewrap(self, blob: bytes) -> bytes:
        """Re-wrap a data key under the current master key (always a fresh blob)."""
        return self.wrap(self.unwrap(blob))

    # small secrets sealed directly under the master key

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """Seal a small secret (TOTP seed, plugin token) under the current master key."""
        return self.current._seal(plaintext, _SECRET_AAD_PREFIX + aad)

    def open(self, blob: bytes, aad: bytes) -> bytes:
        """Open a secret sealed by :meth:`seal` with the same ``aad``.

        :raises UnknownKeyError: the blob's master key is not in the ring.
        :raises EnvelopeError: wrong aad, malformed or tampered blob.
        """
        return self._key_for(blob)._open(blob, _SECRET_AAD_PREFIX + aad)

    def reseal(self, blob: bytes, aad: bytes) -> bytes:
        """Move a sealed secret to the current master key (the :meth:`rewrap` of secrets)."""
        return self.seal(self.open(blob, aad), aad)

    # helpers

    def _key_id_of(self, blob: bytes) -> bytes:
        _check_version(blob)
        if len(blob) < 1 + _KEY_ID_SIZE + _NONCE_SIZE + _TAG_SIZE:
            raise EnvelopeError("blob too short")
        return blob[1 : 1 + _KEY_ID_SIZE]

    def _key_for(self, blob: bytes) -> MasterKey:
        key_id = self._key_id_of(blob)
        try:
            return self._by_id[key_id]
        except KeyError:
            raise UnknownKeyError(f"no master key with id {key_id.hex()} in the keyring") from None

    def __repr__(self) -> str:
        return f"Keyring(current={self.current.key_id!r}, key_ids={list(self.key_ids)!r})"
