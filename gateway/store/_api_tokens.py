"""SQL and row conversion for scoped API tokens and last logins (migration 0006), shared by
both store backends.

Written once with ``{}`` markers for placeholders; :func:`sql` renders them as ``?``
(SQLite) or ``$n`` (PostgreSQL). Permissions are kept as one space-separated text column
(permission names never contain spaces), identical on both engines.
"""

from __future__ import annotations

import itertools
from typing import Any

from gateway.store.base import ApiToken

COLS = (
    "id, tenant_id, owner_id, name, token_hash, permissions, created_at, expires_at,"
    " revoked_at, last_used_at"
)

# COLS is a constant of this module; values always travel as bound parameters.
_TEMPLATES = {
    "insert": "INSERT INTO api_tokens (" + COLS + ") VALUES ({}, {}, {}, {}, {}, {},"  # noqa: S608
    " {}, {}, {}, {})",
    "by_hash": "SELECT " + COLS + " FROM api_tokens WHERE token_hash = {}",  # noqa: S608
    "by_tenant": "SELECT " + COLS + " FROM api_tokens WHERE tenant_id = {}"  # noqa: S608
    " ORDER BY created_at DESC, id",
    "revoke": "UPDATE api_tokens SET revoked_at = {} WHERE tenant_id = {} AND id = {}"
    " AND revoked_at IS NULL",
    "login_upsert": "INSERT INTO agent_last_login (agent_id, at) VALUES ({}, {})"
    " ON CONFLICT (agent_id) DO UPDATE SET at = excluded.at"
    " WHERE agent_last_login.at < excluded.at",
    "logins_of_tenant": "SELECT l.agent_id, l.at FROM agent_last_login l"
    " JOIN agents a ON a.id = l.agent_id WHERE a.tenant_id = {}",
    "touch": "UPDATE api_tokens SET last_used_at = {} WHERE id = {}"
    " AND (last_used_at IS NULL OR last_used_at < {})",
}


def sql(name: str, style: str) -> str:
    """Statement ``name`` with ``?`` (style "sqlite") or ``$1..$n`` ("postgres")."""
    return render(_TEMPLATES[name], style)


def render(template: str, style: str) -> str:
    """A statement written with ``{}`` markers as ``?`` (SQLite) or ``$1..$n`` (PostgreSQL)."""
    if style == "sqlite":
        return template.replace("{}", "?")
    counter = itertools.count(1)
    out = template
    while "{}" in out:
        out = out.replace("{}", f"${next(counter)}", 1)
    return out


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
