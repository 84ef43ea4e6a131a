"""SQL and row conversion for tenant keyword lists, shared by both store backends.

Kept apart from ``_rows`` so the policy's table is one small module (written once in SQLite's
spelling and rendered per engine by :mod:`gateway.store.sql`).
"""

from __future__ import annotations

from typing import Any

from gateway.store.base import KeywordListRecord

UPSERT = (
    "INSERT INTO policy_keyword_lists"
    " (tenant_id, name, body, terms, digest, updated_at, updated_by)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (tenant_id, name) DO UPDATE SET body = excluded.body,"
    " terms = excluded.terms, digest = excluded.digest, updated_at = excluded.updated_at,"
    " updated_by = excluded.updated_by"
)
SELECT = (
    "SELECT tenant_id, name, body, terms, digest, updated_at, updated_by"
    " FROM policy_keyword_lists WHERE tenant_id = ? ORDER BY name"
)
DELETE = "DELETE FROM policy_keyword_lists WHERE tenant_id = ? AND name = ?"


def params(r: KeywordListRecord) -> tuple[Any, ...]:
    """Column values in column order."""
    return (r.tenant_id, r.name, r.body, r.terms, r.digest, r.updated_at, r.updated_by)


def record(row: Any) -> KeywordListRecord:
    """A row (sqlite3.Row / asyncpg.Record) as a record."""
    return KeywordListRecord(
        tenant_id=row["tenant_id"],
        name=row["name"],
        body=row["body"],
        terms=int(row["terms"]),
        digest=row["digest"],
        updated_at=float(row["updated_at"]),
        updated_by=row["updated_by"],
    )
