"""Owner-only secret files: the gateway's signing seed and the master keyring.

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

__all__ = [
    "SecretFileError",
    "create_secret_file",
    "read_or_create_secret_file",
    "read_secret_file",
    "replace_secret_file",
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
