"""Test doubles for the plugin suite: an in-memory outbox store with the same semantics as
the gateway's stores (oldest pending per (plugin, chat), leases), a clock, plugins, and
local aiohttp servers implementing the vendors' documented endpoints."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
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
    """Zendesk Support API v2 subset, answering like the real API (each behaviour cites
    the vendor documentation it reproduces).

    * Auth: Basic base64("{email}/token:{api_token}"); otherwise 401
      ``{"error": "Couldn't authenticate you"}`` (https://developer.zendesk.com/api-reference/introduction/security-and-auth/).
    * ``POST /api/v2/tickets.json`` honours ``Idempotency-Key``: the same key within
      ``IDEMPOTENCY_TTL`` (2 h) returns the first ticket with ``x-idempotency-lookup:
      hit``; the same key with a different payload answers 400 ``IdempotentRequestError``;
      keys expire after 2 h (https://developer.zendesk.com/api-reference/ticketing/introduction/#idempotency).
    * ``GET /api/v2/tickets.json?external_id=X`` lists tickets by external id from the
      database, no lag (https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#list-tickets).
    * ``GET /api/v2/search.json`` only sees tickets indexed ``index_lag`` seconds after
      creation ("it can take a few minutes for new tickets to be indexed",
      https://developer.zendesk.com/api-reference/ticketing/ticket-management/search/).
    * ``PUT /api/v2/tickets/{id}.json`` on a *closed* ticket: 422 ``RecordInvalid`` with
      "Status: closed prevents ticket update"; follow-ups via ``via_followup_source_id``
      (https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-ticket,
      #create-ticket).
    * ``GET /api/v2/tickets/{id}/comments.json`` (https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/).
    * 429 answers are text/plain "Number of allowed API requests per minute exceeded" with
      ``Retry-After`` (https://developer.zendesk.com/api-reference/introduction/rate-limits/).
    * Users: every ticket requester is an end user. ``GET /api/v2/users/search.json?query=
      email:E`` lists active users with that e-mail (agents too: their ``role`` says so)
      (https://developer.zendesk.com/api-reference/ticketing/users/users/#search-users);
      ``DELETE /api/v2/users/{id}.json`` soft-deletes and answers 200 ``{"user": {...,
      "active": false}}`` (#delete-user); ``DELETE /api/v2/deleted_users/{id}.json``
      permanently deletes a *soft-deleted* user, 200 ``{"deleted_user": {...}}``; a user
      that was not deleted first, or is gone, is 404 ``RecordNotFound``
      (#permanently-delete-user: "Before permanently deleting a user, you must delete the
      user first").
    * ``stall_writes``: the next N writes are *committed* and then answered only after
      ``stall_seconds`` — a client timeout that hides a success.
    """

    email: str = "agent@acme.test"
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    token: str = "zd-token-123"
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    idem: dict[str, tuple[int, float, bytes]] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    index_lag: float = 120.0
    stall_writes: int = 0
    stall_seconds: float = 1.0
    IDEMPOTENCY_TTL: float = 2 * 3600.0

    def add_ticket(
        self,
        requester: str,
        status: str,
        subject: str = "Earlier issue",
        external_id: str | None = None,
        indexed: bool = True,
    ) -> int:
        tid = 100 + len(self.tickets) + 1
        created = self.clock() - (self.index_lag + 1 if indexed else 0)
        if requester and requester != self.email:  # the API agent is no end user
            self.add_user(requester)
        self.tickets[tid] = {
            "id": tid,
            "subject": subject,
            "status": status,
            "requester_email": requester,
            "external_id": external_id,
            "created": created,
            "comments": [],
        }
        return tid

    def _authed(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == _basic(f"{self.email}/token", self.token)

    def error_response(self, status: int, headers: dict[str, str]) -> web.Response:
        # 429: text/plain body and Retry-After (https://developer.zendesk.com/api-reference/introduction/rate-limits/).
        if status == 429:
            return web.Response(
                text="Number of allowed API requests per minute exceeded",
                status=429,
                headers=headers,
                content_type="text/plain",
            )
        if status >= 500:
            return web.Response(
                text="Service Unavailable",
                status=status,
                headers=headers,
                content_type="text/plain",
            )
        return web.json_response(
            {"error": "InvalidEndpoint", "description": "Not found"}, status=status, headers=headers
        )

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v2/search.json", self.search)
        app.router.add_get("/api/v2/tickets.json", self.list_tickets)
        app.router.add_post("/api/v2/tickets.json", self.create)
        app.router.add_put(r"/api/v2/tickets/{id:\d+}.json", self.update)
        app.router.add_get(r"/api/v2/tickets/{id:\d+}/comments.json", self.comments)
        app.router.add_get("/api/v2/users/me.json", self.me)
        app.router.add_get("/api/v2/users/search.json", self.search_users)
        app.router.add_delete(r"/api/v2/users/{id:\d+}.json", self.delete_user)
        app.router.add_delete(r"/api/v2/deleted_users/{id:\d+}.json", self.purge_user)

    def add_user(self, email: str, role: str = "end-user") -> int:
        """A user (ticket requesters become end users; an agent shares no e-mail with them
        unless a test says so)."""
        for uid, user in self.users.items():
            if user["email"] == email and user["state"] != "purged":
                return uid
        uid = 9000 + len(self.users) + 1
        self.users[uid] = {"id": uid, "email": email, "role": role, "state": "active"}
        return uid

    async def search_users(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        query = request.query.get("query", "")
        email = query[len("email:") :] if query.startswith("email:") else None
        rows = [
            {"id": u["id"], "email": u["email"], "role": u["role"], "active": True}
            for u in self.users.values()
            if u["state"] == "active" and email is not None and u["email"] == email
        ]
        return web.json_response({"users": rows, "count": len(rows), "next_page": None})

    async def delete_user(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        user = self.users.get(int(request.match_info["id"]))
        if user is None or user["state"] != "active":
            return web.json_response(
                {"error": "RecordNotFound", "description": "Not found"}, status=404
            )
        user["state"] = "deleted"
        return web.json_response(
            {"user": {"id": user["id"], "email": user["email"], "active": False}}
        )

    async def purge_user(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        user = self.users.get(int(request.match_info["id"]))
        if user is None or user["state"] != "deleted":
            return web.json_response(
                {"error": "RecordNotFound", "description": "Not found"}, status=404
            )
        user["state"] = "purged"
        for ticket in self.tickets.values():
            if ticket["requester_email"] == user["email"]:
                ticket["requester_email"] = None
        return web.json_response(
            {"deleted_user": {"id": user["id"], "email": None, "name": "Permanently Deleted User"}}
        )

    def _deny(self) -> web.Response:
        return web.json_response({"error": "Couldn't authenticate you"}, status=401)

    async def _stall(self) -> None:
        if self.stall_writes > 0:
            self.stall_writes -= 1
            await asyncio.sleep(self.stall_seconds)

    def _view(self, t: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": t["id"],
            "subject": t["subject"],
            "status": t["status"],
            "external_id": t["external_id"],
        }

    async def me(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        return web.json_response({"user": {"id": 1, "email": self.email, "role": "agent"}})

    async def list_tickets(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        ext = request.query.get("external_id")
        rows = [
            self._view(t)
            for t in sorted(self.tickets.values(), key=lambda t: t["id"])
            if ext is None or t["external_id"] == ext
        ]
        return web.json_response(
            {"tickets": rows, "count": len(rows), "next_page": None, "previous_page": None}
        )

    async def search(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        q = request.query.get("query", "")
        m = re.fullmatch(r"type:ticket status<solved requester:(\S+)", q)
        if not m:
            return web.json_response(
                {"error": "InvalidValue", "description": "unsupported query in fake"}, status=400
            )
        indexed_before = self.clock() - self.index_lag
        found = [
            {**self._view(t), "result_type": "ticket"}
            for t in sorted(self.tickets.values(), key=lambda t: -t["id"])
            if t["requester_email"] == m.group(1)
            and t["status"] in ("new", "open", "pending", "hold")
            and t["created"] <= indexed_before  # search index lag
        ]
        return web.json_response(
            {"results": found, "count": len(found), "next_page": None, "previous_page": None}
        )

    async def create(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        raw = await request.read()
        key = request.headers.get("Idempotency-Key")
        now = self.clock()
        for k, (_, at, _) in list(self.idem.items()):
            if now - at > self.IDEMPOTENCY_TTL:  # keys expire after two hours
                del self.idem[k]
        if key and key in self.idem:
            tid, _, first = self.idem[key]
            if first != raw:
                return web.json_response(
                    {
                        "error": "IdempotentRequestError",
                        "description": "Request parameters do not match the original request",
                    },
                    status=400,
                )
            return web.json_response(
                {"ticket": self._view(self.tickets[tid])},
                status=201,
                headers={"x-idempotency-lookup": "hit"},
            )
        data = json.loads(raw or b"{}")
        ticket = data.get("ticket") or {}
        if not isinstance(ticket.get("comment"), dict) or not ticket["comment"].get("body"):
            return web.json_response(
                {
                    "error": "RecordInvalid",
                    "description": "Record validation errors",
                    "details": {"base": [{"description": "Description: cannot be blank"}]},
                },
                status=422,
            )
        req = ticket.get("requester") or {}
        tid = self.add_ticket(
            req.get("email", self.email),
            "new",
            ticket.get("subject", ""),
            external_id=ticket.get("external_id"),
            indexed=False,
        )
        self.tickets[tid]["comments"].append(ticket["comment"])
        self.tickets[tid]["followup_of"] = ticket.get("via_followup_source_id")
        if key:
            self.idem[key] = (tid, now, raw)
        await self._stall()
        return web.json_response(
            {"ticket": self._view(self.tickets[tid])},
            status=201,
            headers={"Location": f"{self.url}/api/v2/tickets/{tid}.json"},
        )

    async def update(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        tid = int(request.match_info["id"])
        if tid not in self.tickets:
            return web.json_response(
                {"error": "RecordNotFound", "description": "Not found"}, status=404
            )
        if self.tickets[tid]["status"] == "closed":
            return web.json_response(
                {
                    "error": "RecordInvalid",
                    "description": "Record validation errors",
                    "details": {
                        "status": [{"description": "Status: closed prevents ticket update"}]
                    },
                },
                status=422,
            )
        data = await request.json()
        comment = (data.get("ticket") or {}).get("comment")
        if comment:
            self.tickets[tid]["comments"].append(comment)
        await self._stall()
        return web.json_response({"ticket": self._view(self.tickets[tid])})

    async def comments(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        tid = int(request.match_info["id"])
        if tid not in self.tickets:
            return web.json_response(
                {"error": "RecordNotFound", "description": "Not found"}, status=404
            )
        rows = [
            {"id": i + 1, "body": c.get("body"), "public": c.get("public", True)}
            for i, c in enumerate(self.tickets[tid]["comments"])
        ]
        return web.json_response({"comments": rows, "count": len(rows)})


@dataclass
class FreshdeskServer(FakeServer):
    """Freshdesk API v2 subset, answering like the real API (https://developers.freshdesk.com/api/):

    * Auth: Basic base64("{api_key}:X"); otherwise 401 ``{"code": "invalid_credentials",
      "message": "You have to be logged in to perform this action."}``
      (https://developers.freshdesk.com/api/#authentication).
    * ``GET /api/v2/tickets?email=E`` for an e-mail with no contact: **400**
      ``{"description": "Validation failed", "errors": [{"field": "email", "message":
      "There is no contact matching the given email", "code": "invalid_value"}]}``
      (https://developers.freshdesk.com/api/#list_all_tickets; error format:
      https://developers.freshdesk.com/api/#error). Contacts are created with their first
      ticket.
    * ``POST /api/v2/tickets``: 400 ``Validation failed`` with ``missing_field`` /
      ``invalid_value`` errors (requester, subject, priority 1-4, source 1-10 where 7 is
      Chat, unknown ``custom_fields`` → ``invalid_field``) (https://developers.freshdesk.com/api/#create_ticket).
      No idempotency keys: every POST creates a ticket.
    * ``POST /api/v2/tickets/{id}/notes``, ``GET /api/v2/tickets/{id}/conversations``
      (https://developers.freshdesk.com/api/#add_note_to_a_ticket, https://developers.freshdesk.com/api/#list_all_ticket_notes).
    * 429 with ``Retry-After`` (https://developers.freshdesk.com/api/#ratelimit).
    * Contacts: ``GET /api/v2/contacts?email=E`` lists the contacts with that e-mail
      (https://developers.freshdesk.com/api/#list_all_contacts); ``DELETE
      /api/v2/contacts/{id}/hard_delete?force=true`` answers 204 and removes the contact
      *with its tickets*; without ``force`` a contact that was not soft-deleted first is
      refused (400, ``invalid_value`` on ``force``); an unknown id is 404
      (https://developers.freshdesk.com/api/#hard_delete_contact).
    * ``stall_writes`` as in :class:`ZendeskServer`.
    """

    api_key: str = "fd-key-456"
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    notes: list[dict[str, Any]] = field(default_factory=list)
    contacts: set[str] = field(default_factory=set)
    deleted_contacts: list[str] = field(default_factory=list)
    contact_ids: dict[str, int] = field(default_factory=dict)
    custom_fields: tuple[str, ...] = ("cf_cipherdesk_chat",)
    stall_writes: int = 0
    stall_seconds: float = 1.0

    def add_ticket(
        self, email: str, status: int, subject: str = "Earlier issue", **extra: Any
    ) -> int:
        tid = 500 + len(self.tickets) + 1
        self.contacts.add(email)
        self.tickets[tid] = {
            "id": tid,
            "subject": subject,
            "status": status,
            "email": email,
            "source": extra.pop("source", 2),
            "custom_fields": extra.pop("custom_fields", {}),
            **extra,
        }
        return tid

    def _authed(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == _basic(self.api_key, "X")

    def contact_id(self, email: str) -> int:
        """The stable id of the contact with this e-mail (contacts are made with a ticket)."""
        return self.contact_ids.setdefault(email, 7000 + len(self.contact_ids) + 1)

    async def list_contacts(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        email = request.query.get("email")
        rows = [
            {"id": self.contact_id(e), "email": e, "active": True}
            for e in sorted(self.contacts)
            if email is None or e == email
        ]
        return web.json_response(rows)

    async def hard_delete(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        wanted = int(request.match_info["id"])
        email = next((e for e in self.contacts if self.contact_id(e) == wanted), None)
        if email is None:
            return web.json_response({"code": "access_denied", "message": "not found"}, status=404)
        if request.query.get("force") != "true":
            return self._invalid(
                ("force", "The contact must be soft deleted first, or use force", "invalid_value")
            )
        for tid in [t for t, row in self.tickets.items() if row["email"] == email]:
            del self.tickets[tid]
        self.contacts.discard(email)
        self.deleted_contacts.append(email)
        return web.Response(status=204)

    def _deny(self) -> web.Response:
        return web.json_response(
            {
                "code": "invalid_credentials",
                "message": "You have to be logged in to perform this action.",
            },
            status=401,
        )

    def _invalid(self, *errors: tuple[str, str, str]) -> web.Response:
        return web.json_response(
            {
                "description": "Validation failed",
                "errors": [{"field": f, "message": m, "code": c} for f, m, c in errors],
            },
            status=400,
        )

    def error_response(self, status: int, headers: dict[str, str]) -> web.Response:
        return web.json_response(
            {
                "code": "service_unavailable"
                if status >= 500
                else "rate_limit"
                if status == 429
                else "invalid_value",
                "message": "canned",
            },
            status=status,
            headers=headers,
        )

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v2/contacts", self.list_contacts)
        app.router.add_delete(r"/api/v2/contacts/{id:\d+}/hard_delete", self.hard_delete)
        app.router.add_get("/api/v2/tickets", self.list_tickets)
        app.router.add_post("/api/v2/tickets", self.create)
        app.router.add_post(r"/api/v2/tickets/{id:\d+}/notes", self.note)
        app.router.add_get(r"/api/v2/tickets/{id:\d+}/conversations", self.conversations)
        app.router.add_get("/api/v2/agents/me", self.me)

    async def me(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        return web.json_response({"id": 9, "contact": {"email": "agent@acme.test"}})

    async def list_tickets(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        email = request.query.get("email")
        if email is not None and email not in self.contacts:
            return self._invalid(
                ("email", "There is no contact matching the given email", "invalid_value")
            )
        order = request.query.get("order_by", "created_at")
        rows = [
            {
                "id": t["id"],
                "subject": t["subject"],
                "status": t["status"],
                "source": t["source"],
                "requester_id": 77,
                "custom_fields": t["custom_fields"],
            }
            for t in sorted(self.tickets.values(), key=lambda t: -t["id"])
            if email is None or t["email"] == email
        ]
        assert order in ("created_at", "updated_at", "due_by", "status")
        return web.json_response(rows)

    async def create(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        data = await request.json()
        errors = []
        if not data.get("email"):
            errors.append(
                (
                    "requester_id",
                    "Please fill at least 1 of email, mobile, phone, "
                    "twitter_id, requester_id attributes",
                    "missing_field",
                )
            )
        if not data.get("subject"):
            errors.append(("subject", "It should not be blank", "missing_field"))
        if data.get("priority", 1) not in (1, 2, 3, 4):
            errors.append(
                ("priority", "It should be one of these values: '1,2,3,4'", "invalid_value")
            )
        if data.get("source", 2) not in (1, 2, 3, 5, 6, 7, 9, 10):
            errors.append(
                ("source", "It should be one of these values: '1,2,3,5,6,7,9,10'", "invalid_value")
            )
        for name in data.get("custom_fields") or {}:
            if name not in self.custom_fields:
                errors.append((name, "Unexpected/invalid field in request", "invalid_field"))
        if errors:
            return self._invalid(*errors)
        tid = self.add_ticket(
            data["email"],
            data.get("status", 2),
            data["subject"],
            source=data.get("source", 2),
            custom_fields=data.get("custom_fields") or {},
            priority=data.get("priority", 1),
            description=data.get("description"),
        )
        await self._stall()
        return web.json_response(
            {"id": tid, "status": data.get("status", 2), "source": data.get("source", 2)},
            status=201,
        )

    async def _stall(self) -> None:
        if self.stall_writes > 0:
            self.stall_writes -= 1
            await asyncio.sleep(self.stall_seconds)

    async def note(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        tid = int(request.match_info["id"])
        if tid not in self.tickets:
            return web.json_response({"code": "access_denied", "message": "not found"}, status=404)
        data = await request.json()
        note = {"id": 9000 + len(self.notes), "ticket_id": tid, **data}
        self.notes.append(note)
        await self._stall()
        return web.json_response(note, status=201)

    async def conversations(self, request: web.Request) -> web.Response:
        if not self._authed(request):
            return self._deny()
        tid = int(request.match_info["id"])
        return web.json_response([n for n in self.notes if n["ticket_id"] == tid])


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

    return MessagePosted(
        tenant_id="acme",
        chat_id=chat,
        occurred_at=1_700_000_000.0 + n,
        event_id=f"{chat}-{n}",
        seq=n,
        sender="customer",
        text="masked",
    )
