"""SQL for custom roles (issue 14.3, migration 0017), written once in SQLite's spelling
for both engines."""

from __future__ import annotations

from gateway.store._rows import Row
from gateway.store.base import CustomRole

COLS = "tenant_id, name, base, permissions, description, created_at, updated_at"
BY_TENANT = f"SELECT {COLS} FROM custom_roles WHERE tenant_id = ? ORDER BY name"  # noqa: S608
# An edit keeps the creation time; both engines spell the upsert the same way.
UPSERT = (
    f"INSERT INTO custom_roles ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
    " ON CONFLICT (tenant_id, name) DO UPDATE SET base = excluded.base,"
    " permissions = excluded.permissions, description = excluded.description,"
    " updated_at = excluded.updated_at"
)
# One statement: a role is deleted only while nobody holds it.
DELETE_UNHELD = (
    "DELETE FROM custom_roles WHERE tenant_id = ? AND name = ?"
    " AND NOT EXISTS (SELECT 1 FROM agents WHERE agents.tenant_id = custom_roles.tenant_id"
    " AND agents.custom_role = ?)"
)
ASSIGN = "UPDATE agents SET role = ?, custom_role = ? WHERE id = ?"


def params(role: CustomRole) -> tuple[object, ...]:
    return (
        role.tenant_id,
        role.name,
        role.base,
        ",".join(role.permissions),
        role.description,
        role.created_at,
        role.updated_at,
    )


def custom_role(r: Row) -> CustomRole:
    return CustomRole(
        tenant_id=r["tenant_id"],
        name=r["name"],
        base=r["base"],
        permissions=tuple(p for p in r["permissions"].split(",") if p),
        description=r["description"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )
