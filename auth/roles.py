"""Roles, permissions and tenant-scoped authorisation for agents and operators.

Least privilege, as the handbooks require: each role gets only the permissions it
needs, and *no* permission crosses a tenant boundary, for any role (an admin of
tenant A is nobody in tenant B; operating several tenants means several accounts).
Every check is explicit about the tenant of the resource being touched.

Installation-wide actions (master-key rotation, creating tenants, freezing any tenant,
global settings) belong to the **installation operator** alone (issue 11.4): a role
created only with the CLI (``cipherdesk operator add``), holding no tenant permission at
all, checked with :func:`require_operator`. Tenant admins can never reach them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "OPERATOR_SCOPE",
    "Forbidden",
    "InstallationPermission",
    "Permission",
    "Principal",
    "Role",
    "may_grant",
    "parse_permissions",
    "require",
    "require_operator",
    "role_permissions",
]

OPERATOR_SCOPE = "~installation"
"""The reserved id operator accounts are filed under. It is outside the tenant-id grammar
(``[a-z0-9][a-z0-9_-]*``), so no tenant can ever be created with it; the gateway keeps a
frozen placeholder row for it only because the store ties every account to a tenant row.
It is not a tenant: it has no origins, no chats, and grants nothing."""


class Role(StrEnum):
    """An agent's role, ordered ``AGENT < SUPERVISOR < ADMIN``.

    Order comparisons use rank, not the alphabet (plain ``str`` ordering would put
    "admin" below "agent"); comparing with anything but a Role is a TypeError.
    ``OPERATOR`` ranks below every tenant role: it holds no tenant permission, so a
    rank comparison can never hand it tenant powers.
    """

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    OPERATOR = "operator"

    @property
    def rank(self) -> int:
        """0 for agent, 1 for supervisor, 2 for admin."""
        return _RANK[self]

    def at_least(self, other: Role) -> bool:
        """True if this role is ``other`` or above."""
        return self.rank >= Role(other).rank

    def _other_rank(self, other: object) -> int:
        if not isinstance(other, Role):
            raise TypeError(f"cannot order Role against {type(other).__name__}")
        return other.rank

    def __lt__(self, other: object) -> bool:
        return self.rank < self._other_rank(other)

    def __le__(self, other: object) -> bool:
        return self.rank <= self._other_rank(other)

    def __gt__(self, other: object) -> bool:
        return self.rank > self._other_rank(other)

    def __ge__(self, other: object) -> bool:
        return self.rank >= self._other_rank(other)


_RANK = {Role.OPERATOR: -1, Role.AGENT: 0, Role.SUPERVISOR: 1, Role.ADMIN: 2}

TENANT_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
"""The roles a tenant account can have (the API and ``agent add`` accept only these)."""


class Permission(StrEnum):
    """Something an agent may do within their tenant."""

    CHAT_HANDLE = "chat_handle"
    """Accept, answer, transfer and close chats assigned to oneself."""
    CHAT_WATCH = "chat_watch"
    """Watch other agents' live chats."""
    CHAT_TAKEOVER = "chat_takeover"
    """Take a live chat over from another agent."""
    FLAG_VIEW_ORIGINAL = "flag_view_original"
    """See the unmasked text of a flagged message (audited)."""
    AUDIT_READ = "audit_read"
    """Read the audit log."""
    AGENT_MANAGE = "agent_manage"
    """Create, disable and re-role agents; reset their credentials."""
    TENANT_MANAGE = "tenant_manage"
    """Change tenant settings: origins, identity secrets, modes, retention."""
    POLICY_MANAGE = "policy_manage"
    """Edit the message policy (keywords, PII, links)."""
    POLICY_TEST = "policy_test"
    """Run text through the policy without sending it."""
    PLUGIN_MANAGE = "plugin_manage"
    """Configure helpdesk plugins and their scopes."""
    EMERGENCY = "emergency"
    """Use the emergency panel: cut connections, revoke sessions, force resets."""
    TRANSCRIPT_READ = "transcript_read"
    """Read transcripts of closed chats."""
    QUALITY_READ = "quality_read"
    """See the service-quality report (per agent, queue and day; no text)."""


_AGENT = frozenset({Permission.CHAT_HANDLE})
_SUPERVISOR = _AGENT | {
    Permission.CHAT_WATCH,
    Permission.CHAT_TAKEOVER,
    Permission.FLAG_VIEW_ORIGINAL,
    Permission.POLICY_TEST,
    Permission.TRANSCRIPT_READ,
    Permission.QUALITY_READ,
}
_ADMIN = frozenset(Permission)
_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.AGENT: _AGENT,
    Role.SUPERVISOR: frozenset(_SUPERVISOR),
    Role.ADMIN: _ADMIN,
    Role.OPERATOR: frozenset(),
}


class InstallationPermission(StrEnum):
    """Something only the installation operator may do (it spans every tenant)."""

    KEYS_ROTATE = "keys_rotate"
    """Rotate the master key (rewraps every tenant's keys and secrets)."""
    TENANT_CREATE = "tenant_create"
    """Create tenants."""
    TENANT_FREEZE = "tenant_freeze"
    """Freeze or unfreeze any tenant."""
    SETTINGS = "settings"
    """Read installation-wide settings and state."""


OPERATOR_PERMISSIONS = frozenset(InstallationPermission)


def role_permissions(role: Role) -> frozenset[Permission]:
    """The permissions ``role`` grants (within its own tenant only)."""
    return _GRANTS[Role(role)]


class Forbidden(Exception):
    """An authorisation check failed; the gateway answers 403 / closes with 4403.

    The message names the permission, never the resource or other tenants.
    """

    def __init__(
        self, permission: Permission | InstallationPermission, tenant_id: str | None = None
    ) -> None:
        super().__init__(f"not allowed: {permission.value}")
        self.permission = permission
        self.tenant_id = tenant_id


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated agent, as the gateway knows it for one request."""

    agent_id: str
    tenant_id: str
    role: Role
    scope: frozenset[str] | None = None
    """For a scoped API token: the permission names it carries. The principal may do only
    what both its role *and* the scope allow; None (an interactive session) is the role."""
    queues: frozenset[str] | None = None
    """The queues whose waiting chats this agent sees and may accept (queue scoping);
    None: every queue of the tenant."""
    granted: frozenset[Permission] | None = None
    """For an agent holding a custom role: that role's permissions. They only ever narrow
    the built-in role (anything outside it is ignored); None: the built-in role's."""

    def sees_queue(self, queue: str) -> bool:
        """May this principal see (and take) chats waiting in ``queue``?"""
        return self.queues is None or queue in self.queues

    @property
    def permissions(self) -> frozenset[Permission]:
        """Everything this principal may do in its own tenant."""
        granted = role_permissions(self.role)
        if self.granted is not None:
            granted = granted & self.granted
        if self.scope is None:
            return granted
        return frozenset(p for p in granted if p.value in self.scope)

    @property
    def is_operator(self) -> bool:
        """An installation operator: installation-wide actions, no tenant powers."""
        return self.role is Role.OPERATOR and self.tenant_id == OPERATOR_SCOPE

    @property
    def installation_permissions(self) -> frozenset[InstallationPermission]:
        """Installation-wide permissions (all of them for an operator, else none)."""
        if not self.is_operator:
            return frozenset()
        if self.scope is None:
            return OPERATOR_PERMISSIONS
        return frozenset(p for p in OPERATOR_PERMISSIONS if p.value in self.scope)

    def can(self, permission: Permission, tenant_id: str) -> bool:
        """True only if the role grants ``permission`` AND ``tenant_id`` is ours."""
        if not isinstance(tenant_id, str) or not tenant_id or tenant_id != self.tenant_id:
            return False
        return permission in self.permissions


def parse_permissions(names: Iterable[str]) -> frozenset[Permission]:
    """The tenant permissions named in ``names``; unknown names are dropped (a stored
    custom role naming a permission this release no longer has grants nothing by it)."""
    known = {p.value: p for p in Permission}
    return frozenset(known[n] for n in names if n in known)


def may_grant(principal: Principal, permissions: Iterable[Permission]) -> bool:
    """True if ``principal`` holds every one of ``permissions`` itself.

    Nobody hands out what they do not have: an admin whose custom role lacks, say,
    ``flag_view_original`` may not create a supervisor (who has it), define a role with
    it, or re-role an agent who has it (that would be taking power over someone above)."""
    return frozenset(permissions) <= principal.permissions


def require(principal: Principal, permission: Permission, tenant_id: str) -> None:
    """Raise :class:`Forbidden` unless ``principal.can(permission, tenant_id)``."""
    if not principal.can(permission, tenant_id):
        raise Forbidden(permission, tenant_id)


def require_operator(principal: Principal, permission: InstallationPermission) -> None:
    """Raise :class:`Forbidden` unless ``principal`` is an installation operator."""
    if permission not in principal.installation_permissions:
        raise Forbidden(permission)
