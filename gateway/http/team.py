"""Agent-facing API: who can take a chat right now (the console's transfer picker).

* ``GET /api/team`` (any agent of the tenant: ``chat_handle``) — the tenant's enabled
  agents with presence and load, and the queues with their load::

    {"agents": [{"id", "name", "role", "online": true|false|null, "consoles": N,
                 "active_chats": N}],
     "queues": [{"name", "waiting": N, "active": N}],
     "presence_known": true}

  ``online`` comes from :mod:`gateway.presence` (every node's agent sockets); when the
  presence store cannot be asked (Redis down) it is ``null`` and ``presence_known`` is
  false. Agents are sorted online first, then by load, then by name; the caller itself
  is left out (nobody transfers to themselves). Queues are those with open chats plus
  ``default``. Only ids, display names and roles are returned, never e-mail addresses
  (agents without ``agent_manage`` do not otherwise see their colleagues' addresses).

* ``GET /api/canned`` (``chat_handle``) — the tenant's shared canned responses
  ``{"responses": [{"shortcut": "/refund", "text": "...", "queue"?}], "variables": [...]}``.
* ``PUT /api/canned`` (``tenant_manage``; cookie callers need ``X-CSRF-Token``) — replace
  the list (≤ 200 entries; shortcut ``/[a-z0-9_-]{1,32}``, text ≤ 2000 chars, optional
  queue). Refusals (400, nothing saved; ``index`` says which entry): ``bad_request``,
  ``duplicate_shortcut``, ``unknown_variable``, ``canned_blocked`` (the tenant's policy
  would block the text as an agent message; ``kinds`` lists why). Audited
  ``canned.updated`` (count only, no texts).

Tenant-scoped: the principal's tenant only. No customer data.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp import web
from msgspec import Struct, to_builtins

from auth.roles import Permission
from gateway import canned
from gateway.http.plumbing import authed, read_json
from gateway.http.public import ApiError
from gateway.services import SERVICES, Services, peer_ip
from gateway.sessions import AgentContext
from gateway.tenants import DEFAULT_QUEUE, tenant_queues


class TeamAgent(Struct):
    id: str
    name: str
    role: str
    online: bool | None
    consoles: int
    active_chats: int


class TeamQueue(Struct):
    name: str
    waiting: int
    active: int


class Team(Struct):
    agents: list[TeamAgent]
    queues: list[TeamQueue]
    presence_known: bool


async def team_of(svc: Services, tenant_id: str, exclude_agent: str | None) -> Team:
    """Agents (with presence and active chats) and queues (with load) of one tenant."""
    agents = [a for a in await svc.store.list_agents(tenant_id) if not a.disabled]
    online = await svc.presence.agents(tenant_id)
    active_by_agent: Counter[str | None] = Counter()
    waiting: Counter[str] = Counter()
    active: Counter[str] = Counter()
    for group in await svc.store.count_open_chats(tenant_id):  # counted, however many
        if group.state == "active":
            active_by_agent[group.assigned_agent_id] += group.count
            active[group.queue] += group.count
        else:
            waiting[group.queue] += group.count
    team = [
        TeamAgent(
            id=a.id,
            name=a.display_name or a.id,
            role=a.role,
            online=None if online is None else a.id in online,
            consoles=(online or {}).get(a.id, 0),
            active_chats=active_by_agent.get(a.id, 0),
        )
        for a in agents
        if a.id != exclude_agent
    ]
    team.sort(key=lambda x: (not x.online, x.active_chats, x.name.casefold()))
    # Every configured queue, even an empty one (a transfer or a scope may name it).
    tenant = await svc.tenants.get(tenant_id)
    configured = tenant_queues(tenant) if tenant is not None else frozenset({DEFAULT_QUEUE})
    names = sorted(set(waiting) | set(active) | configured)
    queues = [TeamQueue(name=n, waiting=waiting.get(n, 0), active=active.get(n, 0)) for n in names]
    return Team(agents=team, queues=queues, presence_known=online is not None)


@authed(Permission.CHAT_HANDLE)
async def get_team(request: web.Request, ctx: AgentContext) -> web.Response:
    svc: Services = request.app[SERVICES]
    team = await team_of(svc, ctx.principal.tenant_id, ctx.principal.agent_id)
    return web.json_response(to_builtins(team), headers={"Cache-Control": "no-store"})


async def _tenant(svc: Services, tenant_id: str) -> Any:
    tenant = await svc.tenants.get(tenant_id)
    if tenant is None:
        raise ApiError(404, "not_found", "no such tenant")
    return tenant


def _canned_json(responses: list[canned.CannedResponse]) -> web.Response:
    return web.json_response(
        {"responses": canned.to_settings(responses), "variables": list(canned.VARIABLES)},
        headers={"Cache-Control": "no-store"},
    )


@authed(Permission.CHAT_HANDLE)
async def get_canned(request: web.Request, ctx: AgentContext) -> web.Response:
    svc: Services = request.app[SERVICES]
    tenant = await _tenant(svc, ctx.principal.tenant_id)
    return _canned_json(canned.load(tenant.settings))


@authed(Permission.TENANT_MANAGE)
async def put_canned(request: web.Request, ctx: AgentContext) -> web.Response:
    svc: Services = request.app[SERVICES]
    body = await read_json(request, canned.CannedList)
    tenant = await svc.store.get_tenant(ctx.principal.tenant_id)
    if tenant is None:
        raise ApiError(404, "not_found", "no such tenant")
    engine = svc.policies.engine_for(tenant.id, tenant.settings)
    try:
        canned.check(body.responses, engine)
    except canned.CannedError as exc:
        raise ApiError(400, exc.code, str(exc), index=exc.index, **exc.extra) from None
    tenant.settings = {**tenant.settings, "canned": canned.to_settings(body.responses)}
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate(tenant.id)
    await svc.auditor.record(
        "canned.updated",
        tenant_id=tenant.id,
        actor=ctx.agent.id,
        target=tenant.id,
        ip=peer_ip(request, svc),
        count=len(body.responses),
    )
    return _canned_json(body.responses)


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/team", get_team)
    app.router.add_get("/api/canned", get_canned)
    app.router.add_put("/api/canned", put_canned)
