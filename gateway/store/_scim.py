# ruff: noqa: S608
# (S608: SQL text here is built only from constant fragments and placeholders; every value
# is a bound parameter.)
"""SQL for SCIM provisioning (issue 20.3, migration 0019), written once in SQLite's
spelling for both engines."""

from __future__ import annotations

from gateway.store._rows import Row
from gateway.store.base import ScimGroup, ScimUser

USER_COLS = "agent_id, tenant_id, user_name, external_id, created_at, updated_at"
INSERT_USER = f"INSERT INTO scim_users ({USER_COLS}) VALUES (?, ?, ?, ?, ?, ?)"
UPDATE_USER = (
    "UPDATE scim_users SET user_name = ?, external_id = ?, updated_at = ?"
    " WHERE agent_id = ? AND tenant_id = ?"
)
USER = f"SELECT {USER_COLS} FROM scim_users WHERE tenant_id = ? AND agent_id = ?"
USERS = f"SELECT {USER_COLS} FROM scim_users WHERE tenant_id = ?"
"""Followed by the filter's conditions, then ``ORDER BY created_at, agent_id``."""
DELETE_USER = "DELETE FROM scim_users WHERE tenant_id = ? AND agent_id = ?"

GROUP_COLS = "id, tenant_id, display_name, external_id, created_at, updated_at"
INSERT_GROUP = f"INSERT INTO scim_groups ({GROUP_COLS}) VALUES (?, ?, ?, ?, ?, ?)"
UPDATE_GROUP = (
    "UPDATE scim_groups SET display_name = ?, external_id = ?, updated_at = ?"
    " WHERE id = ? AND tenant_id = ?"
)
GROUPS = f"SELECT {GROUP_COLS} FROM scim_groups WHERE tenant_id = ?"
DELETE_GROUP = "DELETE FROM scim_groups WHERE tenant_id = ? AND id = ?"
MEMBERS = (
    "SELECT m.group_id AS group_id, m.agent_id AS agent_id FROM scim_members m"
    " JOIN scim_groups g ON g.id = m.group_id WHERE g.tenant_id = ?"
    " ORDER BY m.group_id, m.agent_id"
)
ADD_MEMBER = "INSERT INTO scim_members (group_id, agent_id) VALUES (?, ?) ON CONFLICT DO NOTHING"
REMOVE_MEMBER = "DELETE FROM scim_members WHERE group_id = ? AND agent_id = ?"
CLEAR_MEMBERS = "DELETE FROM scim_members WHERE group_id = ?"
GROUP_NAMES_OF = (
    "SELECT g.display_name AS display_name FROM scim_members m"
    " JOIN scim_groups g ON g.id = m.group_id WHERE g.tenant_id = ? AND m.agent_id = ?"
    " ORDER BY g.display_name"
)


def user_params(u: ScimUser, *, new: bool) -> tuple[object, ...]:
    """The arguments of :data:`INSERT_USER` (``new``) or :data:`UPDATE_USER`."""
    if new:
        return (u.agent_id, u.tenant_id, u.user_name, u.external_id, u.created_at, u.updated_at)
    return (u.user_name, u.external_id, u.updated_at, u.agent_id, u.tenant_id)


def user(r: Row) -> ScimUser:
    return ScimUser(
        agent_id=r["agent_id"],
        tenant_id=r["tenant_id"],
        user_name=r["user_name"],
        external_id=r["external_id"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )


def group_params(g: ScimGroup, *, new: bool) -> tuple[object, ...]:
    """The arguments of :data:`INSERT_GROUP` (``new``) or :data:`UPDATE_GROUP`."""
    if new:
        return (g.id, g.tenant_id, g.display_name, g.external_id, g.created_at, g.updated_at)
    return (g.display_name, g.external_id, g.updated_at, g.id, g.tenant_id)


def group(r: Row, members: tuple[str, ...]) -> ScimGroup:
    return ScimGroup(
        id=r["id"],
        tenant_id=r["tenant_id"],
        display_name=r["display_name"],
        external_id=r["external_id"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        members=members,
    )
