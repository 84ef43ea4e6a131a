# ruff: noqa: S608
# (S608: table and column names come from the constant SEALED list below; every value is
# a bound parameter.)
"""Backups of the embedded SQLite store, their verification and their restore.

Why this shape:

* **Consistent while serving.** :func:`create_backup` uses SQLite's online backup API
  (``sqlite3.Connection.backup`` with all pages in one step): the copy is one read
  transaction's snapshot. In WAL mode readers never block the gateway's writer, so chats
  go on while the copy is taken; every message acked before the backup started is in it.
* **Never the master key.** A backup holds the database (everything in it sealed) and a
  ``manifest.json``: format, creation time, gateway version, schema version, the *ids* of
  the master keys that wrapped its data, the signing identity's key id, and the SHA-256
  of each file. The master key and the signing key stay in the operator's secret store
  (deploy/README.md, "Backups"); a stolen backup is ciphertext.
* **Refuse what cannot work.** :func:`verify_backup` (and so ``restore``) re-computes the
  checksums, reads the key ids from the database itself (a manifest cannot hide one),
  and requires the configured keyring to actually *open* one value per key id. A
  database newer than this code is refused like at start-up (no downgrades).
* **Restore never destroys.** An existing database is replaced only with ``force``, and
  then moved aside (``*.replaced-<timestamp>``), never deleted; the restored file is
  written next to it, checked again, and renamed into place.

PostgreSQL is backed up with its own tools (``pg_dump``, WAL archiving/PITR);
:func:`verify_database` is the same verification for a live or freshly restored database.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import msgspec

from crypto.envelope import _KEY_ID_SIZE, EnvelopeError, Keyring  # see master_key_ids
from gateway.aad import plugin_secrets_aad, tenant_identity_aad, totp_aad
from gateway.store.migrate import check_not_newer

FORMAT = "cipherdesk-backup/1"
MANIFEST = "manifest.json"
DB_FILE = "cipherdesk.db"
_CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or restore cannot proceed; the message is one line saying why and what to do."""


class FileEntry(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    size: int
    sha256: str


class Manifest(msgspec.Struct, forbid_unknown_fields=True):
    """What a backup holds; written last, so a backup without it is incomplete."""

    format: str
    created_at: float
    created_at_utc: str
    gateway_version: str
    engine: str
    schema_version: int
    key_ids: list[str]
    identity_key_id: str | None
    files: list[FileEntry]
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class Sealed:
    """A column holding a value sealed or wrapped directly under a master key."""

    table: str
    column: str
    key_columns: tuple[str, ...]
    # opens one value with the keyring (raises EnvelopeError when it cannot)
    opener: Callable[[Keyring, bytes, tuple[Any, ...]], bytes]


SEALED: tuple[Sealed, ...] = (
    Sealed("chat_keys", "wrapped_key", (), lambda ring, blob, _k: ring.unwrap(blob)),
    Sealed(
        "agents",
        "totp_secret_sealed",
        ("id",),
        lambda ring, blob, k: ring.open(blob, totp_aad(k[0])),
    ),
    Sealed(
        "tenants",
        "identity_secrets_sealed",
        ("id",),
        lambda ring, blob, k: ring.open(blob, tenant_identity_aad(k[0])),
    ),
    Sealed(
        "plugin_configs",
        "secrets_sealed",
        ("tenant_id", "plugin"),
        lambda ring, blob, k: ring.open(blob, plugin_secrets_aad(k[0], k[1])),
    ),
)
"""Every master-key-sealed column (the same list :mod:`gateway.keyrotation` rewraps).
Everything else sealed is under a chat data key, itself in ``chat_keys``."""

COUNTED = ("tenants", "agents", "chats", "chat_keys", "messages", "audit_log")


# ---------------------------------------------------------------------- database access


class Db(Protocol):
    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]: ...


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write (``query_only``), waiting politely for locks. Not a
    ``mode=ro`` URI: that cannot open a WAL database whose -shm file is missing."""
    if not path.is_file():
        raise BackupError(f"no database at {path}")
    conn = sqlite3.connect(path, timeout=30)
    conn.execute("PRAGMA query_only = ON")
    return conn


class SqliteDb:
    """Read-only access to one SQLite file (``$n`` placeholders become ``?n``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        def run() -> list[tuple[Any, ...]]:
            conn = _read_only(self.path)
            try:
                return [tuple(r) for r in conn.execute(sql.replace("$", "?"), args)]
            finally:
                conn.close()

        return await asyncio.to_thread(run)


class PostgresDb:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await self.conn.fetch(sql, *args)]


async def master_key_ids(db: Db) -> list[str]:
    """Ids of every master key that sealed or wrapped a value in the database.

    The id is the envelope's header (version byte, then :data:`_KEY_ID_SIZE` id bytes,
    see :mod:`crypto.envelope`); read with ``substr`` so the database does the scan.
    """
    found: set[str] = set()
    for sealed in SEALED:
        rows = await db.fetch(
            f"SELECT DISTINCT substr({sealed.column}, 2, {_KEY_ID_SIZE}) FROM {sealed.table}"
            f" WHERE {sealed.column} IS NOT NULL"
        )
        found.update(bytes(r[0]).hex() for r in rows if r[0] is not None)
    return sorted(found)


async def unopenable_key_ids(db: Db, keyring: Keyring, key_ids: list[str]) -> list[str]:
    """Key ids for which the keyring cannot open a sample value (empty: all open)."""
    bad: list[str] = []
    for key_id in key_ids:
        if key_id not in keyring.key_ids:
            bad.append(key_id)
            continue
        opened = False
        for sealed in SEALED:
            cols = ", ".join((sealed.column, *sealed.key_columns))
            rows = await db.fetch(
                f"SELECT {cols} FROM {sealed.table} WHERE substr({sealed.column}, 2,"
                f" {_KEY_ID_SIZE}) = $1 LIMIT 1",
                bytes.fromhex(key_id),
            )
            if not rows:
                continue
            try:
                sealed.opener(keyring, bytes(rows[0][0]), rows[0][1:])
                opened = True
            except EnvelopeError:
                pass
            break
        if not opened:
            bad.append(key_id)
    return bad


async def _counts(db: Db) -> dict[str, int]:
    return {t: int((await db.fetch(f"SELECT count(*) FROM {t}"))[0][0]) for t in COUNTED}


async def _schema(db: Db) -> tuple[int, dict[int, bool]]:
    """Schema version and compatibility marks (a first-release database has no marks:
    its runner did not record them yet)."""
    try:
        rows = await db.fetch("SELECT version, compatible_with_previous FROM schema_version")
        return (max((int(r[0]) for r in rows), default=0), {int(r[0]): bool(r[1]) for r in rows})
    except Exception:  # no such column (sqlite3.OperationalError / asyncpg's own error)
        rows = await db.fetch("SELECT version FROM schema_version")
        return max((int(r[0]) for r in rows), default=0), {}


# ---------------------------------------------------------------------- files


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def _online_copy(source: Path, target: Path) -> None:
    """SQLite online backup of ``source`` into a new file ``target`` (one snapshot)."""
    fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    src = _read_only(source)
    try:
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            src.backup(dst)  # pages=-1: everything in one step, one read transaction
            dst.execute("PRAGMA journal_mode = DELETE")  # a self-contained single file
            check = dst.execute("PRAGMA integrity_check").fetchone()
            if check is None or check[0] != "ok":
                raise BackupError(f"the copy failed SQLite's integrity check: {check}")
        finally:
            dst.close()
    finally:
        src.close()
    _fsync_file(target)


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


# ---------------------------------------------------------------------- backup


def _prepare(db_path: Path, out_dir: Path) -> Path:
    """Check the source, create ``out_dir`` (0700) and take the online copy into it."""
    if not db_path.is_file():
        raise BackupError(f"no database at {db_path}: is --data-dir right?")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise BackupError(f"{out_dir} already exists and is not empty: pick a new directory")
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    partial = out_dir / (DB_FILE + ".partial")
    try:
        _online_copy(db_path, partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return partial


def _seal_backup(partial: Path, manifest_for: Callable[[FileEntry], Manifest]) -> Manifest:
    """Move the copy into place and write the manifest last (atomically, 0600)."""
    out_dir = partial.parent
    final = out_dir / DB_FILE
    partial.rename(final)
    manifest = manifest_for(FileEntry(DB_FILE, final.stat().st_size, sha256_file(final)))
    tmp = out_dir / (MANIFEST + ".partial")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.rename(out_dir / MANIFEST)
    _fsync_dir(out_dir)
    return manifest


async def create_backup(
    db_path: Path,
    out_dir: Path,
    *,
    gateway_version: str,
    identity_key_id: str | None,
    now: float | None = None,
) -> Manifest:
    """Copy the live database at ``db_path`` into the new directory ``out_dir``."""
    partial = await asyncio.to_thread(_prepare, db_path, out_dir)
    db = SqliteDb(partial)
    schema, _compat = await _schema(db)
    key_ids = await master_key_ids(db)
    counts = await _counts(db)
    created = time.time() if now is None else now

    def manifest_for(entry: FileEntry) -> Manifest:
        return Manifest(
            format=FORMAT,
            created_at=created,
            created_at_utc=_utc(created),
            gateway_version=gateway_version,
            engine="sqlite",
            schema_version=schema,
            key_ids=key_ids,
            identity_key_id=identity_key_id,
            files=[entry],
            counts=counts,
        )

    return await asyncio.to_thread(_seal_backup, partial, manifest_for)


# ---------------------------------------------------------------------- verify


def read_manifest(backup_dir: Path) -> Manifest:
    path = backup_dir / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BackupError(f"{backup_dir} has no {MANIFEST}: not a (complete) backup") from None
    try:
        manifest = msgspec.json.decode(raw, type=Manifest)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise BackupError(f"{path} is not a valid manifest: {exc}") from None
    if manifest.format != FORMAT:
        raise BackupError(f"unsupported backup format {manifest.format!r} (expected {FORMAT})")
    names = {f.name for f in manifest.files}
    if DB_FILE not in names or any("/" in n or n.startswith(".") for n in names):
        raise BackupError(f"{path} lists unexpected files: {sorted(names)}")
    return manifest


async def check_keys(db: Db, keyring: Keyring, listed: list[str] | None = None) -> list[str]:
    """The key ids in ``db``; refuses when ``listed`` (a manifest) disagrees or when the
    keyring cannot open a value under one of them."""
    key_ids = await master_key_ids(db)
    if listed is not None and sorted(listed) != key_ids:
        raise BackupError(
            f"the manifest lists master keys {sorted(listed)} but the database "
            f"uses {key_ids}: the backup was altered"
        )
    missing = [k for k in key_ids if k not in keyring.key_ids]
    if missing:
        raise BackupError(
            f"the configured master keyring ({', '.join(keyring.key_ids)}) cannot open this "
            f"data: master key(s) {', '.join(missing)} missing; configure the keys that were "
            "current when the backup was taken (CIPHERDESK_MASTER_KEY or <data dir>/master.key)"
        )
    bad = await unopenable_key_ids(db, keyring, key_ids)
    if bad:
        raise BackupError(
            f"master key(s) {', '.join(bad)} are in the keyring but do not open "
            "the data: wrong key material for that id"
        )
    return key_ids


def verify_files(backup_dir: Path) -> Manifest:
    """The manifest, after checking every listed file's size and SHA-256."""
    manifest = read_manifest(backup_dir)
    for entry in manifest.files:
        path = backup_dir / entry.name
        if not path.is_file():
            raise BackupError(f"{entry.name} is missing from the backup")
        if path.stat().st_size != entry.size or sha256_file(path) != entry.sha256:
            raise BackupError(
                f"{entry.name} does not match its checksum: the backup is damaged or was altered"
            )
    return manifest


async def verify_backup(backup_dir: Path, keyring: Keyring) -> Manifest:
    """Checksums, schema version and key ids of a backup directory; raises BackupError."""
    manifest = await asyncio.to_thread(verify_files, backup_dir)
    db = SqliteDb(backup_dir / DB_FILE)
    schema, compat = await _schema(db)
    if schema != manifest.schema_version:
        raise BackupError("the manifest's schema version does not match the database")
    try:
        check_not_newer("sqlite", schema, compat)
    except Exception as exc:
        raise BackupError(str(exc)) from None
    await check_keys(db, keyring, manifest.key_ids)
    return manifest


@dataclass(frozen=True, slots=True)
class DatabaseReport:
    schema_version: int
    key_ids: list[str]
    counts: dict[str, int]


async def verify_database(db: Db, keyring: Keyring, engine: str) -> DatabaseReport:
    """The verification step for a live or restored database (PostgreSQL after
    ``pg_restore`` / PITR, or SQLite): schema not newer than this code, every master key
    id in the data opened by the configured keyring."""
    schema, compat = await _schema(db)
    try:
        check_not_newer("sqlite" if engine == "sqlite" else "postgres", schema, compat)
    except Exception as exc:
        raise BackupError(str(exc)) from None
    key_ids = await check_keys(db, keyring)
    return DatabaseReport(schema, key_ids, await _counts(db))


# ---------------------------------------------------------------------- restore


def _move_aside(db_path: Path, stamp: str) -> list[Path]:
    moved = []
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = db_path.with_name(db_path.name + suffix)
        if path.exists():
            target = path.with_name(f"{path.name}.replaced-{stamp}")
            path.rename(target)
            moved.append(target)
    return moved


@dataclass(frozen=True, slots=True)
class RestoreReport:
    manifest: Manifest
    replaced: list[Path]


def _install(backup_dir: Path, manifest: Manifest, db_path: Path, force: bool) -> list[Path]:
    """Copy the verified database next to ``db_path``, check it, move the old one aside
    (only with ``force``) and rename the copy into place."""
    live = [p for p in (db_path, db_path.with_name(db_path.name + "-wal")) if p.exists()]
    if live and not force:
        raise BackupError(
            f"{db_path.parent} already holds a database: stop the gateway, then run restore "
            "again with --force to replace it (the current files are kept as *.replaced-*)"
        )
    db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = db_path.with_name(db_path.name + ".restoring")
    staging.unlink(missing_ok=True)
    fd = os.open(staging, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb") as out, (backup_dir / DB_FILE).open("rb") as src:
        while chunk := src.read(_CHUNK):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    expected = next(f.sha256 for f in manifest.files if f.name == DB_FILE)
    if sha256_file(staging) != expected:
        staging.unlink(missing_ok=True)
        raise BackupError("the copied database does not match its checksum (disk trouble?)")
    replaced = _move_aside(db_path, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    staging.rename(db_path)
    _fsync_dir(db_path.parent)
    return replaced


async def restore_backup(
    backup_dir: Path, db_path: Path, keyring: Keyring, *, force: bool = False
) -> RestoreReport:
    """Verify ``backup_dir`` and install its database at ``db_path`` (gateway stopped)."""
    manifest = await verify_backup(backup_dir, keyring)
    replaced = await asyncio.to_thread(_install, backup_dir, manifest, db_path, force)
    return RestoreReport(manifest, replaced)
