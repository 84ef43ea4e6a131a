"""The one schema-migration runner both store backends use.

Migrations live in ``gateway/store/migrations/`` as ``NNNN_name.<engine>.sql`` with one
numbering shared by both engines. The runner:

- keeps the applied versions in ``schema_version`` (created on first use);
- applies every pending version in ascending order, each in its own transaction together
  with its ``schema_version`` row, so a failed migration leaves nothing half-applied;
- is idempotent: a second run finds nothing pending;
- serialises concurrent runners: on PostgreSQL every transaction first takes
  ``pg_advisory_xact_lock`` (several gateway nodes may start at once), on SQLite the
  transaction is ``BEGIN IMMEDIATE`` (the database's single write lock). The pending
  check is re-done under the lock, so a version is never applied twice.

A database whose version is newer than the newest migration this code knows is left as
it is (a rolling upgrade may run old and new nodes side by side); migrations must
therefore stay backwards compatible for one release.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import asyncpg

Engine = Literal["sqlite", "postgres"]

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(sqlite|postgres)\.sql$")

# Arbitrary constant key of the advisory lock that guards migrations ("cdmigrat").
PG_MIGRATION_LOCK_KEY = 0x63646D6967726174

_SQLITE_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
)
_PG_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


@cache
def load_migrations(engine: Engine) -> tuple[Migration, ...]:
    """All migrations of one engine, ascending by version."""
    found: dict[int, Migration] = {}
    for entry in resources.files("gateway.store.migrations").iterdir():
        match = _FILE_RE.match(entry.name)
        if match is None or match.group(3) != engine:
            continue
        version = int(match.group(1))
        if version in found:
            raise RuntimeError(f"two {engine} migrations share version {version}")
        found[version] = Migration(version, match.group(2), entry.read_text("utf-8"))
    return tuple(found[v] for v in sorted(found))


def latest_version(engine: Engine) -> int:
    migrations = load_migrations(engine)
    return migrations[-1].version if migrations else 0


# -- SQLite ------------------------------------------------------------------------------


def split_sqlite_script(script: str) -> list[str]:
    """Split a script into complete statements (trigger bodies included).

    ``executescript`` would COMMIT any open transaction first, so statements are run one
    by one inside the runner's own transaction instead.
    """
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buffer!r}")
    return statements


def sqlite_current_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(row[0])


def migrate_sqlite(conn: sqlite3.Connection) -> int:
    """Apply pending migrations on a connection in autocommit mode
    (``isolation_level=None``). Blocking: run it on the connection's own thread.
    Returns the schema version afterwards."""
    for migration in load_migrations("sqlite"):
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_SQLITE_VERSION_TABLE)
            if sqlite_current_version(conn) >= migration.version:
                conn.execute("COMMIT")
                continue
            for statement in split_sqlite_script(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, time.time()),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return sqlite_current_version(conn)


# -- PostgreSQL --------------------------------------------------------------------------


async def pg_current_version(conn: asyncpg.Connection) -> int:
    exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
    if not exists:
        return 0
    return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))


async def migrate_postgres(conn: asyncpg.Connection) -> int:
    """Apply pending migrations; safe when several nodes start at the same time.
    Returns the schema version afterwards."""
    for migration in load_migrations("postgres"):
        async with conn.transaction():
            # Held until this transaction ends: concurrent runners queue here and then
            # see the version row this one wrote.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", PG_MIGRATION_LOCK_KEY)
            await conn.execute(_PG_VERSION_TABLE)
            if await pg_current_version(conn) >= migration.version:
                continue
            await conn.execute(migration.sql)  # simple-query protocol: many statements
            await conn.execute(
                "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                time.time(),
            )
    return await pg_current_version(conn)
