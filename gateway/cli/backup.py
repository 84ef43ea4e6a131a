"""``cipherdesk backup`` / ``backup verify`` / ``restore`` (see :mod:`gateway.backup`).

::

    cipherdesk backup  [--data-dir D] OUT_DIR          # online copy while the gateway serves
    cipherdesk backup verify [--data-dir D] [BACKUP]   # a backup dir, or the configured store
    cipherdesk restore [--data-dir D] [--force] BACKUP # gateway stopped

The keyring used to verify is the configured one (``CIPHERDESK_MASTER_KEY`` or
``<data dir>/master.key``); these commands never create a key: a restore onto a machine
without the right key must fail loudly, not mint a new key that opens nothing.
``backup verify`` without a directory checks the configured store itself — the step to
run after ``pg_restore`` or a point-in-time recovery of PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from crypto.envelope import Keyring
from gateway import backup
from gateway.cli.common import CliError, config_from
from gateway.config import Config
from gateway.datadir import IDENTITY_FILE, MASTER_KEY_FILE
from gateway.keyfiles import load_or_create_identity, load_or_create_keyring
from gateway.store import sqlite_path
from gateway.version import package_version


def _keyring(config: Config) -> Keyring:
    if config.master_key.strip():
        return Keyring.from_env_value(config.master_key)
    path = config.data_dir / MASTER_KEY_FILE
    if not path.is_file():
        raise CliError(
            f"no master key configured: set CIPHERDESK_MASTER_KEY or put the "
            f"key file at {path} (from your secrets backup, never from the "
            "database backup)"
        )
    return load_or_create_keyring(path)


def _identity_key_id(config: Config) -> str | None:
    path = config.data_dir / IDENTITY_FILE
    return load_or_create_identity(path).key_id if path.is_file() else None


def _sqlite_db(config: Config) -> Path:
    url = config.store_url
    if not url.startswith("sqlite:"):
        raise CliError(
            "the store is PostgreSQL: back it up with pg_dump / WAL archiving "
            "(deploy/README.md, 'Backups'), then check it with 'cipherdesk backup "
            "verify'"
        )
    return sqlite_path(url, config.data_dir)


def _summary(manifest: backup.Manifest) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in manifest.counts.items())
    return (
        f"schema {manifest.schema_version}, master key(s) "
        f"{', '.join(manifest.key_ids) or 'none'}, {counts}"
    )


def cmd_backup(args: argparse.Namespace) -> None:
    if args.target == "verify":
        cmd_verify(args)
        return
    if args.extra is not None:
        raise CliError("usage: cipherdesk backup OUT_DIR  |  cipherdesk backup verify [DIR]")
    config = config_from(args)
    out_dir = Path(args.target)
    try:
        manifest = asyncio.run(
            backup.create_backup(
                _sqlite_db(config),
                out_dir,
                gateway_version=package_version(),
                identity_key_id=_identity_key_id(config),
            )
        )
    except backup.BackupError as exc:
        raise CliError(str(exc)) from None
    print(f"backup written to {out_dir} ({_summary(manifest)})")
    print("it holds no master key and no signing key: keep those in your secret store")


def cmd_verify(args: argparse.Namespace) -> None:
    config = config_from(args)
    keyring = _keyring(config)
    try:
        if args.extra is not None:
            manifest = asyncio.run(backup.verify_backup(Path(args.extra), keyring))
            print(
                f"backup {args.extra} is intact and the configured keyring opens it "
                f"({_summary(manifest)})"
            )
            return
        report = asyncio.run(_verify_store(config, keyring))
    except backup.BackupError as exc:
        raise CliError(str(exc)) from None
    counts = ", ".join(f"{k} {v}" for k, v in report.counts.items())
    print(
        f"store {config.store_url.split(':', 1)[0]} is readable with the configured keyring "
        f"(schema {report.schema_version}, master key(s) {', '.join(report.key_ids) or 'none'}"
        f", {counts})"
    )


async def _verify_store(config: Config, keyring: Keyring) -> backup.DatabaseReport:
    url = config.store_url
    if url.startswith("sqlite:"):
        db_path = _sqlite_db(config)
        return await backup.verify_database(backup.SqliteDb(db_path), keyring, "sqlite")
    import asyncpg

    try:
        conn = await asyncpg.connect(url, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise backup.BackupError(
            f"cannot connect to the PostgreSQL store: {type(exc).__name__}"
        ) from None
    try:
        return await backup.verify_database(backup.PostgresDb(conn), keyring, "postgres")
    finally:
        await conn.close()


def cmd_restore(args: argparse.Namespace) -> None:
    config = config_from(args)
    keyring = _keyring(config)
    db_path = _sqlite_db(config)
    try:
        report = asyncio.run(
            backup.restore_backup(Path(args.backup_dir), db_path, keyring, force=args.force)
        )
    except backup.BackupError as exc:
        raise CliError(str(exc)) from None
    print(f"restored {args.backup_dir} into {db_path} ({_summary(report.manifest)})")
    for path in report.replaced:
        print(f"previous file kept as {path}")
    wanted = report.manifest.identity_key_id
    present = _identity_key_id(config)
    if wanted and present != wanted:
        print(
            f"warning: the data dir's signing key is {present or 'missing'} but the backup "
            f"was taken with {wanted}: copy {IDENTITY_FILE} from your secrets backup, or "
            "widgets that pin the gateway key will refuse to connect"
        )
    print("start the gateway: it applies any migration this release adds")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    make = sub.add_parser(
        "backup",
        parents=[common],
        help="online copy of the SQLite store (or 'backup verify [DIR]')",
        description="cipherdesk backup OUT_DIR: consistent copy while the gateway serves. "
        "cipherdesk backup verify [DIR]: check a backup directory, or without "
        "DIR the configured store (e.g. PostgreSQL after pg_restore), against "
        "the configured master keyring.",
    )
    make.add_argument("target", metavar="OUT_DIR|verify")
    make.add_argument("extra", nargs="?", metavar="DIR", help="with verify: the backup dir")
    make.set_defaults(func=cmd_backup)

    restore = sub.add_parser(
        "restore", parents=[common], help="restore a backup into the data dir (gateway stopped)"
    )
    restore.add_argument("backup_dir", metavar="BACKUP_DIR")
    restore.add_argument(
        "--force", action="store_true", help="replace an existing database (kept as *.replaced-*)"
    )
    restore.set_defaults(func=cmd_restore)
