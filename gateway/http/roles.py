"""HTTP API for roles (issue 14.3); the rules live in ``gateway/custom_roles.py``.

* ``GET /api/roles`` — the built-in roles with their permissions, the tenant's custom
  roles (base, permissions, description, how many agents hold each), every permission
  name, and what the caller may hand out (``grantable``).
* ``PUT /api/roles/{name} {"base", "permissions": [...], "description"?}`` — create (201)
  or replace (200) a custom role. Errors: 400 ``invalid_role_name`` / ``invalid_base`` /
  ``invalid_permissions`` / ``policy_blocked`` (the description), 403 ``cannot_grant``,
  409 ``too_many_roles`` / ``last_admin``.
* ``DELETE /api/roles/{name}`` — 404 ``not_found``, 409 ``role_in_use``.

Agents get a custom role with ``PATCH /api/agents/{id} {"custom_role": name}`` (``""``
returns them to their built-in role). All of it needs ``agent_manage``.
"""

from __future__ import annotations

from typing import Annotated, Any

from aiohttp import web
from msgspec import Meta, Struct

from auth.roles import TENANT_ROLES, Permission, role_permissions
from gateway.custom_roles import MAX_DESCRIPTION, RoleDefinition
from gateway.http.plumbing import authed, read_json, role_rules, services_of
from gateway.services import peer_ip
from gateway.sessions import AgentContext
from gateway.staff_text import screen_staff_text
from gateway.store.base import CustomRole


class DefineRoleBody(Struct, forbid_unknown_fields=True):
    base: Annotated[str, Meta(max_length=16)]
    permissions: Annotated[list[Annotated[str, Meta(max_length=64)]], Meta(max_length=32)]
    description: Annotated[str, Meta(max_length=MAX_DESCRIPTION * 2)] = ""


def _role_json(role: CustomRole, holders: int) -> dict[str, Any]:
    return {
        "name": role.name,
        "base": role.base,
        "permissions": list(role.permissions),
        "description": role.description,
        "holders": holders,
        "created_at": role.created_at,
        "updated_at": role.updated_at,
    }


@authed(Permission.AGENT_MANAGE)
async def list_roles(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /api/roles``."""
    svc = services_of(request)
    tenant_id = ctx.principal.tenant_id
    holders = await svc.custom_roles.holders(tenant_id)
    return web.json_response(
        {
            "builtin": [
                {"name": r.value, "permissions": sorted(p.value for p in role_permissions(r))}
                for r in TENANT_ROLES
            ],
            "custom": [
                _role_json(r, holders.get(r.name, 0))
                for r in await svc.custom_roles.roles(tenant_id)
            ],
            "permissions": [p.value for p in Permission],
            "grantable": sorted(p.value for p in ctx.principal.permissions),
        }
    )


@authed(Permission.AGENT_MANAGE)
async def define_role(request: web.Request, ctx: AgentContext) -> web.Response:
    """``PUT /api/roles/{name}``."""
    svc = services_of(request)
    body = await read_json(request, DefineRoleBody)
    description = body.description.strip()
    if description:
        description = await screen_staff_text(
            svc, ctx.principal.tenant_id, description, "description"
        )
    definition = RoleDefinition(
        name=request.match_info["name"][:64],
        base=body.base,
        permissions=tuple(body.permissions),
        description=description,
    )
    with role_rules():
        role, created = await svc.custom_roles.define(
            ctx.principal, definition, ip=peer_ip(request, svc)
        )
    holders = await svc.custom_roles.holders(role.tenant_id)
    return web.json_response(
        {"role": _role_json(role, holders.get(role.name, 0))}, status=201 if created else 200
    )


@authed(Permission.AGENT_MANAGE)
async def delete_role(request: web.Request, ctx: AgentContext) -> web.Response:
    """``DELETE /api/roles/{name}``."""
    svc = services_of(request)
    with role_rules():
        await svc.custom_roles.delete(
            ctx.principal, request.match_info["name"][:64], ip=peer_ip(request, svc)
        )
    return web.json_response({"ok": True})


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/roles", list_roles)
    r.add_put("/api/roles/{name}", define_role)
    r.add_delete("/api/roles/{name}", delete_role)
