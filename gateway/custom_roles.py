"""Custom roles (issue 14.3): a tenant's own roles, cut from the built-in ones.

The three built-in roles are coarse: a quality analyst needs the service-quality report
and nothing else a supervisor has, a policy officer needs the policy pages but not the
agent list. A tenant admin defines a *custom role* as a named subset of one built-in
role's permissions (its **base**) and gives it to agents. Holders keep the base as their
tier -- the passkey rule ("phishing-resistant MFA for admins/staff"), dormancy and the
invite flow see the base -- while what they may *do* is only the subset.

Three rules keep it safe, enforced here for every path (API and console alike):

* **Only narrowing.** A custom role's permissions are a subset of its base's, so no
  combination of custom roles exceeds the built-in ladder (the principal re-checks it:
  :attr:`auth.roles.Principal.granted` is intersected with the base).
* **Nobody hands out what they do not hold** (:func:`auth.roles.may_grant`): defining,
  editing or assigning a role, creating or inviting an agent, and re-roling or disabling
  one need every permission involved -- the new role's *and* the target's current ones.
* **The tenant keeps an administrator.** A change that would leave no enabled agent able
  to manage agents is refused (``409 last_admin``), whether it edits a role, re-roles or
  disables an agent.

An edit that removes permissions ends the holders' sessions (live sockets close 4401),
as a role change does: their consoles hold the old principal. Every change is audited
(``role.defined``, ``role.redefined``, ``role.deleted``, ``role.changed``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from auth.roles import (
    TENANT_ROLES,
    Permission,
    Principal,
    Role,
    may_grant,
    parse_permissions,
    role_permissions,
)
from gateway.audit import Auditor
from gateway.logins import LoginService
from gateway.sessions import agent_principal
from gateway.store.base import Agent, CustomRole, Store

__all__ = [
    "MAX_CUSTOM_ROLES",
    "ROLE_NAME",
    "CustomRoleService",
    "RoleDefinition",
    "RoleRefused",
]

ROLE_NAME = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")
"""Custom role names: 2-32 lowercase letters, digits, ``-`` or ``_``, starting with a
letter -- an identifier for the audit log and the API, never free text."""
MAX_CUSTOM_ROLES = 32
"""Per tenant: more than any real organisation chart needs, bounded storage."""
MAX_DESCRIPTION = 200
_RESERVED = frozenset(r.value for r in Role)


class RoleRefused(Exception):
    """A role request was refused: ``status`` and ``code`` are the API's, ``field`` the
    culprit (None when it is the request as a whole)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class RoleDefinition:
    """What an admin asks for; validated by :meth:`CustomRoleService.define`. The
    description is already screened by the tenant's policy (it is staff free text)."""

    name: str
    base: str
    permissions: tuple[str, ...]
    description: str = ""


class CustomRoleService:
    """The one place custom roles are defined, deleted and assigned."""

    def __init__(
        self, store: Store, auditor: Auditor, logins: LoginService, clock: Callable[[], float]
    ) -> None:
        self._store = store
        self._auditor = auditor
        self._logins = logins
        self._clock = clock

    async def roles(self, tenant_id: str) -> list[CustomRole]:
        """The tenant's custom roles, by name."""
        return await self._store.list_custom_roles(tenant_id)

    async def get(self, tenant_id: str, name: str) -> CustomRole | None:
        """One custom role of the tenant, or None."""
        return next((r for r in await self.roles(tenant_id) if r.name == name), None)

    async def define(
        self, actor: Principal, definition: RoleDefinition, *, ip: str | None = None
    ) -> tuple[CustomRole, bool]:
        """Create or replace a role; returns it and whether it was new. Raises
        :class:`RoleRefused` for a bad name/base/permission set, a permission the actor
        lacks, too many roles, or an edit that would leave the tenant without an admin."""
        name, base, wanted = _validated(definition)
        description = definition.description.strip()[:MAX_DESCRIPTION]
        tenant_id = actor.tenant_id
        existing = await self.roles(tenant_id)
        old = next((r for r in existing if r.name == name), None)
        if old is None and len(existing) >= MAX_CUSTOM_ROLES:
            raise RoleRefused(
                409, "too_many_roles", f"at most {MAX_CUSTOM_ROLES} custom roles per tenant"
            )
        old_permissions = parse_permissions(old.permissions) if old is not None else frozenset()
        if not may_grant(actor, wanted | old_permissions):
            raise _cannot_grant(wanted | old_permissions, actor)
        now = self._clock()
        role = CustomRole(
            tenant_id=tenant_id,
            name=name,
            base=base.value,
            permissions=tuple(sorted(p.value for p in wanted)),
            description=description,
            created_at=old.created_at if old is not None else now,
            updated_at=now,
        )
        holders = [a for a in await self._store.list_agents(tenant_id) if a.custom_role == name]
        if old is not None:
            await self._keep_an_admin(tenant_id, {a.id: (base, wanted) for a in holders})
        await self._store.save_custom_role(role)
        removed = old_permissions - wanted
        await self._auditor.record(
            "role.defined" if old is None else "role.redefined",
            tenant_id=tenant_id,
            actor=actor.agent_id,
            target=name,
            ip=ip,
            base=role.base,
            permissions=list(role.permissions),
            removed=sorted(p.value for p in removed),
            holders=len(holders),
        )
        if old is not None and (removed or old.base != role.base):
            for holder in holders:
                if holder.role != role.base:
                    await self._store.set_agent_role(holder.id, role.base, name)
                await self._logins.revoke_all(
                    holder.id, actor.agent_id, ip=ip, reason="role_changed"
                )
        return role, old is None

    async def delete(self, actor: Principal, name: str, *, ip: str | None = None) -> None:
        """Delete a role nobody holds: 404 ``not_found``, 409 ``role_in_use``."""
        role = await self.get(actor.tenant_id, name) if ROLE_NAME.match(name) else None
        if role is None:
            raise RoleRefused(404, "not_found", "no such custom role")
        if not await self._store.delete_custom_role(actor.tenant_id, name):
            raise RoleRefused(
                409, "role_in_use", "agents still hold this role; give them another one first"
            )
        await self._auditor.record(
            "role.deleted", tenant_id=actor.tenant_id, actor=actor.agent_id, target=name, ip=ip
        )

    async def assign(
        self,
        actor: Principal,
        agent: Agent,
        *,
        role: str | None = None,
        custom_role: str | None = None,
        ip: str | None = None,
    ) -> bool:
        """Give ``agent`` a built-in ``role`` or a ``custom_role`` ("" clears one, keeping
        the base); False when nothing changes. Ends the agent's sessions on a change."""
        planned = await self.check_assignment(actor, agent, role=role, custom_role=custom_role)
        if planned is None:
            return False
        base, new_custom = planned
        await self._store.set_agent_role(agent.id, base.value, new_custom)
        custom = (
            {"old_custom_role": agent.custom_role, "new_custom_role": new_custom}
            if agent.custom_role or new_custom
            else {}
        )
        await self._auditor.record(
            "role.changed",
            tenant_id=agent.tenant_id,
            actor=actor.agent_id,
            target=agent.id,
            ip=ip,
            old_role=agent.role,
            new_role=base.value,
            **custom,
        )
        agent.role, agent.custom_role = base.value, new_custom
        # Open sockets hold the old principal: make them log in again.
        await self._logins.revoke_all(agent.id, actor.agent_id, ip=ip, reason="role_changed")
        return True

    async def check_assignment(
        self,
        actor: Principal,
        agent: Agent,
        *,
        role: str | None = None,
        custom_role: str | None = None,
    ) -> tuple[Role, str | None] | None:
        """Every rule of :meth:`assign` without writing: the new base role and custom role,
        None when nothing would change, :class:`RoleRefused` when it is not allowed."""
        if role is not None and custom_role is not None:
            raise RoleRefused(
                400, "bad_request", "give either a role or a custom role, not both", "custom_role"
            )
        if custom_role:
            chosen = await self.get(agent.tenant_id, custom_role)
            if chosen is None:
                raise RoleRefused(400, "unknown_role", "no such custom role", "custom_role")
            base, new_custom = Role(chosen.base), chosen.name
            granted = parse_permissions(chosen.permissions)
        else:
            try:
                base = Role(role or agent.role)
            except ValueError:
                raise RoleRefused(400, "bad_request", "not a tenant role", "role") from None
            new_custom = None
            granted = role_permissions(base)
        if base not in TENANT_ROLES:
            raise RoleRefused(400, "bad_request", "not a tenant role", "role")
        if base.value == agent.role and new_custom == agent.custom_role:
            return None
        self.check_power_over(actor, agent)
        if not may_grant(actor, granted):
            raise _cannot_grant(granted, actor)
        await self._keep_an_admin(agent.tenant_id, {agent.id: (base, granted)})
        return base, new_custom

    @staticmethod
    def check_power_over(actor: Principal, agent: Agent) -> None:
        """403 ``cannot_grant`` unless ``actor`` holds every permission ``agent`` has:
        nobody re-roles, disables or resets someone with powers they lack."""
        theirs = agent_principal(agent).permissions
        if not may_grant(actor, theirs):
            raise _cannot_grant(theirs, actor)

    @staticmethod
    def check_grantable(actor: Principal, role: str) -> None:
        """403 ``cannot_grant`` unless ``actor`` holds every permission of built-in
        ``role`` (creating or inviting an agent with it)."""
        wanted = role_permissions(Role(role))
        if not may_grant(actor, wanted):
            raise _cannot_grant(wanted, actor)

    async def check_named(self, actor: Principal, name: str) -> None:
        """A role named by a setting (built-in or custom, e.g. an identity-provider group's):
        400 ``unknown_role`` if there is none, 403 ``cannot_grant`` unless ``actor`` holds
        all it grants -- nobody configures a way to hand out what they do not hold."""
        if name in {r.value for r in TENANT_ROLES}:
            self.check_grantable(actor, name)
            return
        role = await self.get(actor.tenant_id, name) if ROLE_NAME.match(name) else None
        if role is None:
            raise RoleRefused(400, "unknown_role", f"no role {name[:32]!r}", "group_roles")
        granted = parse_permissions(role.permissions)
        if not may_grant(actor, granted):
            raise _cannot_grant(granted, actor)

    async def check_disable(self, actor: Principal, agent: Agent) -> None:
        """Disabling ``agent`` needs power over them and must leave an admin."""
        self.check_power_over(actor, agent)
        await self._keep_an_admin(agent.tenant_id, {agent.id: None})

    async def holders(self, tenant_id: str) -> dict[str, int]:
        """Custom role name -> how many agents (enabled or not) hold it."""
        counts: dict[str, int] = {}
        for agent in await self._store.list_agents(tenant_id):
            if agent.custom_role is not None:
                counts[agent.custom_role] = counts.get(agent.custom_role, 0) + 1
        return counts

    async def _keep_an_admin(
        self,
        tenant_id: str,
        changes: dict[str, tuple[Role, frozenset[Permission]] | None],
    ) -> None:
        """409 ``last_admin`` if, after ``changes`` (agent id -> new base and permissions,
        or None for disabled), no enabled agent could manage agents any more."""
        for agent in await self._store.list_agents(tenant_id):
            if agent.disabled:
                continue
            if agent.id not in changes:
                if Permission.AGENT_MANAGE in agent_principal(agent).permissions:
                    return
                continue
            change = changes[agent.id]
            if change is not None and Permission.AGENT_MANAGE in (
                role_permissions(change[0]) & change[1]
            ):
                return
        raise RoleRefused(409, "last_admin", "the tenant would be left without an enabled admin")


def _validated(definition: RoleDefinition) -> tuple[str, Role, frozenset[Permission]]:
    name = definition.name
    if not ROLE_NAME.match(name) or name in _RESERVED:
        raise RoleRefused(
            400,
            "invalid_role_name",
            "role names are 2-32 lowercase letters, digits, '-' or '_', starting with a letter,"
            " and not a built-in role's name",
            "name",
        )
    if definition.base not in {r.value for r in TENANT_ROLES}:
        raise RoleRefused(400, "invalid_base", "base is agent, supervisor or admin", "base")
    base = Role(definition.base)
    known = {p.value for p in Permission}
    unknown = sorted(set(definition.permissions) - known)
    if unknown:
        raise RoleRefused(
            400, "invalid_permissions", f"no permission {unknown[0][:64]!r}", "permissions"
        )
    wanted = frozenset(Permission(p) for p in definition.permissions)
    if not wanted:
        raise RoleRefused(400, "invalid_permissions", "a role needs a permission", "permissions")
    beyond = sorted(p.value for p in wanted - role_permissions(base))
    if beyond:
        raise RoleRefused(
            400,
            "invalid_permissions",
            f"a custom role only narrows its base: {base.value} does not have {beyond[0]}",
            "permissions",
        )
    return name, base, wanted


def _cannot_grant(wanted: Iterable[Permission], actor: Principal) -> RoleRefused:
    missing = sorted(p.value for p in frozenset(wanted) - actor.permissions)
    return RoleRefused(
        403,
        "cannot_grant",
        f"you cannot hand out or take away permissions you do not hold ({', '.join(missing)})",
    )
