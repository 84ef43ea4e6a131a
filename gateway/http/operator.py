"""The installation operator's HTTP API (issue 11.4).

Operators are created only with the CLI (``cipherdesk operator add``) and log in at
``POST /api/login`` like agents (password + TOTP). They hold no tenant permission; tenant
admins hold none of these. Every route answers 403 ``forbidden`` to anyone but an
operator:

* ``GET /api/operator/tenants`` — every tenant (id, name, origins, frozen, created_at);
* ``POST /api/operator/tenants {"id","name","allowed_origins"?,"identity_mode"?}`` —
  create a tenant (201; 409 ``tenant_exists``; 400 ``bad_request`` / ``invalid_origin``);
* ``POST /api/operator/tenants/{id}/freeze {"frozen": bool}`` — freeze any tenant
  (404 ``not_found`` for an unknown id);
* ``GET /api/operator/settings`` — installation state: key ids in the ring, store and bus
  kinds, operator count (never key material or URLs with credentials);
* ``POST /api/emergency/rotate-keys`` — master-key rotation (``gateway/http/keys.py``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from aiohttp import web
from msgspec import Meta, Struct

from auth.roles import OPERATOR_SCOPE, InstallationPermission, Role, require_operator
from gateway.http.plumbing import authed, read_json
from gateway.http.public import ApiError
from gateway.http.tenant import FreezeBody
from gateway.services import SERVICES, Services, peer_ip
from gateway.sessions import AgentContext
from gateway.tenant_admin import (
    NewTenant,
    TenantRefused,
    create_tenant,
    is_real_tenant,
    set_frozen,
)


class CreateTenantBody(Struct, forbid_unknown_fields=True):
    id: Annotated[str, Meta(min_length=1, max_length=63)]
    name: Annotated[str, Meta(min_length=1, max_length=120)]
    allowed_origins: Annotated[list[Annotated[str, Meta(max_length=300)]], Meta(max_length=50)] = []
    identity_mode: Literal["off", "optional", "enforced"] = "off"


def _tenant_json(tenant: Any) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.name,
        "allowed_origins": tenant.allowed_origins,
        "identity_mode": tenant.identity_mode,
        "frozen": tenant.frozen,
        "created_at": tenant.created_at,
    }


def _refused(exc: TenantRefused) -> ApiError:
    status = 409 if exc.code == "tenant_exists" else 400
    return ApiError(status, exc.code, exc.message, field=exc.field)


@authed(InstallationPermission.SETTINGS)
async def list_tenants(request: web.Request, ctx: AgentContext) -> web.Response:
    svc: Services = request.app[SERVICES]
    require_operator(ctx.principal, InstallationPermission.SETTINGS)
    tenants = [t for t in await svc.store.list_tenants() if is_real_tenant(t)]
    return web.json_response({"tenants": [_tenant_json(t) for t in tenants]})


@authed(InstallationPermission.TENANT_CREATE)
async def add_tenant(request: web.Request, ctx: AgentContext) -> web.Response:
    svc: Services = request.app[SERVICES]
    require_operator(ctx.principal, InstallationPermission.TENANT_CREATE)
    body = await read_json(request, CreateTenantBody)
    try:
        tenant = await create_tenant(
            svc,
            NewTenant(body.id, body.name, tuple(body.allowed_origins), body.identity_mode),
            actor=ctx.agent.id,
            ip=peer_ip(request, svc),
        )
    except TenantRefused as exc:
        raise _refused(exc) from None
    return web.json_response({"tenant": _tenant_json(tenant)}, status=201)


@authed(InstallationPermission.TENANT_FREEZE)
async def freeze_tenant(request: web.Request, ctx: AgentContext) -> web.Response:
    svc: Services = request.app[SERVICES]
    require_operator(ctx.principal, InstallationPermission.TENANT_FREEZE)
    tenant_id = request.match_info["tenant_id"]
    tenant = await svc.store.get_tenant(tenant_id) if len(tenant_id) <= 64 else None
    if tenant is None or not is_real_tenant(tenant):
        raise ApiError(404, "not_found", "no such tenant")
    body = await read_json(request, FreezeBody)
    await set_frozen(svc, tenant, body.frozen, actor=ctx.agent.id, ip=peer_ip(request, svc))
    return web.json_response({"ok": True, "tenant": _tenant_json(tenant)})


@authed(InstallationPermission.SETTINGS)
async def settings(request: web.Request, ctx: AgentContext) -> web.Response:
    svc: Services = request.app[SERVICES]
    require_operator(ctx.principal, InstallationPermission.SETTINGS)
    operators = [
        a
        for a in await svc.store.list_agents(OPERATOR_SCOPE)
        if a.role == Role.OPERATOR.value and not a.disabled
    ]
    return web.json_response(
        {
            "key_ids": list(svc.keyring.key_ids),
            "store": svc.config.store_url.partition(":")[0],
            "bus": (svc.config.bus.url or "memory").partition(":")[0],
            "operators": len(operators),
            "tenants": sum(1 for t in await svc.store.list_tenants() if is_real_tenant(t)),
        }
    )


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/operator/tenants", list_tenants)
    r.add_post("/api/operator/tenants", add_tenant)
    r.add_post("/api/operator/tenants/{tenant_id}/freeze", freeze_tenant)
    r.add_get("/api/operator/settings", settings)
