"""Session management (issue 20.5): an agent's own sessions; admins' view of dormancy.

* ``GET /api/me/sessions`` — the caller's live sessions: ``id`` (an opaque handle, not the
  token or its hash), ``device`` ("Chrome / Windows"), ``place`` (network prefix only,
  IPv4 /24, IPv6 /48), ``created_at``, ``last_seen_at``, ``current``.
* ``DELETE /api/me/sessions/{id}`` — end one of the caller's *other* sessions at once (its
  live sockets close 4401); 404 ``not_found`` for an unknown/ended one, 409
  ``current_session`` for the calling session (use ``/api/logout``). Audited
  ``session.revoked``.
* ``GET /api/agents/activity`` (``agent_manage``) — per agent: last login, days unused,
  ``dormant`` under the tenant's rule; plus the rule (``dormant_disable_days``).
* ``PUT /api/tenant/dormancy {"disable_after_days": N | null}`` (``tenant_manage``) — set
  or clear the rule (7 to 3650 days; else 400 ``bad_request``). Audited
  ``tenant.updated``. Enforcement: ``gateway/governance/dormancy.py``.

The ``/api/me/sessions`` routes are for interactive sessions only (no API tokens).
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from aiohttp import web
from msgspec import Meta, Struct

from auth.devices import coarse_place, device_label
from auth.roles import Permission
from gateway.bus.base import BusEvent, agent_topic
from gateway.governance.dormancy import MAX_DAYS, MIN_DAYS, SETTING, activity, dormant_days
from gateway.http.plumbing import authed, read_json
from gateway.http.public import ApiError
from gateway.services import SERVICES, Services, peer_ip
from gateway.sessions import AgentContext
from gateway.store.base import AgentSession


class DormancyBody(Struct, forbid_unknown_fields=True):
    disable_after_days: Annotated[int, Meta(ge=MIN_DAYS, le=MAX_DAYS)] | None


def _svc(request: web.Request) -> Services:
    return request.app[SERVICES]


def session_handle(token_hash: str) -> str:
    """A stable public id for a session: reveals neither the token nor the stored hash.

    32 hex characters, the shape of our other identifiers: the log and audit scrubber
    (gateway/logs.py) keeps such an id whole, where a shorter one holding a 12+ digit run
    by chance was redacted as a possible card number (about 2 handles in 100)."""
    return hashlib.sha256(b"cipherdesk/session-handle|" + token_hash.encode()).hexdigest()[:32]


async def _live_sessions(svc: Services, ctx: AgentContext) -> list[AgentSession]:
    now = svc.clock()
    return [
        s for s in await svc.store.list_sessions(ctx.agent.id) if svc.sessions.still_valid(s, now)
    ]


@authed(api_tokens=False)
async def my_sessions(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /api/me/sessions``."""
    svc = _svc(request)
    return web.json_response(
        {
            "sessions": [
                {
                    "id": session_handle(s.token_hash),
                    "device": device_label(s.user_agent),
                    "place": coarse_place(s.ip),
                    "created_at": s.created_at,
                    "last_seen_at": s.last_seen_at,
                    "current": s.token_hash == ctx.session.token_hash,
                }
                for s in await _live_sessions(svc, ctx)
            ]
        }
    )


@authed(api_tokens=False)
async def end_session(request: web.Request, ctx: AgentContext) -> web.Response:
    """``DELETE /api/me/sessions/{session_id}``."""
    svc = _svc(request)
    wanted = request.match_info["session_id"]
    target = next(
        (s for s in await _live_sessions(svc, ctx) if session_handle(s.token_hash) == wanted), None
    )
    if target is None:
        raise ApiError(404, "not_found", "no such session")
    if target.token_hash == ctx.session.token_hash:
        raise ApiError(409, "current_session", "this is the current session; log out instead")
    if await svc.store.revoke_session(target.token_hash, svc.clock()):
        await svc.bus.publish(
            agent_topic(ctx.agent.id), BusEvent(kind="revoke", sessions=[target.token_hash])
        )
        await svc.auditor.record(
            "session.revoked",
            tenant_id=ctx.agent.tenant_id,
            actor=ctx.agent.id,
            target=ctx.agent.id,
            ip=peer_ip(request, svc),
            handle=wanted,
            reason="self_service",
        )
    return web.json_response({"ok": True})


@authed(Permission.AGENT_MANAGE)
async def agent_activity(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /api/agents/activity``."""
    svc = _svc(request)
    tenant_id = ctx.principal.tenant_id
    limit = dormant_days(await svc.store.get_tenant(tenant_id))
    last = await svc.store.last_logins(tenant_id)
    now = svc.clock()
    rows = []
    for agent in await svc.store.list_agents(tenant_id):
        act = activity(agent, last.get(agent.id), limit, now)
        rows.append(
            {
                "id": agent.id,
                "email": agent.email,
                "disabled": agent.disabled,
                "last_login_at": act.last_login_at,
                "idle_days": int(act.idle_days),
                "dormant": act.dormant,
            }
        )
    return web.json_response({"dormant_disable_days": limit, "agents": rows})


@authed(Permission.TENANT_MANAGE)
async def set_dormancy(request: web.Request, ctx: AgentContext) -> web.Response:
    """``PUT /api/tenant/dormancy``."""
    svc = _svc(request)
    body = await read_json(request, DormancyBody)
    tenant = await svc.store.get_tenant(ctx.principal.tenant_id)
    if tenant is None:
        raise ApiError(404, "not_found", "no such tenant")
    settings = dict(tenant.settings)
    if body.disable_after_days is None:
        settings.pop(SETTING, None)
    else:
        settings[SETTING] = body.disable_after_days
    tenant.settings = settings
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate(tenant.id)
    await svc.auditor.record(
        "tenant.updated",
        tenant_id=tenant.id,
        actor=ctx.agent.id,
        target=tenant.id,
        ip=peer_ip(request, svc),
        fields=[SETTING],
        value=body.disable_after_days,
    )
    return web.json_response({"ok": True, "dormant_disable_days": body.disable_after_days})


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/me/sessions", my_sessions)
    r.add_delete("/api/me/sessions/{session_id}", end_session)
    r.add_get("/api/agents/activity", agent_activity)
    r.add_put("/api/tenant/dormancy", set_dormancy)
