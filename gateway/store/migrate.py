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

Forward only: there are no down migrations. A database whose schema is *newer* than the
newest migration this code knows (an older release started on an upgraded database, or a
backup of a newer release restored under older code) is refused with
:class:`SchemaTooNew`, one line saying what to do, unless the single newer version was
declared backwards compatible by its author: a migration whose first line is
``-- cipherdesk: compatible-with-previous`` (only additive changes: new tables, new
nullable or defaulted columns, new indexes) is recorded so in ``schema_version``, and
code exactly one version behind may keep running on it. That is what a rolling upgrade
of several nodes needs (the first new node migrates while old nodes still serve, and an
old node that restarts mid-rollout must come back); two versions behind, or one behind
an incompatible change, is refused: stop every node, upgrade, start. See deploy/README.md.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Literal

from gateway.store.base import StoreError

if TYPE_CHECKING:
    import asyncpg

Engine = Literal["sqlite", "postgres"]

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(sqlite|postgres)\.sql$")

# Arbitrary constant key of the advisory lock that guards migrations ("cdmigrat").
PG_MIGRATION_LOCK_KEY = 0x63646D6967726174

#: First line of a migration its author declares safe for the previous release's code.
COMPATIBLE_MARK = "-- cipherdesk: compatible-with-previous"

_SQLITE_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
)
_PG_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
)
# Added by the runner (not by a numbered migration) to tables the first release created.
_COMPAT_COLUMN = "compatible_with_previous"


class SchemaTooNew(StoreError):
    """The database was migrated by a newer cipherdesk than this one (no downgrades)."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def compatible_with_previous(self) -> bool:
        """Whether the author declared the previous release's code safe on this schema."""
        return self.sql.lstrip().startswith(COMPATIBLE_MARK)


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


def check_not_newer(engine: Engine, current: int, compatible: dict[int, bool]) -> None:
    """Refuse a database newer than this code, except one version declared compatible.

    ``compatible`` maps the database's applied versions to their recorded mark.
    :raises SchemaTooNew: with the one-line message the CLI prints.
    """
    latest = latest_version(engine)
    if current <= latest:
        return
    if current == latest + 1 and compatible.get(current, False):
        return
    raise SchemaTooNew(
        f"the database schema is at version {current} but this cipherdesk only knows "
        f"versions up to {latest} (downgrades are not supported): run the newer cipherdesk "
        "release, or restore a backup taken before the upgrade"
    )


def schema_ready(current: int, engine: Engine = "sqlite") -> bool:
    """Whether every migration this code knows is applied (readiness check)."""
    return current >= latest_version(engine)


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


def _sqlite_compat(conn: sqlite3.Connection) -> dict[int, bool]:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(schema_version)")}
    if _COMPAT_COLUMN not in columns:
        return {}
    rows = conn.execute("SELECT version, compatible_with_previous FROM schema_version")
    return {int(v): bool(c) for v, c in rows}


def _sqlite_version_table(conn: sqlite3.Connection) -> None:
    conn.execute(_SQLITE_VERSION_TABLE)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(schema_version)")}
    if _COMPAT_COLUMN not in columns:
        conn.execute(
            "ALTER TABLE schema_version ADD COLUMN compatible_with_previous"
            " INTEGER NOT NULL DEFAULT 0"
        )


def migrate_sqlite(conn: sqlite3.Connection, target: int | None = None) -> int:
    """Apply pending migrations (up to ``target``, default all) on a connection in
    autocommit mode (``isolation_level=None``). Blocking: run it on the connection's own
    thread. Returns the schema version afterwards.

    :raises SchemaTooNew: the database is newer than this code (see the module doc)."""
    check_not_newer("sqlite", sqlite_current_version(conn), _sqlite_compat(conn))
    for migration in load_migrations("sqlite"):
        if target is not None and migration.version > target:
            break
        conn.execute("BEGIN IMMEDIATE")
        try:
            _sqlite_version_table(conn)
            if sqlite_current_version(conn) >= migration.version:
                conn.execute("COMMIT")
                continue
            for statement in split_sqlite_script(migration.sql):
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version (version, name, applied_at, compatible_with_previous)"
                " VALUES (?, ?, ?, ?)",
                (
                    migration.version,
                    migration.name,
                    time.time(),
                    int(migration.compatible_with_previous),
                ),
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


async def _pg_compat(conn: asyncpg.Connection) -> dict[int, bool]:
    has_column = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema ="
        " current_schema() AND table_name = 'schema_version' AND column_name = $1)",
        _COMPAT_COLUMN,
    )
    if not has_column:
        return {}
    rows = await conn.fetch("SELECT version, compatible_with_previous FROM schema_version")
    return {int(r[0]): bool(r[1]) for r in rows}


async def migrate_postgres(conn: asyncpg.Connection, target: int | None = None) -> int:
    """Apply pending migrations (up to ``target``, default all); safe when several nodes
    start at the same time. Returns the schema version afterwards.

    :raises SchemaTooNew: the database is newer than this code (see the module doc)."""
    check_not_newer("postgres", await pg_current_version(conn), await _pg_compat(conn))
    for migration in load_migrations("postgres"):
        if target is not None and migration.version > target:
            break
        async with conn.transaction():
            # Held until this transaction ends: concurrent runners queue here and then
            # see the version row this one wrote.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", PG_MIGRATION_LOCK_KEY)
            await conn.execute(_PG_VERSION_TABLE)
            await conn.execute(
                "ALTER TABLE schema_version ADD COLUMN IF NOT EXISTS compatible_with_previous"
                " BOOLEAN NOT NULL DEFAULT false"
            )
            if await pg_current_version(conn) >= migration.version:
                continue
            await conn.execute(migration.sql)  # simple-query protocol: many statements
            await conn.execute(
                "INSERT INTO schema_version (version, name, applied_at, compatible_with_previous)"
                " VALUES ($1, $2, $3, $4)",
                migration.version,
                migration.name,
                time.time(),
                migration.compatible_with_previous,
            )
    return await pg_current_version(conn)
