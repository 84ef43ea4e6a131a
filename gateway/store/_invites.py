"""SQL and row conversion for agent invitations (migration 0007), shared by both store
backends.

Written once in SQLite's spelling and rendered per engine by :mod:`gateway.store.sql`.
Claiming an invite is one conditional ``UPDATE``
(unused, unrevoked, unexpired at ``now``): two redemptions racing on two nodes cannot
both win, whatever the engine.
"""

from __future__ import annotations

from typing import Any

from gateway.store.base import Invite

COLS = (
    "id, tenant_id, email, display_name, role, token_hash, created_by, created_at,"
    " expires_at, used_at, agent_id, revoked_at, revoked_by, purpose"
)

# COLS is a constant of this module; values always travel as bound parameters.
INSERT = (
    "INSERT INTO agent_invites (" + COLS + ")"  # noqa: S608
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
BY_HASH = "SELECT " + COLS + " FROM agent_invites WHERE token_hash = ?"  # noqa: S608
BY_TENANT = (
    "SELECT " + COLS + " FROM agent_invites WHERE tenant_id = ?"  # noqa: S608
    " ORDER BY created_at DESC, id"
)
REVOKE = (
    "UPDATE agent_invites SET revoked_at = ?, revoked_by = ?"
    " WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL AND used_at IS NULL"
)
CLAIM = (
    "UPDATE agent_invites SET used_at = ?, agent_id = ? WHERE id = ?"
    " AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?"
)


def params(i: Invite) -> tuple[Any, ...]:
    """Column values in column order."""
    return (
        i.id,
        i.tenant_id,
        i.email,
        i.display_name,
        i.role,
        i.token_hash,
        i.created_by,
        i.created_at,
        i.expires_at,
        i.used_at,
        i.agent_id,
        i.revoked_at,
        i.revoked_by,
        i.purpose,
    )


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def record(row: Any) -> Invite:
    """A row (sqlite3.Row / asyncpg.Record) as a record."""
    return Invite(
        id=row["id"],
        tenant_id=row["tenant_id"],
        email=row["email"],
        display_name=row["display_name"],
        role=row["role"],
        token_hash=row["token_hash"],
        created_by=row["created_by"],
        created_at=float(row["created_at"]),
        expires_at=float(row["expires_at"]),
        used_at=_opt(row["used_at"]),
        agent_id=row["agent_id"],
        revoked_at=_opt(row["revoked_at"]),
        revoked_by=row["revoked_by"],
        purpose=row["purpose"],
    )
