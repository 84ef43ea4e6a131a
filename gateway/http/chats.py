"""Flagged messages (list, view an original under approval) and erasing a chat."""

import structlog
from aiohttp import web

from auth.roles import (
    Permission,
    require,
)
from gateway.chats import ChatError
from gateway.http.governance import require_approval
from gateway.http.plumbing import authed, int_path, ok, services_of
from gateway.http.public import ApiError
from gateway.services import peer_ip
from gateway.sessions import AgentContext

log = structlog.get_logger("cipherdesk.api")


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
    flags = await svc.store.list_flags(tenant_id, unreviewed_only=not every)
    return web.json_response(
        {
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
            ]
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


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/flags", list_flags)
    r.add_get("/api/flags/{flag_id}/original", flag_original)
    r.add_post("/api/chats/{chat_id}/erase", erase_chat)
