"""HTTP API of signed destruction reports (issue 15.2; :mod:`gateway.reports`).

* ``GET /api/reports?before=&limit=`` (tenant_manage) — the tenant's reports, newest
  first, each as the exportable file (``report``, ``signature``, ``signer``);
  ``next_before`` pages on. 400 ``bad_request`` for a malformed query.
* ``GET /api/reports/{report_id}`` (tenant_manage) — one report file (404 ``not_found``
  for an unknown id or another tenant's report).

Reports hold counts, hashed chat ids and actor ids only, never personal data.
"""

from __future__ import annotations

from aiohttp import web

from auth.roles import Permission, require
from gateway.http.audit import query_number
from gateway.http.plumbing import authed, services_of
from gateway.http.public import ApiError
from gateway.reports import SignedReport
from gateway.sessions import AgentContext

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


@authed(Permission.TENANT_MANAGE)
async def list_reports(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    tenant_id = ctx.principal.tenant_id
    require(ctx.principal, Permission.TENANT_MANAGE, tenant_id)
    before = query_number(request, "before", float, low=0, high=1e12)
    limit = query_number(request, "limit", int, low=1, high=MAX_LIMIT) or DEFAULT_LIMIT
    found = await svc.store.list_reports(tenant_id, before=before, limit=limit)
    return web.json_response(
        {
            "reports": [SignedReport(r).document() for r in found],
            "next_before": found[-1].created_at if len(found) == limit else None,
        }
    )


@authed(Permission.TENANT_MANAGE)
async def get_report(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    tenant_id = ctx.principal.tenant_id
    require(ctx.principal, Permission.TENANT_MANAGE, tenant_id)
    report_id = request.match_info["report_id"]
    found = await svc.store.get_report(report_id) if len(report_id) <= 64 else None
    if found is None or found.tenant_id != tenant_id:
        raise ApiError(404, "not_found", "no such report")
    return web.json_response(SignedReport(found).document())


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/reports", list_reports)
    app.router.add_get("/api/reports/{report_id}", get_report)
