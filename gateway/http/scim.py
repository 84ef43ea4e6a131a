"""SCIM 2.0 endpoints (issue 20.3) under ``/scim/v2``; the protocol lives in
``gateway/scim.py``.

Authentication is a scoped API token (``Authorization: Bearer cdt_...``, created on the
admin page) holding ``agent_manage`` -- and every permission of the roles its groups
map to, since nobody hands out what they do not hold. Each call is rate limited and
audited like any token use. Every answer, errors included, is ``application/scim+json``
in SCIM's shapes (RFC 7644 §3.12 errors with ``scimType``), because identity providers
parse them.

* ``GET /scim/v2/ServiceProviderConfig`` -- what is supported (PATCH yes, bulk, sort,
  change password and ETags no, filter ``eq``/``and`` up to 100 results);
  ``GET /scim/v2/Schemas`` and ``/ResourceTypes`` -- the attributes kept, the two types.
* ``GET|POST /scim/v2/Users``, ``GET|PUT|PATCH|DELETE /scim/v2/Users/{id}``.
* ``GET|POST /scim/v2/Groups``, ``GET|PUT|PATCH|DELETE /scim/v2/Groups/{id}`` (PATCH
  answers 204, as Entra expects).

The admin API beside it: ``GET|PUT /api/scim/settings`` (group display name -> role,
default role) and ``POST /api/agents/{id}/activation-link`` (a one-time link on which a
provisioned agent chooses a password and enrols a second factor).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import Meta, Struct

from auth.roles import Permission
from gateway.http.agents import target_agent
from gateway.http.invites import invite_link, invites_of
from gateway.http.plumbing import (
    authed,
    own_tenant,
    read_json,
    role_rules,
    services_of,
    store_setting,
)
from gateway.http.public import ApiError
from gateway.invites import ACTIVATE
from gateway.scim import (
    SCHEMA_ERROR,
    SCHEMA_LIST,
    SETTING,
    ScimError,
    ScimErrorOut,
    ScimGroupIn,
    ScimGroupList,
    ScimPatch,
    ScimSettings,
    ScimUserIn,
    ScimUserList,
    resource_type_list,
    schema_list,
)
from gateway.services import peer_ip
from gateway.sessions import AgentContext

SCIM_TYPE = "application/scim+json"
MEDIA = (SCIM_TYPE, "application/json")
_STATUS_TYPES = {400: "invalidValue", 409: "uniqueness"}

Handler = Callable[[web.Request, AgentContext], Awaitable[web.StreamResponse]]


def scim_answer(body: Struct | None, status: int = 200) -> web.Response:
    if body is None:
        return web.Response(status=status)
    return web.Response(body=msgspec.json.encode(body), status=status, content_type=SCIM_TYPE)


def _error(status: int, detail: str, scim_type: str | None = None) -> web.Response:
    return scim_answer(ScimErrorOut([SCHEMA_ERROR], str(status), detail[:300], scim_type), status)


def scim_route(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An ``agent_manage`` route whose every refusal is a SCIM error document: the API's
    own (401, 403, 415, 429...) are translated, with their ``Retry-After``."""
    inner = authed(Permission.AGENT_MANAGE)(handler)

    @functools.wraps(inner)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await inner(request)
        except ScimError as exc:
            return _error(exc.status, exc.detail, exc.scim_type)
        except ApiError as exc:
            detail = "request refused"
            try:
                detail = str(json.loads(exc.text or "{}")["error"]["message"])
            except (ValueError, KeyError, TypeError):
                pass
            answer = _error(exc.status_code, detail, _STATUS_TYPES.get(exc.status_code))
            if "Retry-After" in exc.headers:
                answer.headers["Retry-After"] = exc.headers["Retry-After"]
            return answer

    wrapped.required_permission = Permission.AGENT_MANAGE  # type: ignore[attr-defined]
    wrapped.accepts_api_tokens = True  # type: ignore[attr-defined]
    return wrapped


def _page(request: web.Request) -> tuple[int, int]:
    try:
        start = int(request.query.get("startIndex", "1"))
        count = int(request.query.get("count", "100"))
    except ValueError:
        raise ScimError(400, "startIndex and count are integers", "invalidValue") from None
    return max(1, start), max(0, min(count, 100))


def _members_wanted(request: web.Request) -> bool:
    excluded = request.query.get("excludedAttributes", "")
    return "members" not in {a.strip().lower() for a in excluded.split(",")}


def _id(request: web.Request) -> str:
    value = request.match_info["id"]
    if len(value) > 64:
        raise ScimError(404, "no such resource")
    return value


class ServiceProviderConfig(Struct, rename="camel"):
    """RFC 7643 §5: what this service provider supports."""

    schemas: list[str]
    patch: dict[str, bool]
    bulk: dict[str, Any]
    filter: dict[str, Any]
    change_password: dict[str, bool]
    sort: dict[str, bool]
    etag: dict[str, bool]
    authentication_schemes: list[dict[str, Any]]


@scim_route
async def service_provider_config(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /scim/v2/ServiceProviderConfig``."""
    return scim_answer(
        ServiceProviderConfig(
            schemas=["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            patch={"supported": True},
            bulk={"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
            filter={"supported": True, "maxResults": 100},
            change_password={"supported": False},
            sort={"supported": False},
            etag={"supported": False},
            authentication_schemes=[
                {
                    "type": "oauthbearertoken",
                    "name": "Bearer token",
                    "description": "A cipherdesk API token with agent_manage",
                    "primary": True,
                }
            ],
        )
    )


@scim_route
async def schemas(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /scim/v2/Schemas``."""
    return scim_answer(schema_list())


@scim_route
async def resource_types(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /scim/v2/ResourceTypes``."""
    return scim_answer(resource_type_list())


@scim_route
async def list_users(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /scim/v2/Users?filter=userName eq "..."``."""
    svc = services_of(request)
    start, count = _page(request)
    found, total = await svc.scim.list_users(
        ctx.principal.tenant_id, request.query.get("filter"), start, count
    )
    return scim_answer(ScimUserList([SCHEMA_LIST], total, start, len(found), found))


@scim_route
async def create_user(request: web.Request, ctx: AgentContext) -> web.Response:
    """``POST /scim/v2/Users``: 201 with the User."""
    svc = services_of(request)
    body = await read_json(request, ScimUserIn, media_types=MEDIA)
    user = await svc.scim.create_user(ctx.principal, body, peer_ip(request, svc))
    return scim_answer(user, 201)


@scim_route
async def get_user(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /scim/v2/Users/{id}``."""
    svc = services_of(request)
    return scim_answer(await svc.scim.get_user(ctx.principal.tenant_id, _id(request)))


@scim_route
async def replace_user(request: web.Request, ctx: AgentContext) -> web.Response:
    """``PUT /scim/v2/Users/{id}`` (Okta updates this way)."""
    svc = services_of(request)
    body = await read_json(request, ScimUserIn, media_types=MEDIA)
    user = await svc.scim.replace_user(ctx.principal, _id(request), body, peer_ip(request, svc))
    return scim_answer(user)


@scim_route
async def patch_user(request: web.Request, ctx: AgentContext) -> web.Response:
    """``PATCH /scim/v2/Users/{id}``: 200 with the User."""
    svc = services_of(request)
    body = await read_json(request, ScimPatch, media_types=MEDIA)
    user = await svc.scim.patch_user(ctx.principal, _id(request), body, peer_ip(request, svc))
    return scim_answer(user)


@scim_route
async def delete_user(request: web.Request, ctx: AgentContext) -> web.Response:
    """``DELETE /scim/v2/Users/{id}``: 204; the agent is disabled, its record forgotten."""
    svc = services_of(request)
    await svc.scim.delete_user(ctx.principal, _id(request), peer_ip(request, svc))
    return scim_answer(None, 204)


@scim_route
async def list_groups(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /scim/v2/Groups?filter=displayName eq "..."&excludedAttributes=members``."""
    svc = services_of(request)
    start, count = _page(request)
    found, total = await svc.scim.list_groups(
        ctx.principal.tenant_id,
        request.query.get("filter"),
        start,
        count,
        _members_wanted(request),
    )
    return scim_answer(ScimGroupList([SCHEMA_LIST], total, start, len(found), found))


@scim_route
async def create_group(request: web.Request, ctx: AgentContext) -> web.Response:
    """``POST /scim/v2/Groups``: 201 with the Group."""
    svc = services_of(request)
    body = await read_json(request, ScimGroupIn, media_types=MEDIA)
    group = await svc.scim.create_group(ctx.principal, body, peer_ip(request, svc))
    return scim_answer(group, 201)


@scim_route
async def get_group(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /scim/v2/Groups/{id}``."""
    svc = services_of(request)
    group = await svc.scim.get_group(
        ctx.principal.tenant_id, _id(request), _members_wanted(request)
    )
    return scim_answer(group)


@scim_route
async def replace_group(request: web.Request, ctx: AgentContext) -> web.Response:
    """``PUT /scim/v2/Groups/{id}``."""
    svc = services_of(request)
    body = await read_json(request, ScimGroupIn, media_types=MEDIA)
    group = await svc.scim.replace_group(ctx.principal, _id(request), body, peer_ip(request, svc))
    return scim_answer(group)


@scim_route
async def patch_group(request: web.Request, ctx: AgentContext) -> web.Response:
    """``PATCH /scim/v2/Groups/{id}``: 204."""
    svc = services_of(request)
    body = await read_json(request, ScimPatch, media_types=MEDIA)
    await svc.scim.patch_group(ctx.principal, _id(request), body, peer_ip(request, svc))
    return scim_answer(None, 204)


@scim_route
async def delete_group(request: web.Request, ctx: AgentContext) -> web.Response:
    """``DELETE /scim/v2/Groups/{id}``: 204; its members' roles are worked out again."""
    svc = services_of(request)
    await svc.scim.delete_group(ctx.principal, _id(request), peer_ip(request, svc))
    return scim_answer(None, 204)


# -- the admin side ----------------------------------------------------------------------
GroupName = Annotated[str, Meta(min_length=1, max_length=256)]
RoleRef = Annotated[str, Meta(min_length=2, max_length=32)]


class ScimSettingsBody(Struct, forbid_unknown_fields=True):
    """Which role each identity-provider group gives; ``default_role`` for the rest."""

    group_roles: Annotated[dict[GroupName, RoleRef], Meta(max_length=100)]
    default_role: RoleRef = "agent"


class ScimSettingsOut(Struct):
    group_roles: dict[str, str]
    default_role: str


class ActivationLink(Struct):
    link: str
    expires_at: float


@authed(Permission.AGENT_MANAGE)
async def get_settings(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /api/scim/settings``."""
    svc = services_of(request)
    settings = ScimSettings.of(await svc.tenants.get(ctx.principal.tenant_id))
    return web.json_response(settings.as_json())


@authed(Permission.AGENT_MANAGE)
async def put_settings(request: web.Request, ctx: AgentContext) -> web.Response:
    """``PUT /api/scim/settings``: every role named must exist (built-in or custom) and be
    within the caller's own permissions (400 ``unknown_role``, 403 ``cannot_grant``)."""
    svc = services_of(request)
    body = await read_json(request, ScimSettingsBody)
    tenant_id = ctx.principal.tenant_id
    with role_rules():
        for role in sorted({*body.group_roles.values(), body.default_role}):
            await svc.custom_roles.check_named(ctx.principal, role)
    tenant = await own_tenant(svc, ctx)
    settings = ScimSettings(dict(body.group_roles), body.default_role)
    await store_setting(svc, tenant, SETTING, settings.as_json())
    await svc.auditor.record(
        "scim.settings_changed",
        tenant_id=tenant_id,
        actor=ctx.agent.id,
        ip=peer_ip(request, svc),
        groups=len(settings.group_roles),
        default_role=settings.default_role,
    )
    return web.json_response(settings.as_json())


@authed(Permission.AGENT_MANAGE)
async def activation_link(request: web.Request, ctx: AgentContext) -> web.Response:
    """``POST /api/agents/{agent_id}/activation-link``: only for a provisioned agent that
    has not activated (409 ``already_active`` otherwise) and has no permission the caller
    lacks (403 ``cannot_grant``); earlier links are revoked."""
    svc = services_of(request)
    agent = await target_agent(request, ctx, Permission.AGENT_MANAGE)
    # The link's holder takes the account over: only for someone with no more power than
    # the caller, as for an MFA reset (403 cannot_grant).
    with role_rules():
        svc.custom_roles.check_power_over(ctx.principal, agent)
    if await svc.store.scim_user(agent.tenant_id, agent.id) is None or agent.totp_confirmed:
        raise ApiError(
            409, "already_active", "only a provisioned agent that never signed in needs one"
        )
    if agent.disabled:
        raise ApiError(409, "agent_disabled", "the identity provider disabled this agent")
    issued = await invites_of(svc).create_agent_link(
        agent, ACTIVATE, actor=ctx.agent.id, ip=peer_ip(request, svc)
    )
    link = invite_link(request, svc, issued)
    return web.json_response({"link": link, "expires_at": issued.invite.expires_at})


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/scim/v2/ServiceProviderConfig", service_provider_config)
    r.add_get("/scim/v2/Schemas", schemas)
    r.add_get("/scim/v2/ResourceTypes", resource_types)
    r.add_get("/scim/v2/Users", list_users)
    r.add_post("/scim/v2/Users", create_user)
    r.add_get("/scim/v2/Users/{id}", get_user)
    r.add_put("/scim/v2/Users/{id}", replace_user)
    r.add_patch("/scim/v2/Users/{id}", patch_user)
    r.add_delete("/scim/v2/Users/{id}", delete_user)
    r.add_get("/scim/v2/Groups", list_groups)
    r.add_post("/scim/v2/Groups", create_group)
    r.add_get("/scim/v2/Groups/{id}", get_group)
    r.add_put("/scim/v2/Groups/{id}", replace_group)
    r.add_patch("/scim/v2/Groups/{id}", patch_group)
    r.add_delete("/scim/v2/Groups/{id}", delete_group)
    r.add_get("/api/scim/settings", get_settings)
    r.add_put("/api/scim/settings", put_settings)
    r.add_post("/api/agents/{agent_id}/activation-link", activation_link)
