"""A signed-in customer's own data, from the widget (issue 15.2, right of access).

``POST /api/public/export/{tenant_id} {"identity": "<token>"}`` — the widget runs on the
company's site, so this is a cross-origin call: allowed only from the tenant's allowed
origins (``Access-Control-Allow-Origin`` echoes that origin; the ``OPTIONS`` preflight
answers the same way; any other origin gets 403 ``forbidden``). No cookie, no session: the
proof is a fresh widget identity token the company's backend signed for this customer
(the same single-use token as at chat open, ``README.md`` "Widget identity"), so a
captured token cannot be replayed and nobody can ask for someone else's chats. The answer
is the customer export of ``POST /api/customers/export`` for the token's ``sub`` (masked
for the ``export`` audience, staff by role only), ``Cache-Control: no-store``, audited
``customer.exported`` with actor ``customer``; the widget offers it as JSON, as a
readable HTML page it builds itself, and as a PDF (``?format=pdf&lang=&tz=``, rendered by
the gateway: ``gateway/export_pdf.py``).

Errors: ``not_found`` (404, unknown tenant), ``forbidden`` (403, origin), ``identity_off``
(403, the tenant does not sign its customers), ``identity_invalid`` /
``identity_replayed`` (401), ``rate_limited`` (429: the login budget per address).
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from msgspec import Meta, Struct

from gateway.chats import ChatError
from gateway.http.export_format import export_format, export_response
from gateway.http.plumbing import (
    allow_origin,
    preflight_answer,
    read_json,
    retry_headers,
    services_of,
)
from gateway.http.public import ApiError
from gateway.services import Services, peer_ip
from gateway.store.base import Tenant

_STATUS = {"identity_off": 403, "identity_invalid": 401, "identity_replayed": 401}


class CustomerExportRequest(Struct, forbid_unknown_fields=True):
    """The widget's request: the identity token the company's site signed just now."""

    identity: Annotated[str, Meta(min_length=1, max_length=4096)]


async def _allowed(request: web.Request, svc: Services) -> tuple[Tenant, str]:
    tenant_id = request.match_info["tenant_id"]
    tenant = await svc.tenants.get(tenant_id) if len(tenant_id) <= 64 else None
    if tenant is None:
        raise ApiError(404, "not_found", "no such tenant")
    origin = request.headers.get("Origin", "")
    if not svc.tenants.origin_allowed(tenant, origin):
        raise ApiError(403, "forbidden", "this site may not ask for customer data")
    return tenant, origin


async def preflight(request: web.Request) -> web.Response:
    """The browser's CORS preflight for the JSON ``POST``."""
    svc = services_of(request)
    _, origin = await _allowed(request, svc)
    return preflight_answer(allow_origin(origin), "POST")


async def export_for_customer(request: web.Request) -> web.Response:
    """The signed-in customer's own chats (see the module docstring)."""
    svc = services_of(request)
    tenant, origin = await _allowed(request, svc)
    decision = await svc.guard.limiter.hit(
        f"export:{peer_ip(request, svc)}", svc.guard.limits.login_per_ip, scope="login_per_ip"
    )
    if not decision.allowed:
        raise ApiError(
            429,
            "rate_limited",
            "too many requests; slow down",
            headers={**allow_origin(origin), **retry_headers(decision.retry_after)},
        )
    wanted = export_format(request, allow_origin(origin))
    body = await read_json(request, CustomerExportRequest)
    try:
        export = await svc.chats.export_for_customer(tenant.id, body.identity)
    except ChatError as exc:
        status = _STATUS.get(exc.code, 400)
        raise ApiError(status, exc.code, exc.message, headers=allow_origin(origin)) from None
    return await export_response(request, svc, export, wanted, allow_origin(origin))


def setup_routes(app: web.Application) -> None:
    """Register the customer's own-data route and its preflight."""
    r = app.router
    r.add_post("/api/public/export/{tenant_id}", export_for_customer)
    r.add_route("OPTIONS", "/api/public/export/{tenant_id}", preflight)
