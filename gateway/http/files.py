"""``POST|GET /api/files/{ticket}``: the bytes of attachments (issue 16.6).

The ticket in the path is the whole credential (``gateway/attachments/tickets.py``): it
was handed out over the sealed websocket to a customer or agent that may write or read
the chat, it expires within minutes and the body is sealed with the ticket's own key, so
a proxy that sees this request learns neither the file nor its name. No cookie is read;
a customer's ticket answers only the tenant's allowed origins (CORS, with a preflight),
an agent's only the console's origin.

Upload answer ``201 {"id", "seq", "chat", "file": {...}, "notice"?}``; download answer
``200`` ``application/octet-stream`` (``nonce ‖ secretbox``). Errors, ``{"error": {"code",
"message"}}``: ``ticket_invalid`` (403), ``ticket_expired`` (410), ``forbidden`` (403,
origin), ``payload_too_large`` (413), ``bad_body`` (400), ``file_type`` (415),
``file_unreadable`` / ``file_too_big`` (422), ``file_infected`` (422), ``bad_name`` (400),
``blocked`` (422,
the policy refused the file name; ``kinds``), ``scan_unavailable`` (503),
``chat_closed`` / ``not_assigned`` (409), ``consent_required`` (409), ``files_off``
(403), ``not_found`` (404), ``busy`` (503 with ``Retry-After``: the node's
``concurrent_uploads`` are all taken).
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from gateway.attachments.files import FileRefused
from gateway.attachments.tickets import DownloadGrant, TicketError, UploadGrant
from gateway.chats import ChatError
from gateway.http.plumbing import allow_origin, preflight_answer, retry_headers, services_of
from gateway.http.public import ApiError
from gateway.protocol import encode
from gateway.services import Services


class FileUploadedOut(msgspec.Struct, omit_defaults=True):
    """A stored upload: the message it became (``notice``: the policy masked its name).
    End-to-end chats: no ``seq`` yet, the ``file`` id the sender's ``emsg`` names."""

    id: str
    chat: str
    seq: int | None = None
    duplicate: bool = False
    notice: dict[str, Any] | None = None
    file: str | None = None


_FILE_STATUS = {
    "bad_body": 400,
    "bad_name": 400,
    "file_type": 415,
    "file_unreadable": 422,
    "file_too_big": 422,
    "file_infected": 422,
    "scan_unavailable": 503,
    "not_found": 404,
}
_CHAT_STATUS = {
    "chat_closed": 409,
    "not_assigned": 409,
    "consent_required": 409,
    "files_off": 403,
    "not_found": 404,
    "tenant_frozen": 503,
}


async def _grant(
    request: web.Request, svc: Services
) -> tuple[UploadGrant | DownloadGrant, dict[str, str]]:
    """The request's grant and the CORS headers its answers carry; refuses a ticket
    that is not genuine and current, or a page that may not use it."""
    try:
        grant = svc.attachments.tickets.open(request.match_info["ticket"])
    except TicketError as exc:
        status = 410 if exc.code == "ticket_expired" else 403
        raise ApiError(status, exc.code, exc.message) from None
    origin = request.headers.get("Origin")
    who = grant.sender if isinstance(grant, UploadGrant) else grant.reader
    if who == "customer":
        tenant = await svc.tenants.get(grant.tenant)
        if tenant is None or (
            origin is not None and not svc.tenants.origin_allowed(tenant, origin)
        ):
            raise ApiError(403, "forbidden", "this site may not use this file link")
        return grant, (allow_origin(origin) if origin else {})
    if origin is not None and not svc.console_origin_allowed(origin):
        raise ApiError(403, "forbidden", "this site may not use this file link")
    return grant, {}


async def _read_body(request: web.Request, most: int, cors: dict[str, str]) -> bytes:
    """The request body, refused (413) as soon as it passes ``most`` bytes."""
    body = await request.content.read(most + 1)
    while len(body) <= most and not request.content.at_eof():
        more = await request.content.read(most + 1 - len(body))
        if not more:
            break
        body += more
    if len(body) > most:
        raise _too_large(cors)
    return body


def _too_large(cors: dict[str, str]) -> ApiError:
    return ApiError(413, "payload_too_large", "the upload is bigger than announced", headers=cors)


def _refused(
    exc: FileRefused | ChatError, statuses: dict[str, int], cors: dict[str, str]
) -> ApiError:
    return ApiError(statuses.get(exc.code, 400), exc.code, exc.message, headers=cors)


async def preflight(request: web.Request) -> web.Response:
    """The browser's CORS preflight for the widget's upload (a binary ``POST``)."""
    svc = services_of(request)
    _, cors = await _grant(request, svc)
    return preflight_answer(cors, "GET, POST")


async def upload(request: web.Request) -> web.Response:
    """Store one attachment (see the module docstring)."""
    svc = services_of(request)
    grant, cors = await _grant(request, svc)
    if not isinstance(grant, UploadGrant):
        raise ApiError(403, "ticket_invalid", "this file link is for reading", headers=cors)
    expected = svc.attachments.max_body(grant)
    if request.content_length is not None and request.content_length > expected:
        raise _too_large(cors)
    try:
        with svc.attachments.upload_slot():
            body = await _read_body(request, expected, cors)
            received = await svc.attachments.receive(grant, body)
    except FileRefused as exc:
        if exc.code == "busy":
            raise ApiError(503, "busy", exc.message, headers={**cors, **retry_headers(5)}) from None
        raise _refused(exc, _FILE_STATUS, cors) from None
    except ChatError as exc:
        raise _refused(exc, _CHAT_STATUS, cors) from None
    outcome = received.outcome
    if outcome is None:  # an end-to-end chat's file: its emsg comes next, over the socket
        e2e_answer = FileUploadedOut(id=grant.msg_id, chat=grant.chat, file=received.file)
        return _created(e2e_answer, cors)
    if outcome.ack is None:  # the policy blocked the file's name: nothing was stored
        notice = outcome.notice
        raise ApiError(
            422,
            "blocked",
            notice.message if notice is not None else "this file name cannot be sent",
            headers=cors,
            kinds=list(notice.kinds) if notice is not None else [],
        )
    answer = FileUploadedOut(
        id=outcome.ack.id,
        seq=outcome.ack.seq,
        chat=grant.chat,
        duplicate=outcome.duplicate,
        notice=None if outcome.notice is None else msgspec.json.decode(encode(outcome.notice)),
    )
    return _created(answer, cors)


def _created(answer: FileUploadedOut, cors: dict[str, str]) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(answer),
        status=201,
        headers=cors,
        content_type="application/json",
    )


async def download(request: web.Request) -> web.Response:
    """Read one attachment, sealed with the ticket's key."""
    svc = services_of(request)
    grant, cors = await _grant(request, svc)
    if not isinstance(grant, DownloadGrant):
        raise ApiError(403, "ticket_invalid", "this file link is for sending", headers=cors)
    try:
        body = await svc.attachments.send(grant)
    except FileRefused as exc:
        raise _refused(exc, _FILE_STATUS, cors) from None
    return web.Response(
        body=body,
        content_type="application/octet-stream",
        headers={**cors, "Cache-Control": "no-store"},
    )


def setup_routes(app: web.Application) -> None:
    """Register the attachment transfer routes."""
    r = app.router
    r.add_post("/api/files/{ticket}", upload)
    r.add_get("/api/files/{ticket}", download, allow_head=False)
    r.add_route("OPTIONS", "/api/files/{ticket}", preflight)
