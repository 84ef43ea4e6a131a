"""Flagged messages (list, view an original under approval), erasing a chat, and erasing
every chat of one customer, or exporting them.

``POST /api/customers/erase`` (tenant_manage, approval-gated as ``customer.erase``) takes
exactly one of ``sub`` (verified identity), ``email`` or ``chat_token`` (the resume token
of one of the customer's chats); every chat found is crypto-shredded through
:meth:`ChatService.erase` and the answer carries the signed destruction report. Errors:
400 ``invalid_request`` (not exactly one identifier), 403 ``approval_required`` (with
``target``: the customer ref to request approval for).

``POST /api/customers/export`` (same body, rules and errors; approval action
``customer.export``) answers every chat of the customer decrypted (right of access):
times, state, identity or form data, messages as stored; staff by role only.
"""

import hashlib
from typing import Annotated

import structlog
from aiohttp import web
from msgspec import Meta, Struct

from auth.roles import (
    Permission,
    require,
)
from gateway.chats import ChatError, CustomerIdKind
from gateway.http.audit import query_number
from gateway.http.export_format import export_format, export_response
from gateway.http.governance import require_approval
from gateway.http.plumbing import authed, int_path, ok, read_json, services_of
from gateway.http.public import ApiError
from gateway.services import peer_ip
from gateway.sessions import AgentContext

log = structlog.get_logger("cipherdesk.api")

FLAGS_PAGE = 100
"""Flags per ``GET /api/flags`` page unless ``limit`` says otherwise (newest first)."""
MAX_FLAGS_PAGE = 500


@authed(Permission.FLAG_VIEW_ORIGINAL)
async def list_flags(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    tenant_id = ctx.principal.tenant_id
    require(ctx.principal, Permission.FLAG_VIEW_ORIGINAL, tenant_id)
    raw_all = request.query.get("all", "")
    if raw_all not in ("", "1", "true", "0", "false"):
        raise ApiError(
            400, "bad_request", "query parameter all must be 1, true, 0 or false", field="all"
        )
    every = raw_all in ("1", "true")
    before = query_number(request, "before", int, low=1, high=2**62)
    limit = query_number(request, "limit", int, low=1, high=MAX_FLAGS_PAGE) or FLAGS_PAGE
    flags = await svc.store.list_flags(
        tenant_id, unreviewed_only=not every, before_id=before, limit=limit
    )
    return web.json_response(
        {
            "next_before": flags[-1].id if len(flags) == limit else None,
            "flags": [
                {
                    "id": f.id,
                    "chat": f.chat_id,
                    "seq": f.seq,
                    "kinds": f.kinds,
                    "created_at": f.created_at,
                    "reviewed_by": f.reviewed_by,
                }
                for f in flags
                if f.tenant_id == tenant_id
            ],
        }
    )


def chat_error(exc: ChatError) -> ApiError:
    status = {"not_found": 404, "forbidden": 403}.get(exc.code, 409)
    return ApiError(status, exc.code, exc.message)


@authed(Permission.FLAG_VIEW_ORIGINAL)
async def flag_original(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    flag_id = int_path(request, "flag_id")

    await require_approval(svc, ctx, "flag.view_original", str(flag_id))
    try:
        data = await svc.chats.flag_original(ctx.principal, flag_id, peer_ip(request, svc))
    except ChatError as exc:
        raise chat_error(exc) from None
    return web.json_response(data)


@authed(Permission.TENANT_MANAGE)
async def erase_chat(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    chat_id = request.match_info["chat_id"]
    chat = await svc.store.get_chat(chat_id) if len(chat_id) <= 128 else None
    if chat is None or chat.tenant_id != ctx.principal.tenant_id:
        raise ApiError(404, "not_found", "no such chat")
    require(ctx.principal, Permission.TENANT_MANAGE, chat.tenant_id)

    await require_approval(svc, ctx, "chat.erase", chat_id)
    report = await svc.chats.erase_reported(chat_id, actor=ctx.agent.id, tenant_id=chat.tenant_id)
    return ok(erased=report is not None, report=None if report is None else report.document())


class CustomerEraseBody(Struct, forbid_unknown_fields=True):
    sub: Annotated[str, Meta(min_length=1, max_length=256)] | None = None
    email: Annotated[str, Meta(min_length=3, max_length=320)] | None = None
    chat_token: Annotated[str, Meta(min_length=16, max_length=128)] | None = None


def customer_ref(kind: CustomerIdKind, value: str, keyed: str) -> str:
    """The approval target of a customer erase: derived from the keyed customer key (or
    the token's hash), so the approvals table and audit log never hold the identifier."""
    digest = keyed if kind != "chat_token" else hashlib.sha256(value.encode()).hexdigest()
    return f"{kind}:{digest[:32]}"


async def _customer_request(
    request: web.Request, ctx: AgentContext, action: str
) -> tuple[CustomerIdKind, str]:
    """The one customer identifier of an erase/export request, after the permission and
    approval checks (``action`` is the approval action)."""
    svc = services_of(request)
    tenant_id = ctx.principal.tenant_id
    require(ctx.principal, Permission.TENANT_MANAGE, tenant_id)
    body = await read_json(request, CustomerEraseBody)
    named: tuple[tuple[CustomerIdKind, str | None], ...] = (
        ("sub", body.sub),
        ("email", body.email),
        ("chat_token", body.chat_token),
    )
    given = [(kind, value) for kind, value in named if value is not None]
    if len(given) != 1 or not given[0][1].strip():
        raise ApiError(400, "invalid_request", "give exactly one of sub, email or chat_token")
    kind, value = given[0]
    keyed = ""
    if kind != "chat_token" and svc.chats.customer_keys is not None:
        keyed = svc.chats.customer_keys.current(tenant_id, kind, value)
    await require_approval(svc, ctx, action, customer_ref(kind, value, keyed))
    return kind, value


@authed(Permission.TENANT_MANAGE)
async def erase_customer(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    kind, value = await _customer_request(request, ctx, "customer.erase")
    report = await svc.chats.erase_customer(
        ctx.principal.tenant_id, kind, value, actor=ctx.agent.id
    )
    document = report.document()
    return ok(erased=document["report"]["counts"]["chats"], report=document)


@authed(Permission.TENANT_MANAGE)
async def export_customer(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = services_of(request)
    wanted = export_format(request, {})
    kind, value = await _customer_request(request, ctx, "customer.export")
    export = await svc.chats.export_customer(
        ctx.principal.tenant_id, kind, value, actor=ctx.agent.id
    )
    return await export_response(request, svc, export, wanted, {})


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/flags", list_flags)
    r.add_get("/api/flags/{flag_id}/original", flag_original)
    r.add_post("/api/chats/{chat_id}/erase", erase_chat)
    r.add_post("/api/customers/erase", erase_customer)
    r.add_post("/api/customers/export", export_customer)
