"""A tenant's own settings and the emergency freeze."""

from typing import Annotated, Any, Literal

import structlog
from aiohttp import web
from msgspec import Meta, Struct

from auth.identity import MIN_SECRET_BYTES
from auth.roles import (
    Permission,
    require,
)
from gateway.governance.wiring import governance_of
from gateway.http.plumbing import (
    Name,
    QueueName,
    authed,
    ok,
    own_tenant,
    read_json,
    services_of,
    tenant_json,
)
from gateway.http.policy import check_policy
from gateway.http.public import ApiError
from gateway.invites import MAX_TTL_HOURS, MIN_TTL_HOURS
from gateway.invites import TTL_SETTING as INVITE_TTL_SETTING
from gateway.services import Services, peer_ip
from gateway.sessions import AgentContext
from gateway.store.base import Tenant
from gateway.tenant_admin import set_frozen
from gateway.tenants import DEFAULT_QUEUE, MAX_QUEUES, normalize_origin

log = structlog.get_logger("cipherdesk.api")


class PatchTenantBody(Struct, forbid_unknown_fields=True):
    name: Name | None = None
    allowed_origins: (
        Annotated[list[Annotated[str, Meta(max_length=300)]], Meta(max_length=50)] | None
    ) = None
    identity_mode: Literal["off", "optional", "enforced"] | None = None
    identity_secrets: (
        Annotated[list[Annotated[str, Meta(max_length=512)]], Meta(max_length=2)] | None
    ) = None
    policy: dict[str, Any] | None = None
    allowed_link_domains: (
        Annotated[list[Annotated[str, Meta(max_length=253)]], Meta(max_length=500)] | None
    ) = None
    frozen: bool | None = None
    queues: Annotated[list[QueueName], Meta(max_length=MAX_QUEUES)] | None = None
    invite_ttl_hours: Annotated[int, Meta(ge=MIN_TTL_HOURS, le=MAX_TTL_HOURS)] | None = None


class FreezeBody(Struct, forbid_unknown_fields=True):
    frozen: bool


@authed(Permission.TENANT_MANAGE)
async def get_tenant(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    tenant = await own_tenant(svc, ctx)
    require(ctx.principal, Permission.TENANT_MANAGE, tenant.id)
    return web.json_response({"tenant": tenant_json(svc, tenant)})


async def _set_frozen(svc: Services, tenant: Tenant, frozen: bool, actor: str, ip: str) -> None:
    await set_frozen(svc, tenant, frozen, actor=actor, ip=ip)


@authed(Permission.TENANT_MANAGE)
async def patch_tenant(request: web.Request, ctx: AgentContext) -> web.Response:

    svc = services_of(request)
    tenant = await own_tenant(svc, ctx)
    require(ctx.principal, Permission.TENANT_MANAGE, tenant.id)
    body = await read_json(request, PatchTenantBody)
    ip = peer_ip(request, svc)
    changed: list[str] = []
    if body.name is not None:
        tenant.name = body.name.strip() or tenant.name
        changed.append("name")
    if body.allowed_origins is not None:
        origins = []
        for raw in body.allowed_origins:
            normalized = normalize_origin(raw)
            if normalized is None:
                raise ApiError(
                    400,
                    "invalid_origin",
                    "origins look like https://shop.example.com (no path)",
                    field="allowed_origins",
                )
            origins.append(normalized)
        tenant.allowed_origins = sorted(set(origins))
        changed.append("allowed_origins")
    if body.identity_mode is not None:
        tenant.identity_mode = body.identity_mode
        changed.append("identity_mode")
    if body.identity_secrets is not None:
        if any(len(s.encode()) < MIN_SECRET_BYTES for s in body.identity_secrets):
            raise ApiError(
                400,
                "invalid_secret",
                f"identity secrets need at least {MIN_SECRET_BYTES} bytes",
                field="identity_secrets",
            )
        tenant.identity_secrets_sealed = (
            svc.tenants.seal_identity_secrets(tenant.id, body.identity_secrets)
            if body.identity_secrets
            else None
        )
        changed.append("identity_secrets")
    if tenant.identity_mode == "enforced" and not tenant.identity_secrets_sealed:
        raise ApiError(
            400,
            "invalid_secret",
            "enforced identity needs an identity secret",
            field="identity_secrets",
        )
    if body.policy is not None or body.allowed_link_domains is not None:
        # The message policy is its own permission (a token or role that manages origins
        # and secrets need not be able to switch PII masking off).
        require(ctx.principal, Permission.POLICY_MANAGE, tenant.id)
    settings = dict(tenant.settings)
    if body.policy is not None:
        settings["policy"] = body.policy
        changed.append("policy")
    if body.allowed_link_domains is not None:
        settings["allowed_link_domains"] = body.allowed_link_domains
        changed.append("allowed_link_domains")
    if body.queues is not None:
        settings["queues"] = sorted(set(body.queues) - {DEFAULT_QUEUE})
        tenant.settings = settings
        changed.append("queues")
    if body.invite_ttl_hours is not None:
        settings[INVITE_TTL_SETTING] = body.invite_ttl_hours
        tenant.settings = settings
        changed.append(INVITE_TTL_SETTING)
    if body.policy is not None or body.allowed_link_domains is not None:
        await check_policy(svc, tenant.id, settings)
        settings.pop("managed_demo", None)
        tenant.settings = settings
    frozen_changed = body.frozen is not None and body.frozen != tenant.frozen
    if frozen_changed:
        tenant.frozen = bool(body.frozen)
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate(tenant.id)
    if changed:
        await svc.auditor.record(
            "tenant.updated",
            tenant_id=tenant.id,
            actor=ctx.agent.id,
            target=tenant.id,
            ip=ip,
            fields=changed,
        )
    if frozen_changed:
        await _set_frozen(svc, tenant, tenant.frozen, ctx.agent.id, ip)
    return web.json_response({"tenant": tenant_json(svc, tenant)})


@authed(Permission.EMERGENCY)
async def freeze(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    tenant = await own_tenant(svc, ctx)
    require(ctx.principal, Permission.EMERGENCY, tenant.id)
    body = await read_json(request, FreezeBody)
    await _set_frozen(svc, tenant, body.frozen, ctx.agent.id, peer_ip(request, svc))

    await governance_of(svc).incidents.note(  # the emergency panel keeps the record
        tenant.id, ctx.agent.id, "tenant.frozen" if body.frozen else "tenant.unfrozen"
    )
    return ok(frozen=body.frozen)


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/tenant", get_tenant)
    r.add_patch("/api/tenant", patch_tenant)
    r.add_post("/api/emergency/freeze", freeze)
