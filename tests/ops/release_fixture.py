"""Build the first release's database (schema 0001 + its data) on SQLite or PostgreSQL.

The data comes from ``fixtures/release1.json`` (see ``fixtures/make_release1.py``): rows
exactly as the first release stored them. The schema is built with the migration runner
stopped at version 1, the rows are inserted, and nothing else: what a later release
finds when it starts on a database the first release left behind.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from functools import cache
from pathlib import Path
from typing import Any

import asyncpg

from gateway.store import sqlite_path
from gateway.store.migrate import migrate_postgres, migrate_sqlite

FIXTURE = Path(__file__).parent / "fixtures" / "release1.json"


@cache
def release1() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def _raw(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    return value


def _build_sqlite(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate_sqlite(conn, target=1) == 1
        conn.execute("BEGIN")
        for table, rows in release1()["tables"].items():
            for row in rows:
                cols = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                conn.execute(
                    f"INSERT INTO {table} ({cols}) VALUES ({marks})",
                    [_raw(v) for v in row.values()],
                )
        conn.execute("COMMIT")
    finally:
        conn.close()


def _pg_value(kind: str, value: Any) -> Any:
    value = _raw(value)
    if value is None:
        return None
    if kind == "boolean":
        return bool(value)
    if kind in ("jsonb", "json"):
        return json.dumps(json.loads(value))  # stored as TEXT in SQLite
    if kind in ("double precision", "real"):
        return float(value)
    return value


async def _build_postgres(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        assert await migrate_postgres(conn, target=1) == 1
        async with conn.transaction():
            for table, rows in release1()["tables"].items():
                kinds = dict(
                    await conn.fetch(
                        "SELECT column_name, data_type FROM information_schema.columns"
                        " WHERE table_schema = current_schema() AND table_name = $1",
                        table,
                    )
                )
                identity = await conn.fetchval(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema ="
                    " current_schema() AND table_name = $1 AND is_identity = 'YES'",
                    table,
                )
                for row in rows:
                    cols = ", ".join(row)
                    marks = ", ".join(
                        f"${i}::{'jsonb' if kinds[c] == 'jsonb' else kinds[c]}"
                        for i, c in enumerate(row, start=1)
                    )
                    overriding = " OVERRIDING SYSTEM VALUE" if identity else ""
                    await conn.execute(
                        f"INSERT INTO {table} ({cols}){overriding} VALUES ({marks})",
                        *(_pg_value(kinds[c], v) for c, v in row.items()),
                    )
                if identity and rows:
                    await conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', '{identity}'),"
                        f" (SELECT max({identity}) FROM {table}))"
                    )
    finally:
        await conn.close()


async def build_release1(store_url: str, data_dir: Path) -> None:
    """Create the first release's database with its data at ``store_url``."""
    if store_url.startswith("sqlite:"):
        _build_sqlite(sqlite_path(store_url, data_dir))
    else:
        await _build_postgres(store_url)
