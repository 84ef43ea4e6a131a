"""The tenant's policy: test a text, the settings schema, keyword lists."""

import asyncio
from typing import Annotated, Any, Literal

import structlog
from aiohttp import web
from msgspec import Meta, Struct

from auth.roles import (
    Permission,
    require,
)
from gateway.http.plumbing import authed, ok, own_tenant, read_json, services_of
from gateway.http.public import ApiError
from gateway.policy import PolicyConfigError
from gateway.policy.describe import effective_table
from gateway.policy.lists import MAX_LIST_BYTES, MAX_LISTS, MAX_TENANT_TERMS, check_name
from gateway.policy.schema import describe
from gateway.policy_lists import delete_keyword_list as delete
from gateway.policy_lists import save_keyword_list
from gateway.services import Services, peer_ip
from gateway.sessions import AgentContext

log = structlog.get_logger("cipherdesk.api")


class PolicyTestBody(Struct, forbid_unknown_fields=True):
    text: Annotated[str, Meta(max_length=20_000)]
    direction: Literal["customer", "agent"] = "customer"
    tenant: Annotated[str, Meta(max_length=64)] | None = None


@authed(Permission.POLICY_TEST)
async def policy_test(request: web.Request, ctx: AgentContext) -> web.Response:

    svc = services_of(request)
    body = await read_json(request, PolicyTestBody)
    tenant_id = body.tenant or ctx.principal.tenant_id
    require(ctx.principal, Permission.POLICY_TEST, tenant_id)
    tenant = await svc.tenants.get(tenant_id)
    if tenant is None:
        raise ApiError(404, "not_found", "no such tenant")
    engine = await svc.policies.engine(tenant.id, tenant.settings)
    decision = await asyncio.to_thread(engine.evaluate, body.text, body.direction)
    # Audited without the text: who probed the policy, and what it decided.
    await svc.auditor.record(
        "policy.tested",
        tenant_id=tenant.id,
        actor=ctx.agent.id,
        ip=peer_ip(request, svc),
        direction=body.direction,
        outcome=decision.action,
        kinds=sorted(decision.kinds),
        chars=len(body.text),
    )
    return web.json_response(engine.as_dict(decision))


async def check_policy(svc: Services, tenant_id: str, settings: dict[str, Any]) -> None:
    """Validate new policy settings strictly (unknown keys refused, no server paths) and
    build the engine off the event loop under its time budget before anything is stored."""

    registry = svc.policies
    try:
        config = registry.config_for(settings, strict=True)
        await registry.build(tenant_id, settings, config=config)
    except PolicyConfigError as exc:
        raise ApiError(400, "invalid_policy", str(exc)[:300], field="policy") from None


class KeywordListBody(Struct, forbid_unknown_fields=True):
    text: Annotated[str, Meta(max_length=50_000)]


@authed(Permission.TENANT_MANAGE)
async def policy_schema(request: web.Request, ctx: AgentContext) -> web.Response:
    """The policy schema, defaults and the tenant's effective per-audience table."""

    svc = services_of(request)
    tenant = await own_tenant(svc, ctx)
    engine = await svc.policies.engine(tenant.id, tenant.settings)
    return web.json_response({"settings": describe(), "kinds": effective_table(engine.config)})


@authed(Permission.POLICY_MANAGE)
async def list_keyword_lists(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    tenant = await own_tenant(svc, ctx)
    records = await svc.store.list_keyword_lists(tenant.id)
    return web.json_response(
        {
            "lists": [
                {
                    "name": r.name,
                    "terms": r.terms,
                    "bytes": len(r.body.encode()),
                    "digest": r.digest,
                    "updated_at": r.updated_at,
                }
                for r in records
            ],
            "limits": {
                "lists": MAX_LISTS,
                "bytes_per_list": MAX_LIST_BYTES,
                "terms_per_tenant": MAX_TENANT_TERMS,
            },
        }
    )


def _list_name(request: web.Request) -> str:
    try:
        return check_name(request.match_info["name"])
    except PolicyConfigError as exc:
        raise ApiError(400, "invalid_keyword_list", str(exc), field="name") from None


@authed(Permission.POLICY_MANAGE)
async def get_keyword_list(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    tenant = await own_tenant(svc, ctx)
    name = _list_name(request)
    for record in await svc.store.list_keyword_lists(tenant.id):
        if record.name == name:
            return web.json_response({"name": name, "text": record.body, "terms": record.terms})
    raise ApiError(404, "not_found", "no such keyword list")


@authed(Permission.POLICY_MANAGE)
async def put_keyword_list(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    tenant = await own_tenant(svc, ctx)
    name = _list_name(request)
    body = await read_json(request, KeywordListBody)
    try:
        parsed = await save_keyword_list(
            svc.store, tenant, name, body.text, ctx.agent.id, svc.clock()
        )
    except PolicyConfigError as exc:
        raise ApiError(400, "invalid_keyword_list", str(exc)[:300], field="text") from None
    svc.tenants.invalidate(tenant.id)
    await svc.auditor.record(
        "policy.keyword_list_saved",
        tenant_id=tenant.id,
        actor=ctx.agent.id,
        target=name,
        ip=peer_ip(request, svc),
        terms=len(parsed.rules),
    )
    return ok(name=name, terms=len(parsed.rules), digest=parsed.digest)


@authed(Permission.POLICY_MANAGE)
async def delete_keyword_list(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    tenant = await own_tenant(svc, ctx)
    name = _list_name(request)
    if not await delete(svc.store, tenant, name):
        raise ApiError(404, "not_found", "no such keyword list")
    svc.tenants.invalidate(tenant.id)
    await svc.auditor.record(
        "policy.keyword_list_deleted",
        tenant_id=tenant.id,
        actor=ctx.agent.id,
        target=name,
        ip=peer_ip(request, svc),
    )
    return ok(name=name)


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/policy/test", policy_test)
    r.add_get("/api/policy/schema", policy_schema)
    r.add_get("/api/policy/keyword-lists", list_keyword_lists)
    r.add_get("/api/policy/keyword-lists/{name}", get_keyword_list)
    r.add_put("/api/policy/keyword-lists/{name}", put_keyword_list)
    r.add_delete("/api/policy/keyword-lists/{name}", delete_keyword_list)
