"""Roles, the permission matrix, and tenant isolation."""

from __future__ import annotations

import pytest

from auth.roles import (
    OPERATOR_SCOPE,
    Forbidden,
    InstallationPermission,
    Permission,
    Principal,
    Role,
    require,
    require_operator,
    role_permissions,
)

P = Permission
SUPERVISOR_GRANTS = {
    P.CHAT_HANDLE,
    P.CHAT_WATCH,
    P.CHAT_TAKEOVER,
    P.FLAG_VIEW_ORIGINAL,
    P.POLICY_TEST,
    P.TRANSCRIPT_READ,
    P.QUALITY_READ,
}


def test_permission_matrix() -> None:
    assert role_permissions(Role.AGENT) == {P.CHAT_HANDLE}
    assert role_permissions(Role.SUPERVISOR) == SUPERVISOR_GRANTS
    assert role_permissions(Role.ADMIN) == set(Permission)
    assert len(Permission) == 13


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_can_follows_matrix_in_own_tenant(role: Role, permission: Permission) -> None:
    me = Principal(agent_id="a1", tenant_id="t1", role=role)
    assert me.can(permission, "t1") is (permission in role_permissions(role))


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_no_cross_tenant_anything(role: Role, permission: Permission) -> None:
    me = Principal(agent_id="a1", tenant_id="t1", role=role)
    for other in ("t2", "T1", "t1 ", "", None, "*"):
        assert me.can(permission, other) is False  # type: ignore[arg-type]
        with pytest.raises(Forbidden):
            require(me, permission, other)  # type: ignore[arg-type]


def test_require() -> None:
    admin = Principal("a", "t", Role.ADMIN)
    require(admin, P.EMERGENCY, "t")
    agent = Principal("b", "t", Role.AGENT)
    require(agent, P.CHAT_HANDLE, "t")
    with pytest.raises(Forbidden) as info:
        require(agent, P.AUDIT_READ, "t")
    assert info.value.permission is P.AUDIT_READ
    assert "audit_read" in str(info.value)


def test_role_ordering_is_by_rank_not_alphabet() -> None:
    assert Role.AGENT < Role.SUPERVISOR < Role.ADMIN
    assert sorted([Role.ADMIN, Role.AGENT, Role.SUPERVISOR]) == [
        Role.AGENT,
        Role.SUPERVISOR,
        Role.ADMIN,
    ]
    assert Role.ADMIN.at_least(Role.SUPERVISOR)
    assert Role.SUPERVISOR.at_least(Role.SUPERVISOR)
    assert not Role.AGENT.at_least(Role.SUPERVISOR)
    assert max(Role) is Role.ADMIN
    with pytest.raises(TypeError):
        _ = Role.ADMIN < "agent"


def test_roles_are_strings_for_storage() -> None:
    assert Role("supervisor") is Role.SUPERVISOR
    assert str(Role.ADMIN) == "admin"
    assert Permission("chat_takeover") is P.CHAT_TAKEOVER


def test_principal_is_frozen() -> None:
    me = Principal("a", "t", Role.AGENT)
    with pytest.raises(AttributeError):
        me.role = Role.ADMIN  # type: ignore[misc]


def test_operator_has_no_tenant_power_and_tenant_roles_no_installation_power() -> None:
    operator = Principal("op1", OPERATOR_SCOPE, Role.OPERATOR)
    admin = Principal("a1", "t", Role.ADMIN)
    assert role_permissions(Role.OPERATOR) == frozenset()
    assert operator.is_operator and not admin.is_operator
    assert not any(operator.can(p, OPERATOR_SCOPE) or operator.can(p, "t") for p in P)
    assert Role.OPERATOR < Role.AGENT and not Role.OPERATOR.at_least(Role.AGENT)
    for perm in InstallationPermission:
        require_operator(operator, perm)
        with pytest.raises(Forbidden):
            require_operator(admin, perm)
    # The role alone is not enough: an "operator" row filed under a real tenant is nobody.
    stray = Principal("x", "t", Role.OPERATOR)
    assert not stray.is_operator and stray.installation_permissions == frozenset()
    with pytest.raises(Forbidden):
        require_operator(stray, InstallationPermission.KEYS_ROTATE)
