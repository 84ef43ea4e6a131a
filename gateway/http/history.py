"""Chat history for agents (issue 16 item 5): closed chats, search, a customer's previous
chats, read-only transcripts and CSAT.

Who sees what, the same rules as the console's transcript requests over the websocket
(gateway/ws/agent.py): an agent sees the closed chats they handled; a role with
``transcript_read`` (supervisor, admin) sees every closed chat of its tenant, and opening
another agent's transcript passes the tenant's approval gate (``transcript.read``, see
gateway/governance/approvals.py). Every transcript read writes one ``transcript.opened``
audit row. Text search matches keyed-hash tokens (gateway/search_index.py): neither the
query nor any indexed word is stored or logged in clear.

Error codes: ``bad_request`` (400, a malformed filter, ``field`` names it), ``forbidden``
(403, another agent's chats without ``transcript_read``), ``approval_required`` (403),
``not_found`` (404, no such closed chat in the caller's tenant).
"""

from __future__ import annotations

import math
from typing import Annotated

from aiohttp import web
from msgspec import Meta, Struct

from auth.roles import Permission
from gateway.http.governance import require_approval
from gateway.http.plumbing import authed, services_of, struct_json
from gateway.http.public import ApiError
from gateway.search_index import MAX_QUERY_TOKENS
from gateway.services import Services, peer_ip
from gateway.sessions import AgentContext
from gateway.store.base import Chat, HistoryQuery

MAX_PAGE = 100
"""Largest page of the closed-chat listing."""

MAX_QUERY_CHARS = 200
"""Longest search text accepted."""


class HistoryChat(Struct, forbid_unknown_fields=True):
    """One closed chat in a listing (no message text)."""

    id: str
    queue: str
    agent: str | None
    agent_name: str | None
    customer: str | None
    verified: bool
    created_at: float
    closed_at: float | None
    close_reason: str | None
    csat: int | None


class CsatRow(Struct, forbid_unknown_fields=True):
    """Average CSAT of one agent over the filtered range."""

    agent: str
    agent_name: str | None
    rated: int
    average: float


class HistoryList(Struct, forbid_unknown_fields=True):
    """A page of closed chats, the cursor of the next page, and CSAT per agent."""

    chats: list[HistoryChat]
    next: str | None
    csat: list[CsatRow]


_Seconds = Annotated[float, Meta(ge=0, lt=1e11)]
_Name = Annotated[str, Meta(max_length=128)]


class HistoryQueryParams(Struct):
    """Query parameters of ``GET /api/history/chats`` (all optional): ``closed_from`` <=
    closed_at < ``closed_to`` (seconds since 1970), ``q`` search words (all must occur),
    ``customer_of`` a chat whose verified customer's other chats are wanted, ``before``
    the ``next`` cursor of the previous page."""

    closed_from: _Seconds | None = None
    closed_to: _Seconds | None = None
    queue: _Name | None = None
    agent: _Name | None = None
    csat: Annotated[int, Meta(ge=1, le=5)] | None = None
    q: Annotated[str, Meta(max_length=MAX_QUERY_CHARS)] | None = None
    customer_of: _Name | None = None
    before: Annotated[str, Meta(max_length=200)] | None = None
    limit: Annotated[int, Meta(ge=1, le=MAX_PAGE)] | None = None


class TranscriptFile(Struct, forbid_unknown_fields=True):
    """The file a transcript message carries (its bytes: ``fetch`` over the socket)."""

    id: str
    name: str
    type: str
    size: int


class TranscriptMessage(Struct, forbid_unknown_fields=True):
    """One message of a read-only transcript (the stored, policy-masked text)."""

    seq: int
    sender: str
    text: str
    ts: float
    agent: str | None
    e2e: bool = False
    """End-to-end encrypted: the gateway cannot read it, ``text`` is empty."""
    file: TranscriptFile | None = None
    """An attachment (inspect chats: ``text`` is its name)."""


class Transcript(Struct, forbid_unknown_fields=True):
    """A closed chat and its messages."""

    chat: HistoryChat
    messages: list[TranscriptMessage]


def _bad(field: str, message: str) -> ApiError:
    return ApiError(400, "bad_request", message, field=field)


def _float(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = float(raw[:32])
    except ValueError:
        raise _bad(name, f"{name} must be a number of seconds since 1970") from None
    if not math.isfinite(value) or not 0 <= value < 1e11:
        raise _bad(name, f"{name} is out of range")
    return value


def _text(request: web.Request, name: str, limit: int = 128) -> str | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > limit:
        raise _bad(name, f"{name} is longer than {limit} characters")
    return raw


def _cursor(raw: str | None) -> tuple[float, str] | None:
    if raw is None:
        return None
    at, sep, chat_id = raw.partition(":")
    try:
        value = float(at)
    except ValueError:
        value = math.nan
    if not sep or not chat_id or not math.isfinite(value):
        raise _bad("before", "before is the next cursor of a previous page")
    return value, chat_id


def _int(request: web.Request, name: str, low: int, high: int) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw[:6]) <= high:
        raise _bad(name, f"{name} must be a whole number from {low} to {high}")
    return int(raw)


async def _summary(svc: Services, chat: Chat) -> HistoryChat:
    customer = await svc.chats.customer_of(chat)
    name = None
    if customer is not None:
        value = customer.get("name") or customer.get("user_id")
        name = str(value)[:200] if value else None
    return HistoryChat(
        id=chat.id,
        queue=chat.queue,
        agent=chat.assigned_agent_id,
        agent_name=await svc.chats.agent_name(chat.assigned_agent_id),
        customer=name,
        verified=chat.verified,
        created_at=chat.created_at,
        closed_at=chat.closed_at,
        close_reason=chat.close_reason,
        csat=chat.csat,
    )


@authed(Permission.CHAT_HANDLE)
async def list_history(request: web.Request, ctx: AgentContext) -> web.Response:
    """Closed chats of the caller's tenant, filtered, searched and paged."""
    svc = services_of(request)
    p = ctx.principal
    everyone = p.can(Permission.TRANSCRIPT_READ, p.tenant_id)
    agent = _text(request, "agent")
    if not everyone:
        if agent is not None and agent != p.agent_id:
            raise ApiError(403, "forbidden", "your role shows only your own chats")
        agent = p.agent_id
    query = HistoryQuery(
        tenant_id=p.tenant_id,
        closed_from=_float(request, "closed_from"),
        closed_to=_float(request, "closed_to"),
        queue=_text(request, "queue"),
        agent_id=agent,
        csat=_int(request, "csat", 1, 5),
        before=_cursor(_text(request, "before", 200)),
        limit=(_int(request, "limit", 1, MAX_PAGE) or 50) + 1,
    )
    text = _text(request, "q", MAX_QUERY_CHARS)
    if text is not None and svc.chats.search is not None:
        query.token_hashes = svc.chats.search.query(p.tenant_id, text)
        if not query.token_hashes:
            raise _bad("q", "the search text has no word to look for")
        if len(query.token_hashes) > MAX_QUERY_TOKENS:  # pragma: no cover - bounded by tokenize
            raise _bad("q", "the search text has too many words")
    customer_of = _text(request, "customer_of")
    if customer_of is not None:
        source = await svc.store.get_chat(customer_of)
        keys = []
        if source is not None and source.tenant_id == p.tenant_id:
            keys = await svc.store.customer_keys_of(source.id)
        if source is None or not keys:  # unknown, or a customer who gave no identifier
            return struct_json(HistoryList(chats=[], next=None, csat=[]))
        query.customer_of, query.exclude_chat = source.id, source.id
    rows = await svc.store.list_history(query)
    page, more = rows[: query.limit - 1], len(rows) >= query.limit
    last = page[-1] if page else None
    cursor = f"{last.closed_at!r}:{last.id}" if more and last is not None else None
    query.before = None
    csat = [
        CsatRow(
            agent=r.agent_id,
            agent_name=await svc.chats.agent_name(r.agent_id),
            rated=r.rated,
            average=round(r.average, 2),
        )
        for r in await svc.store.csat_by_agent(query)
    ]
    if text is not None:
        # Who searched is audited; what they searched for is not written anywhere.
        await svc.auditor.record(
            "history.searched", tenant_id=p.tenant_id, actor=p.agent_id, results=len(page)
        )
    return struct_json(
        HistoryList(chats=[await _summary(svc, c) for c in page], next=cursor, csat=csat)
    )


@authed(Permission.CHAT_HANDLE)
async def read_transcript(request: web.Request, ctx: AgentContext) -> web.Response:
    """A closed chat's transcript, read-only; every read is audited."""
    svc = services_of(request)
    p = ctx.principal
    chat_id = request.match_info["chat_id"]
    chat = await svc.store.get_chat(chat_id) if len(chat_id) <= 128 else None
    if chat is None or chat.tenant_id != p.tenant_id or chat.state != "closed":
        raise ApiError(404, "not_found", "no such closed chat")
    own = chat.assigned_agent_id == p.agent_id
    if not own:
        if not p.can(Permission.TRANSCRIPT_READ, p.tenant_id):
            raise ApiError(403, "forbidden", "your role does not allow this")
        await require_approval(svc, ctx, "transcript.read", chat.id)
    ip = peer_ip(request, svc)
    # agent_history audits another agent's transcript itself; one's own is audited here.
    history = await svc.chats.agent_history(p, chat.id, 0, ip)
    if own:
        await svc.auditor.record(
            "transcript.opened", tenant_id=p.tenant_id, actor=p.agent_id, target=chat.id, ip=ip
        )
    messages = [
        TranscriptMessage(
            seq=m.seq,
            sender=m.sender,
            text=m.text,
            ts=m.ts,
            agent=m.agent,
            e2e=m.c is not None,
            file=None
            if m.file is None or m.c is not None
            else TranscriptFile(id=m.file.id, name=m.file.name, type=m.file.type, size=m.file.size),
        )
        for m in history
    ]
    return struct_json(Transcript(chat=await _summary(svc, chat), messages=messages))


def setup_routes(app: web.Application) -> None:
    """Register the history routes."""
    r = app.router
    r.add_get("/api/history/chats", list_history)
    r.add_get("/api/history/chats/{chat_id}", read_transcript)
