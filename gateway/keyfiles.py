"""Owner-only secret files: the gateway's signing seed and the master keyring.

The file I/O of the keys lives here, in the gateway; :mod:`crypto` stays a pure library
(it parses and serialises keys, never touches the disk).

Why one module: both files must never be readable by anyone but the service user, must
never be observed half-written, and must not be created twice by two processes starting
at once. The same discipline (0600 from birth, refuse loose modes, atomic replace via a
hard-linked temp file) serves both.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from crypto.envelope import Keyring, KeyringError
from crypto.identity import SEED_SIZE, GatewayIdentity

__all__ = [
    "IdentityFileError",
    "SecretFileError",
    "create_secret_file",
    "load_or_create_identity",
    "load_or_create_keyring",
    "read_or_create_secret_file",
    "read_secret_file",
    "replace_secret_file",
    "rotate_keyring",
]


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


class IdentityFileError(SecretFileError):
    """The identity file is unsafe or corrupt; the message says how to fix it."""


def load_or_create_identity(path: Path) -> GatewayIdentity:
    """Load the seed file at ``path``, creating it (0600) with a new identity if absent.

    :raises IdentityFileError: the file is readable by group/others (fix with
        ``chmod 600``), is not 32 bytes, or cannot be written.
    """
    try:
        seed = read_or_create_secret_file(path, lambda: secrets.token_bytes(SEED_SIZE))
    except IdentityFileError:
        raise
    except SecretFileError as exc:
        raise IdentityFileError(str(exc)) from exc
    if len(seed) != SEED_SIZE:
        raise IdentityFileError(
            f"{path} holds {len(seed)} bytes, expected a {SEED_SIZE}-byte Ed25519 "
            "seed; restore it from backup, or delete it to generate a new identity "
            "(widgets pinning the old verify key will then need the new one)"
        )
    return GatewayIdentity.from_seed(seed)


def load_or_create_keyring(path: Path, env_value: str | None = None) -> Keyring:
    """The deployment's keyring: from ``env_value`` if set, else from the key file.

    ``env_value`` is the value of ``CIPHERDESK_MASTER_KEY``; ``None``, empty or blank
    means "not set" (compose files often pass an empty default). The key file is created
    (0600, one new key) when missing, and refused when group/other-accessible.
    """
    if env_value is not None and env_value.strip():
        return Keyring.from_env_value(env_value)
    try:
        content = read_or_create_secret_file(path, lambda: Keyring.generate().dump())
    except SecretFileError as exc:
        raise KeyringError(str(exc)) from exc
    return Keyring.from_file_content(content, source=str(path))


def rotate_keyring(keyring: Keyring, path: Path) -> Keyring:
    """Add a new current key and persist the whole ring to ``path`` (atomic, 0600).

    Returns the new keyring; ``keyring`` is left unchanged. Older keys stay so existing
    blobs still open. The file is rewritten from the ring's keys (comments are dropped).
    When keys come from the env var, update the env var instead: it takes precedence.
    """
    rotated = keyring.with_new_key()
    try:
        replace_secret_file(path, rotated.dump())
    except OSError as exc:
        raise KeyringError(f"cannot write {path}: {exc}") from exc
    return rotated
