"""The gateway's long-term Ed25519 identity, and owner-only secret files.

The identity signs every ``hello`` so that a widget pinning the gateway's verify
key notices a middlebox that swaps the per-connection X25519 key. Its seed lives
in a file that must never be readable by anyone but the service user; the same
file discipline is reused for the master keyring (:mod:`crypto.envelope`), so the
small secret-file helpers live here too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

import nacl.exceptions
import nacl.signing

from crypto.encoding import b64decode, b64encode

__all__ = [
    "HELLO_CONTEXT",
    "GatewayIdentity",
    "IdentityFileError",
    "SecretFileError",
    "create_secret_file",
    "hello_transcript",
    "read_or_create_secret_file",
    "read_secret_file",
    "replace_secret_file",
    "verify_hello",
]

HELLO_CONTEXT = "cipherdesk/v1/hello"
"""Domain-separation prefix: a hello signature can never be replayed as anything else."""

_SEED_SIZE = 32
_SIGNATURE_SIZE = 64
_PUBLIC_KEY_SIZE = 32


# --- owner-only secret files -------------------------------------------------------


class SecretFileError(Exception):
    """A secret file is unsafe (group/other permissions), malformed, or unwritable."""


def read_secret_file(path: Path) -> bytes:
    """Read a secret file, refusing one that is not a regular owner-only file.

    The mode is checked on the open descriptor (``fstat``), so the file cannot be
    swapped between the check and the read. Symlinks are followed on purpose:
    mounted secrets (Kubernetes, Docker) are usually symlinks.

    :raises FileNotFoundError: the file does not exist (callers may then create it).
    :raises SecretFileError: it is not a regular file or has group/other permissions.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SecretFileError(f"{path} is not a regular file")
        if info.st_mode & 0o077:
            raise SecretFileError(
                f"{path} has mode {stat.S_IMODE(info.st_mode):04o}: it holds a secret key "
                f"and must be accessible only by its owner; run `chmod 600 {path}`"
            )
        return handle.read()


def _write_temp(path: Path, data: bytes) -> Path:
    """Write ``data`` to a fresh 0600 file next to ``path`` and fsync it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    # O_EXCL + mode 0o600 at creation: the file is never visible with wider permissions.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _fsync_dir(directory: Path) -> None:
    # Makes the new directory entry durable; not supported on every platform/filesystem.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def create_secret_file(path: Path, data: bytes) -> None:
    """Create ``path`` (mode 0600; a missing parent directory is made 0700) atomically.

    The content is written to a private temporary file and then hard-linked into
    place, so readers never see a partial file and two processes racing to create
    it cannot both win.

    :raises FileExistsError: ``path`` already exists (re-read it instead).
    """
    temp = _write_temp(path, data)
    try:
        os.link(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def read_or_create_secret_file(path: Path, make: Callable[[], bytes]) -> bytes:
    """Return the secret file's content, first creating it with ``make()`` if absent.

    Safe against two processes starting at once: the loser of the creation race
    reads the winner's file instead of overwriting it.

    :raises SecretFileError: unsafe permissions, or the file cannot be read/written.
    """
    for _ in range(3):
        try:
            return read_secret_file(path)
        except FileNotFoundError:
            data = make()
            try:
                create_secret_file(path, data)
            except FileExistsError:
                continue
            except OSError as exc:
                raise SecretFileError(f"cannot create {path}: {exc}") from exc
            return data
        except OSError as exc:
            raise SecretFileError(f"cannot read {path}: {exc}") from exc
    raise SecretFileError(f"{path} keeps appearing and disappearing")


def replace_secret_file(path: Path, data: bytes) -> None:
    """Atomically replace (or create) ``path`` with ``data`` at mode 0600."""
    temp = _write_temp(path, data)
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


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


# --- the identity ------------------------------------------------------------------


class IdentityFileError(SecretFileError):
    """The identity file is unsafe or corrupt; the message says how to fix it."""


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
        if len(seed) != _SEED_SIZE:
            raise ValueError(f"seed must be {_SEED_SIZE} bytes")
        return cls(nacl.signing.SigningKey(seed))

    @classmethod
    def load_or_create(cls, path: Path) -> GatewayIdentity:
        """Load the seed file at ``path``, creating it (0600) with a new identity if absent.

        :raises IdentityFileError: the file is readable by group/others (fix with
            ``chmod 600``), is not 32 bytes, or cannot be written.
        """
        try:
            seed = read_or_create_secret_file(path, lambda: os.urandom(_SEED_SIZE))
        except SecretFileError as exc:
            raise IdentityFileError(str(exc)) from exc
        if len(seed) != _SEED_SIZE:
            raise IdentityFileError(
                f"{path} holds {len(seed)} bytes, expected a {_SEED_SIZE}-byte Ed25519 "
                "seed; restore it from backup, or delete it to generate a new identity "
                "(widgets pinning the old verify key will then need the new one)"
            )
        return cls.from_seed(seed)
        raise IdentityFileError(f"identity file {path} keeps disappearing")  # pragma: no cover

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

    def __repr__(self) -> str:
        return f"GatewayIdentity(key_id={self.key_id!r})"
