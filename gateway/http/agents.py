"""Administration of a tenant's agents: list, create, change, unlock, revoke, reset MFA."""

from typing import Annotated

import structlog
from aiohttp import web
from msgspec import Meta, Struct

from auth.roles import Permission, require
from gateway.http.invites import invite_link, invites_of
from gateway.http.plumbing import (
    CustomRoleName,
    Email,
    Name,
    Password,
    QueueName,
    RoleName,
    agent_json,
    authed,
    ok,
    qr_data_url,
    read_json,
    role_rules,
    services_of,
)
from gateway.http.public import ApiError
from gateway.invites import MFA_RESET
from gateway.services import Services, peer_ip
from gateway.sessions import AgentContext
from gateway.staff_text import screen_display_name
from gateway.store.base import Agent
from gateway.tenants import MAX_QUEUES, tenant_queues

log = structlog.get_logger("cipherdesk.api")


class CreateAgentBody(Struct, forbid_unknown_fields=True):
    email: Email
    role: RoleName
    password: Password
    display_name: Name | None = None
    tenant: Annotated[str, Meta(max_length=64)] | None = None


class PatchAgentBody(Struct, forbid_unknown_fields=True):
    role: RoleName | None = None
    display_name: Name | None = None
    disabled: bool | None = None
    # Queue scoping: the tenant queues whose waiting chats the agent sees; [] = all.
    queues: Annotated[list[QueueName], Meta(max_length=MAX_QUEUES + 1)] | None = None
    # A custom role of the tenant (gateway/custom_roles.py); "" = back to the built-in
    # role alone. Not together with ``role``.
    custom_role: CustomRoleName | None = None


async def target_agent(request: web.Request, ctx: AgentContext, permission: Permission) -> Agent:
    """The agent named in the path, in the caller's tenant; 404 otherwise (also for an
    agent of another tenant, so ids of other tenants cannot be probed)."""
    svc = services_of(request)
    agent_id = request.match_info["agent_id"]
    agent = await svc.store.get_agent(agent_id) if len(agent_id) <= 64 else None
    if agent is None or agent.tenant_id != ctx.principal.tenant_id:
        raise ApiError(404, "not_found", "no such agent")
    require(ctx.principal, permission, agent.tenant_id)
    return agent


@authed(Permission.AGENT_MANAGE)
async def list_agents(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    tenant_id = ctx.principal.tenant_id
    require(ctx.principal, Permission.AGENT_MANAGE, tenant_id)
    agents = await svc.store.list_agents(tenant_id)
    passkeys = await svc.store.passkey_counts(tenant_id)
    provisioned = {u.agent_id for u in await svc.store.scim_users(tenant_id)}
    return web.json_response(
        {
            "agents": [
                {
                    **agent_json(a),
                    "passkeys": passkeys.get(a.id, 0),
                    "provisioned": a.id in provisioned,
                }
                for a in agents
            ]
        }
    )


@authed(Permission.AGENT_MANAGE)
async def create_agent(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    body = await read_json(request, CreateAgentBody)
    tenant_id = body.tenant or ctx.principal.tenant_id
    require(ctx.principal, Permission.AGENT_MANAGE, tenant_id)
    with role_rules():
        svc.custom_roles.check_grantable(ctx.principal, body.role)
    # customers see it when the agent joins, plugins with every message
    name = await screen_display_name(svc, tenant_id, body.display_name, "display_name")
    creds = await svc.logins.create_agent(
        body.email,
        tenant_id,
        body.role,
        body.password,
        name,
        actor=ctx.agent.id,
        ip=peer_ip(request, svc),
    )
    # Issue 16.9: a password an admin chose is known to the admin, so the agent must
    # replace it before doing anything else (the password_change_required gate; the
    # console shows its change-password form). Invites avoid this altogether.
    await svc.store.force_password_resets([creds.agent.id], ctx.agent.id, svc.clock())
    return web.json_response(
        {
            "agent": agent_json(creds.agent),
            "otpauth_uri": creds.otpauth_uri,
            "qr_png": await qr_data_url(creds.otpauth_uri),
            "recovery_codes": creds.recovery_codes,
        },
        status=201,
    )


@authed(Permission.AGENT_MANAGE)
async def patch_agent(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    agent = await target_agent(request, ctx, Permission.AGENT_MANAGE)
    body = await read_json(request, PatchAgentBody)
    ip = peer_ip(request, svc)
    actor = ctx.agent.id
    roles = svc.custom_roles
    # a name the policy blocks changes nothing at all
    name = await screen_display_name(svc, agent.tenant_id, body.display_name, "display_name")
    with role_rules():
        # Every check before any write: a refused role, disable or queue change leaves the
        # name alone too, so a request does all it asks or nothing.
        if body.disabled is True and not agent.disabled:
            await roles.check_disable(ctx.principal, agent)
        elif body.disabled is False and agent.disabled:
            roles.check_power_over(ctx.principal, agent)
        re_roled = body.role is not None or body.custom_role is not None
        if re_roled:
            await roles.check_assignment(
                ctx.principal, agent, role=body.role, custom_role=body.custom_role
            )
        queues = None if body.queues is None else await _known_queues(svc, agent, body.queues)
        if name and name != agent.display_name:
            agent.display_name = name
            await svc.store.update_agent(agent)
            await svc.auditor.record(
                "agent.renamed", tenant_id=agent.tenant_id, actor=actor, target=agent.id, ip=ip
            )
        if re_roled:
            await roles.assign(
                ctx.principal, agent, role=body.role, custom_role=body.custom_role, ip=ip
            )
    if body.disabled is not None and body.disabled != agent.disabled:
        await svc.logins.set_disabled(agent, body.disabled, actor=actor, ip=ip)
    if queues is not None:
        await _scope_to_queues(svc, agent, queues, actor, ip)
    fresh = await svc.store.get_agent(agent.id)
    return web.json_response({"agent": agent_json(fresh or agent)})


async def _known_queues(svc: Services, agent: Agent, queues: list[str]) -> tuple[str, ...]:
    """``queues`` as the sorted set to store, each one of the tenant's configured queues
    (``400 unknown_queue`` otherwise) -- checked before :func:`patch_agent` writes anything."""
    tenant = await svc.tenants.get(agent.tenant_id)
    known = tenant_queues(tenant) if tenant is not None else frozenset()
    unknown = sorted(set(queues) - known)
    if unknown:
        raise ApiError(400, "unknown_queue", f"no queue {unknown[0]!r}", field="queues")
    return tuple(sorted(set(queues)))


async def _scope_to_queues(
    svc: Services, agent: Agent, scoped: tuple[str, ...], actor: str, ip: str
) -> None:
    """Scope ``agent`` to tenant queues (issue 14.3); live consoles follow within seconds
    (their principal is re-read per message) and every queue view is refreshed now."""
    if scoped == agent.queues:
        return
    await svc.store.set_agent_queues(agent.id, scoped)
    agent.queues = scoped
    await svc.auditor.record(
        "agent.queues_changed",
        tenant_id=agent.tenant_id,
        actor=actor,
        target=agent.id,
        ip=ip,
        queues=list(scoped),
    )
    await svc.chats.queue_changed(agent.tenant_id)


@authed(Permission.AGENT_MANAGE)
async def unlock_agent(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    agent = await target_agent(request, ctx, Permission.AGENT_MANAGE)
    had = await svc.logins.unlock(agent, actor=ctx.agent.id, ip=peer_ip(request, svc))
    return ok(was_locked=had)


@authed(Permission.AGENT_MANAGE)
async def revoke_sessions(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    agent = await target_agent(request, ctx, Permission.AGENT_MANAGE)
    count = await svc.logins.revoke_all(agent.id, ctx.agent.id, ip=peer_ip(request, svc))
    return ok(sessions_revoked=count)


@authed(Permission.AGENT_MANAGE)
async def reset_mfa(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    agent = await target_agent(request, ctx, Permission.AGENT_MANAGE)
    with role_rules():
        svc.custom_roles.check_power_over(ctx.principal, agent)
    svc.logins.require_reauth(ctx.session)
    ip = peer_ip(request, svc)
    # The new secret and codes are never shown: nobody knows them, so the old factor is
    # dead and the agent enrols their own through the link (issue 16.9).
    creds = await svc.logins.reset_mfa(agent, actor=ctx.agent.id, ip=ip)
    issued = await invites_of(svc).create_agent_link(
        creds.agent, MFA_RESET, actor=ctx.agent.id, ip=ip
    )
    return web.json_response(
        {
            "agent": agent_json(creds.agent),
            "link": invite_link(request, svc, issued),
            "expires_at": issued.invite.expires_at,
        }
    )


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/agents", list_agents)
    r.add_post("/api/agents", create_agent)
    r.add_patch("/api/agents/{agent_id}", patch_agent)
    r.add_post("/api/agents/{agent_id}/unlock", unlock_agent)
    r.add_post("/api/agents/{agent_id}/revoke-sessions", revoke_sessions)
    r.add_post("/api/agents/{agent_id}/reset-mfa", reset_mfa)
