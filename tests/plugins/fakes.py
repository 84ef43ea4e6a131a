"""Test doubles for the plugin suite: an in-memory outbox store with the same semantics as
the gateway's stores (oldest pending per (plugin, chat), leases), a clock, plugins, and
local aiohttp servers implementing the vendors' documented endpoints."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway.store.base import OutboxEvent
from plugins.api import (
    Event,
    Health,
    PermanentError,
    PluginInfo,
    RetryableError,
    Scope,
    event_to_dict,
)
from plugins.testing import Clock as Clock  # the shipped kit's clock and outbox: the
from plugins.testing import MemoryOutbox as MemoryOutbox  # real stores' claim/lease rules
from plugins.webhook import verify_signature

# --------------------------------------------------------------------------- payloads


def seal(event: Event) -> bytes:
    """Tests' stand-in for the gateway's sealing: plain JSON bytes."""
    return json.dumps(event_to_dict(event)).encode()


async def decode(item: Any) -> dict[str, Any] | None:
    if item.payload_sealed == b"ERASED":
        return None
    return json.loads(item.payload_sealed)


def outbox_event(plugin: str, event: Event, key: str | None = None) -> OutboxEvent:
    return OutboxEvent(
        tenant_id=event.tenant_id,
        plugin=plugin,
        event_type=event.type,
        idempotency_key=key or f"{plugin}:{event.event_id}",
        payload_sealed=seal(event),
        chat_id=event.chat_id,
        created_at=event.occurred_at,
    )


# --------------------------------------------------------------------------- plugins


class RecordingPlugin:
    """A plugin whose behaviour each test scripts: ``script`` is consumed per delivery
    (an exception instance is raised, "hang" blocks, None succeeds)."""

    def __init__(self, name: str, scopes: set[str], script: list[Any] | None = None):
        self.info = PluginInfo(name=name, version="1", scopes=frozenset(scopes))
        self.script = list(script or [])
        self.received: list[Event] = []
        self.attempted: list[str] = []
        self.release = asyncio.Event()

    async def deliver(self, event: Event) -> None:
        self.attempted.append(event.event_id)
        step = self.script.pop(0) if self.script else None
        if step == "hang":
            await self.release.wait()
        elif isinstance(step, BaseException):
            raise step
        self.received.append(event)

    async def health(self) -> Health:
        return Health(ok=True)

    async def aclose(self) -> None:
        return None


def plugin_table(*plugins: Any) -> Callable[[str, str], Any]:
    table = {p.info.name: p for p in plugins}

    async def plugin_for(tenant_id: str, name: str) -> Any:
        return table.get(name)

    return plugin_for


ALL_EVENTS = {s.value for s in Scope if s is not Scope.CUSTOMER_IDENTITY}

__all__ = ["PermanentError", "RetryableError"]


# --------------------------------------------------------------------------- servers


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None


@dataclass
class FakeServer:
    """Base of the vendor fakes: records requests; ``fail`` queues canned failures
    (status, headers) served before normal handling; ``down`` answers 503 to everything."""

    requests: list[Recorded] = field(default_factory=list)
    fail: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    down: bool = False
    url: str = ""
    _runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method != "GET"]

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        rec = Recorded(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            body=body,
        )
        if body and request.content_type == "application/json":
            rec.json = json.loads(body)
        self.requests.append(rec)
        if self.down:
            return web.json_response({"error": "unavailable"}, status=503)
        if self.fail:
            status, headers = self.fail.pop(0)
            return self.error_response(status, headers)
        return await handler(request)

    def error_response(self, status: int, headers: dict[str, str]) -> web.Response:
        """The vendor's own error answer for ``status`` (overridden per vendor)."""
        return web.json_response({"error": "canned"}, status=status, headers=headers)

    async def start(self) -> FakeServer:
        app = web.Application(middlewares=[self._record])
        self.routes(app)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class ZendeskServer(FakeServer):
    """Zendesk Support API v2 subset: search, create/update ticket, users/me.

    API-token auth: Basic base64("{email}/token:{api_token}"); 401 otherwise.
    Ticket creation honours ``Idempotency-Key`` (same key → same ticket, with
    ``x-idempotency-lookup: hit``), as Zendesk documents.
    """

    email: str = "agent@acme.test"
    token: str = "zd-token-123"
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    idem: dict[str, int] = field(default_factory=dict)

    def add_ticket(self, requester: str, status: str, subject: str = "Earlier issue") -> int:
        tid = 100 + len(self.tickets) + 1
        self.tickets[tid] = {
            "id": tid,
            "subject": subject,
            "status": status,
            "requester_email": requester,
            "comments": [],
        }
        return tid

    def _authed(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == _basic(f"{self.email}/token", self.token)

    def error_response(self, status: int, headers: dict[str, str]) -> web.Response:
        # 429: text/plain body and Retry-After (seconds).
        # https://developer.zendesk.com/api-reference/introduction/rate-limits/
        if status == 429:
            return web.Response(text="Number of allowed API requests per minute exceeded",
                                status=429, headers=headers, content_type="text/plain")
        if status >= 500:
            return web.Response(text="Service Unavailable", status=status, headers=headers,
                                content_type="text/plain")
        return web.json_response({"error": "InvalidEndpoint", "description": "Not found"},
                                 status=status, headers=headers)

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v2/search.json", self.search)
        app.router.add_post("/api/v2/tickets.json", self.create)
        app.router.add_put(r"/api/v2/tickets/{id:\d+}.json", self.update)
        app.router.add_get("/api/v2/users/me.json", self.me)

    def _deny(self) -> web.Response:
        return web.json_response({"error": "Couldn't authenticate you"}, status=401)

    async def me(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        return web.json_response({"user": {"id": 1, "email": self.email, "role": "agent"}})

    async def search(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        q = request.query.get("query", "")
        m = re.fullmatch(r"type:ticket status<solved requester:(\S+)", q)
        if not m:
            return web.json_response({"error": "unsupported query in fake"}, status=400)
        found = [
            {"id": t["id"], "subject": t["subject"], "status": t["status"], "result_type": "ticket"}
            for t in sorted(self.tickets.values(), key=lambda t: -t["id"])
            if t["requester_email"] == m.group(1)
            and t["status"] in ("new", "open", "pending", "hold")
        ]
        return web.json_response(
            {"results": found, "count": len(found), "next_page": None, "previous_page": None}
        )

    async def create(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        key = request.headers.get("Idempotency-Key")
        if key and key in self.idem:
            t = self.tickets[self.idem[key]]
            return web.json_response(
                {"ticket": {"id": t["id"], "status": t["status"]}},
                status=201,
                headers={"x-idempotency-lookup": "hit"},
            )
        data = await request.json()
        ticket = data.get("ticket") or {}
        if not isinstance(ticket.get("comment"), dict) or not ticket["comment"].get("body"):
            return web.json_response(
                {"error": "RecordInvalid", "description": "Record validation errors"}, status=422
            )
        req = ticket.get("requester") or {}
        tid = self.add_ticket(req.get("email", self.email), "new", ticket.get("subject", ""))
        self.tickets[tid]["comments"].append(ticket["comment"])
        if key:
            self.idem[key] = tid
        return web.json_response(
            {"ticket": {"id": tid, "status": "new"}},
            status=201,
            headers={"Location": f"{self.url}/api/v2/tickets/{tid}.json"},
        )

    async def update(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        tid = int(request.match_info["id"])
        if tid not in self.tickets:
            return web.json_response({"error": "RecordNotFound"}, status=404)
        data = await request.json()
        comment = (data.get("ticket") or {}).get("comment")
        if comment:
            self.tickets[tid]["comments"].append(comment)
        return web.json_response({"ticket": {"id": tid, "status": self.tickets[tid]["status"]}})


@dataclass
class FreshdeskServer(FakeServer):
    """Freshdesk API v2 subset: list tickets by e-mail, create ticket, add note, agents/me.

    Auth: Basic base64("{api_key}:X"); 401 ``invalid_credentials`` otherwise. Ticket
    statuses: 2 Open, 3 Pending, 4 Resolved, 5 Closed.
    """

    api_key: str = "fd-key-456"
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)

    def add_ticket(self, email: str, status: int, subject: str = "Earlier issue") -> int:
        tid = 500 + len(self.tickets) + 1
        self.tickets[tid] = {"id": tid, "subject": subject, "status": status, "email": email}
        return tid

    def _authed(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == _basic(self.api_key, "X")

    def _deny(self) -> web.Response:
        return web.json_response(
            {
                "code": "invalid_credentials",
                "message": "You have to be logged in to perform this action.",
            },
            status=401,
        )

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v2/tickets", self.list_tickets)
        app.router.add_post("/api/v2/tickets", self.create)
        app.router.add_post(r"/api/v2/tickets/{id:\d+}/notes", self.note)
        app.router.add_get("/api/v2/agents/me", self.me)

    async def me(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        return web.json_response({"id": 9, "contact": {"email": "agent@acme.test"}})

    async def list_tickets(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        email = request.query.get("email")
        rows = [
            {"id": t["id"], "subject": t["subject"], "status": t["status"], "requester_id": 77}
            for t in sorted(self.tickets.values(), key=lambda t: -t["id"])
            if email is None or t["email"] == email
        ]
        return web.json_response(rows)

    async def create(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        data = await request.json()
        errors = []
        if not data.get("email"):
            errors.append(
                {
                    "field": "requester_id",
                    "message": "Please fill at least 1 of "
                    "email, mobile, phone, twitter_id, requester_id attributes",
                    "code": "missing_field",
                }
            )
        if not data.get("subject"):
            errors.append(
                {"field": "subject", "message": "It should not be blank", "code": "missing_field"}
            )
        if errors:
            return web.json_response(
                {"description": "Validation failed", "errors": errors}, status=400
            )
        tid = self.add_ticket(data["email"], data.get("status", 2), data["subject"])
        return web.json_response({"id": tid, "status": data.get("status", 2)}, status=201)

    async def note(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        tid = int(request.match_info["id"])
        if tid not in self.tickets:
            return web.json_response({"code": "not_found"}, status=404)
        data = await request.json()
        note = {"id": 9000 + len(self.notes), "ticket_id": tid, **data}
        self.notes.append(note)
        return web.json_response(note, status=201)


@dataclass
class WebhookReceiver(FakeServer):
    """A receiver that verifies signatures with the helper and de-duplicates on
    Idempotency-Key, as the docs tell integrators to do."""

    secret: str = "whsec-test"
    clock: Callable[[], float] | None = None
    accepted: dict[str, Any] = field(default_factory=dict)  # idempotency key → event
    order: list[str] = field(default_factory=list)
    hits: dict[str, int] = field(default_factory=dict)  # successful requests per key
    rejected: int = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/hook", self.hook)

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = self.clock() if self.clock else None
        if not verify_signature(
            self.secret, request.headers.get("X-Cipherdesk-Signature"), body, now=now
        ):
            self.rejected += 1
            return web.json_response({"error": "bad signature"}, status=400)
        key = request.headers["Idempotency-Key"]
        self.hits[key] = self.hits.get(key, 0) + 1
        if key not in self.accepted:
            self.accepted[key] = json.loads(body)
            self.order.append(key)
        return web.Response(text="ok")


async def eventually(predicate: Callable[[], Any], seconds: float = 5.0) -> None:
    """Poll an (async or sync) predicate until true; fail after ``seconds``."""
    async with asyncio.timeout(seconds):
        while True:
            value = predicate()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return
            await asyncio.sleep(0.02)


def msg_event(chat: str = "chat-1", n: int = 1) -> Event:
    """A masked chat.message event for transport tests."""
    from plugins.api import MessagePosted

    return MessagePosted(tenant_id="acme", chat_id=chat, occurred_at=1_700_000_000.0 + n,
                         event_id=f"{chat}-{n}", seq=n, sender="customer", text="masked")
