"""Reading the audit log (filtered, paged, agent ids labelled with names)."""

import math
from typing import Any

import structlog
from aiohttp import web

from auth.roles import (
    Permission,
    require,
)
from gateway.agent_lookup import agent_label, match_agents, tenant_agents
from gateway.http.plumbing import audit_json, authed, services_of
from gateway.http.public import ApiError
from gateway.services import peer_ip
from gateway.sessions import AgentContext

log = structlog.get_logger("cipherdesk.api")


def query_number(
    request: web.Request,
    name: str,
    kind: type,
    *,
    low: float | None = None,
    high: float | None = None,
) -> Any:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise ApiError(
            400, "bad_request", f"query parameter {name} must be a number", field=name
        ) from None
    if (
        (isinstance(value, float) and not math.isfinite(value))
        or (low is not None and value < low)
        or (high is not None and value > high)
    ):
        raise ApiError(400, "bad_request", f"query parameter {name} is out of range", field=name)
    return value


#: Largest row id a database column holds (signed 64-bit); larger ids cannot exist, and
#: passing one to SQLite raised OverflowError (a 500, found by schemathesis).
_MAX_ROW_ID = 2**63 - 1


@authed(Permission.AUDIT_READ)
async def audit(request: web.Request, ctx: AgentContext) -> web.Response:
    """``GET /api/audit?action=&actor=&since=&until=&before_id=&limit=``: newest first.
    ``actor`` is an agent id, e-mail or (part of a) name, or a non-agent actor such as
    ``system``; several matching agents → 400 ``ambiguous_actor``. Records carry
    ``actor_name``/``target_name`` (display name or e-mail) for the tenant's agent ids."""
    svc = services_of(request)
    tenant_id = ctx.principal.tenant_id
    require(ctx.principal, Permission.AUDIT_READ, tenant_id)
    for name in ("action", "actor"):
        if len(request.query.get(name, "")) > 128:
            raise ApiError(400, "bad_request", f"query parameter {name} is too long", field=name)
    limit = query_number(request, "limit", int, low=1, high=500) or 100
    agents = await tenant_agents(svc.store, tenant_id)
    actor = request.query.get("actor", "").strip() or None
    if actor is not None:  # an agent's e-mail or name also works, not only the id
        matched = match_agents(agents, actor)
        if len(matched) > 1:
            raise ApiError(
                400,
                "ambiguous_actor",
                "several agents match: type more of the name or the whole e-mail address",
                field="actor",
            )
        actor = matched[0].id if matched else actor
    events = await svc.store.query_audit(
        tenant_id=tenant_id,
        action=request.query.get("action") or None,
        actor=actor,
        since=query_number(request, "since", float),
        until=query_number(request, "until", float),
        before_id=query_number(request, "before_id", int, low=1, high=_MAX_ROW_ID),
        limit=limit,
    )
    next_before = events[-1].id if len(events) == limit else None
    # Reading the audit log is itself an access worth recording (who looked, at what).
    await svc.auditor.record(
        "audit.read",
        tenant_id=tenant_id,
        actor=ctx.agent.id,
        ip=peer_ip(request, svc),
        rows=len(events),
        filters=sorted(
            k for k in ("action", "actor", "since", "until", "before_id") if request.query.get(k)
        ),
    )
    labels = {a.id: agent_label(a) for a in agents}
    return web.json_response(
        {"events": [audit_json(e, labels) for e in events], "next_before_id": next_before}
    )


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/audit", audit)
