"""The migration files and runner (engine-independent checks)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.store.migrate import (
    latest_version,
    load_migrations,
    migrate_sqlite,
    split_sqlite_script,
)


def test_both_engines_share_the_numbering() -> None:
    sqlite = [(m.version, m.name) for m in load_migrations("sqlite")]
    postgres = [(m.version, m.name) for m in load_migrations("postgres")]
    assert sqlite == postgres
    assert [v for v, _ in sqlite] == list(range(1, len(sqlite) + 1))
    assert latest_version("sqlite") == latest_version("postgres") >= 1


def test_split_keeps_trigger_bodies_whole() -> None:
    statements = split_sqlite_script(load_migrations("sqlite")[0].sql)
    triggers = [s for s in statements if s.startswith("CREATE TRIGGER")]
    assert len(triggers) == 2
    assert all(t.endswith("END;") for t in triggers)
    assert all(sqlite3.complete_statement(s) for s in statements)


def test_sqlite_runner_is_idempotent_and_transactional(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    try:
        assert migrate_sqlite(conn) == latest_version("sqlite")
        assert migrate_sqlite(conn) == latest_version("sqlite")
        rows = conn.execute("SELECT version FROM schema_version").fetchall()
        assert [r[0] for r in rows] == list(range(1, latest_version("sqlite") + 1))
        assert not conn.in_transaction
    finally:
        conn.close()
