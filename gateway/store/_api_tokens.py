"""SQL and row conversion for scoped API tokens and last logins (migration 0006), shared by
both store backends.

Written once in SQLite's spelling and rendered per engine by :mod:`gateway.store.sql`.
Permissions are kept as one space-separated text column
(permission names never contain spaces), identical on both engines.
"""

from __future__ import annotations

from typing import Any

from gateway.store.base import ApiToken

COLS = (
    "id, tenant_id, owner_id, name, token_hash, permissions, created_at, expires_at,"
    " revoked_at, last_used_at"
)

# COLS is a constant of this module; values always travel as bound parameters.
INSERT = (
    "INSERT INTO api_tokens (" + COLS + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
)
BY_HASH = "SELECT " + COLS + " FROM api_tokens WHERE token_hash = ?"  # noqa: S608
BY_TENANT = (
    "SELECT " + COLS + " FROM api_tokens WHERE tenant_id = ?"  # noqa: S608
    " ORDER BY created_at DESC, id"
)
REVOKE = (
    "UPDATE api_tokens SET revoked_at = ? WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL"
)
TOUCH = (
    "UPDATE api_tokens SET last_used_at = ? WHERE id = ?"
    " AND (last_used_at IS NULL OR last_used_at < ?)"
)
LOGIN_UPSERT = (
    "INSERT INTO agent_last_login (agent_id, at) VALUES (?, ?)"
    " ON CONFLICT (agent_id) DO UPDATE SET at = excluded.at"
    " WHERE agent_last_login.at < excluded.at"
)
LOGINS_OF_TENANT = (
    "SELECT l.agent_id, l.at FROM agent_last_login l"
    " JOIN agents a ON a.id = l.agent_id WHERE a.tenant_id = ?"
)


def params(t: ApiToken) -> tuple[Any, ...]:
    """Column values in column order."""
    return (
        t.id,
        t.tenant_id,
        t.owner_id,
        t.name,
        t.token_hash,
        " ".join(sorted(t.permissions)),
        t.created_at,
        t.expires_at,
        t.revoked_at,
        t.last_used_at,
    )


def record(row: Any) -> ApiToken:
    """A row (sqlite3.Row / asyncpg.Record) as a record."""
    return ApiToken(
        id=row["id"],
        tenant_id=row["tenant_id"],
        owner_id=row["owner_id"],
        name=row["name"],
        token_hash=row["token_hash"],
        permissions=row["permissions"].split(),
        created_at=float(row["created_at"]),
        expires_at=float(row["expires_at"]),
        revoked_at=None if row["revoked_at"] is None else float(row["revoked_at"]),
        last_used_at=None if row["last_used_at"] is None else float(row["last_used_at"]),
    )
