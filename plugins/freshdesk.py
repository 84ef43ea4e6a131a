"""Built-in plugin ``freshdesk``: one Freshdesk ticket per chat (source 7, Chat), with the
masked transcript as a private note when the chat closes (REST API v2, HTTP Basic with
the API key as user and ``X`` as password). Shared flow: :mod:`plugins._ticketing`.

* ``chat.opened`` → look for the chat's ticket, else ``POST /api/v2/tickets``
  ``{"email", "name", "subject", "description", "status": 2, "priority", "source": 7,
  "tags"[, "custom_fields": {<chat_field>: <chat id>}]}``.
  Freshdesk has no idempotency keys, so the look-up matters: ``GET /api/v2/tickets?
  email=<requester>&order_by=created_at&order_type=desc`` (the list API reads the
  database, not a search index) and a ticket whose ``custom_fields[chat_field]`` (when
  configured) or subject names this chat is the chat's ticket. For a first-time
  customer Freshdesk answers that list with **400** ``invalid_value`` "There is no contact
  matching the given email" — that means "no tickets yet", and the ticket is created.
* ``chat.closed`` → ``POST /api/v2/tickets/{id}/notes`` ``{"body": <html>, "private":
  true}`` ending with a ``[cipherdesk event …]`` marker; a retry after a failed attempt
  first reads ``GET /api/v2/tickets/{id}/conversations`` for the marker.

Freshdesk needs a requester: without the customer's e-mail (anonymous chat) the
configured ``fallback_email`` is used; with neither, the delivery fails permanently
(dead letter, replayable once configured). ``priority`` must be 1-4 (refused at
configuration). Errors: 429 → retry after ``Retry-After``; 5xx / network → retry; other
4xx → permanent, naming the status and Freshdesk's error code.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import aiohttp

from plugins import __version__
from plugins._inbound import InboundDialect
from plugins._ticketing import ATTEMPT_TTL, DONE_KEY, TicketingPlugin, comment_marker
from plugins.api import (
    ChatClosed,
    ChatOpened,
    ConfigError,
    ConfigField,
    Event,
    Factory,
    Health,
    PermanentError,
    PluginContext,
    PluginError,
    PluginInfo,
    RetryableError,
    Scope,
)
from plugins.transcript import as_html, format_transcript, ticket_subject

VENDOR = "freshdesk"
OPEN_STATUSES = (2, 3)  # Open, Pending
SOURCE_CHAT = 7  # ticket source "Chat" (https://developers.freshdesk.com/api/#tickets)

INFO = PluginInfo(
    name="freshdesk",
    version=__version__,
    scopes=frozenset(
        {Scope.CHAT_OPENED.value, Scope.CHAT_CLOSED.value, Scope.CUSTOMER_IDENTITY.value}
    ),
    config_schema=(
        ConfigField(name="domain", help="Your Freshdesk domain (acme → acme.freshdesk.com)."),
        ConfigField(name="base_url", type="url", help="Overrides domain (tests, proxies)."),
        ConfigField(name="api_key", required=True, secret=True, help="Freshdesk API key."),
        ConfigField(
            name="fallback_email",
            type="email",
            help="Requester for chats without a known customer e-mail.",
        ),
        ConfigField(
            name="priority",
            type="int",
            default=1,
            minimum=1,
            maximum=4,
            help="Priority of new tickets: 1 low, 2 medium, 3 high, 4 urgent.",
        ),
        ConfigField(name="tags", type="list", default=["cipherdesk"], help="Tags on new tickets."),
        ConfigField(
            name="inbound_secret",
            secret=True,
            help="Token of the inbound API (replies, private notes, resolved → handled): "
            "a long random value (e.g. `openssl rand -hex 32`) that the Freshdesk "
            "automation rule's Trigger Webhook sends as the password of Basic "
            "authentication or in an X-Cipherdesk-Token header; body template in "
            "docs/PLUGINS.md §8. Unset: no inbound API.",
            # A bearer token is only as strong as its length: at least 32 characters.
            pattern=r"[A-Za-z0-9_\-.~+/=]{32,256}",
            max_length=256,
        ),
        ConfigField(
            name="chat_field",
            pattern=r"cf_[a-z0-9_]{1,60}",
            help="Optional custom ticket field (single-line text, e.g. cf_cipherdesk_chat) "
            "that records the chat id; without it the ticket subject identifies the chat.",
        ),
        ConfigField(
            name="delete_customers",
            type="bool",
            default=False,
            help="When a customer's erasure is requested in cipherdesk, delete them "
            "permanently in Freshdesk too (contacts with the customer's e-mail, "
            "hard-deleted with their tickets).",
        ),
        ConfigField(name="timeout", type="float", default=10.0, help="Request timeout, s."),
    ),
    description="One Freshdesk ticket per chat (source Chat); the transcript as a private note.",
)


INBOUND = InboundDialect(
    vendor=VENDOR,
    # Freshdesk status numbers (2 open, 3 pending, 4 resolved, 5 closed — REST API v2,
    # https://developers.freshdesk.com/api/#tickets) or the names ``{{ticket.status}}``
    # prints. Pending, resolved and closed tickets need nothing more from the chat's agents.
    handled_statuses=frozenset({"3", "4", "5", "pending", "resolved", "closed"}),
    # Freshdesk automation rules' "Trigger Webhook" action cannot compute an HMAC; it can
    # send Basic authentication ("Requires authentication": username/password or API key)
    # and custom headers, with a JSON body built from placeholders
    # (https://support.freshdesk.com/support/solutions/articles/132589-using-webhooks-in-
    # automation-rules). So the inbound secret is accepted as a bearer token, and the
    # body's own event id + timestamp make each call single-use.
    token_auth=True,
    setup="""Inbound API (helpdesk -> chat), docs/PLUGINS.md section 8:
  URL      POST https://<gateway>/api/inbound/<tenant>/freshdesk
  Auth     "Requires authentication": any user name, password = inbound_secret
           (or custom header X-Cipherdesk-Token: <inbound_secret>)
  Encoding JSON, content advanced. Rule "Note is added (private)":
  {"action": "note", "chat": "{{ticket.cf_cipherdesk_chat}}",
   "text": "{{ticket.latest_private_comment}}", "agent_name": "{{ticket.agent.name}}",
   "event": "note-{{ticket.id}}-{{ticket.updated_at}}", "ts": "{{ticket.updated_at}}"}
  Rule "Reply is sent": the same with "action": "reply" and
   {{ticket.latest_public_comment}}, event prefix "reply-".
  Rule "Status is changed": {"action": "status", "status": "{{ticket.status}}",
   "chat": ..., "agent_name": ..., "event": "status-{{ticket.id}}-{{ticket.updated_at}}",
   "ts": "{{ticket.updated_at}}"}   (Pending/Resolved/Closed -> handled)
  event must be unique per call and ts within 300 s; chat needs chat_field set.""",
)
"""Inbound vocabulary of Freshdesk automation rules (docs/PLUGINS.md §8)."""


def _base_url(config: dict[str, Any]) -> str:
    if config.get("base_url"):
        return str(config["base_url"]).rstrip("/")
    dom = str(config.get("domain") or "").strip()
    if dom.endswith(".freshdesk.com"):
        dom = dom[: -len(".freshdesk.com")]
    if not dom or not dom.replace("-", "").isalnum():
        raise ConfigError(INFO.name, "domain", "set domain (or base_url)")
    return f"https://{dom}.freshdesk.com"


class FreshdeskPlugin(TicketingPlugin):
    info = INFO
    vendor = VENDOR

    def __init__(
        self,
        config: dict[str, Any],
        secrets: dict[str, Any],
        http: aiohttp.ClientSession,
        context: PluginContext | None = None,
    ):
        super().__init__(
            http=http,
            base=_base_url(config),
            authorization="Basic " + base64.b64encode(f"{secrets['api_key']}:X".encode()).decode(),
            timeout=float(config.get("timeout", 10.0)),
            tags=list(config.get("tags") or ["cipherdesk"]),
            kv=context.kv if context else None,
            clock=context.clock if context else time.time,
        )
        self.info = self.scoped(INFO, config)
        self._fallback = config.get("fallback_email")
        self._priority = int(config.get("priority", 1))
        self._chat_field = config.get("chat_field") or None

    async def find_people(self, email: str) -> list[Any]:
        """Contacts with the e-mail (List All Contacts, ``?email=``)."""
        data = await self._call("GET", "/api/v2/contacts", params={"email": email})
        contacts = [c for c in data or [] if isinstance(c, dict)]
        return [int(c["id"]) for c in contacts if "id" in c]

    async def delete_person(self, person_id: Any) -> None:
        """Permanently Delete a Contact with ``force=true`` (no soft delete first); their
        tickets go with them. A 404 means an earlier attempt did it."""
        try:
            await self._call(
                "DELETE", f"/api/v2/contacts/{person_id}/hard_delete", params={"force": "true"}
            )
        except PluginError as exc:
            if exc.status != 404:
                raise

    async def _tickets_of(self, email: str, order_by: str) -> list[dict[str, Any]]:
        try:
            data = await self._call(
                "GET",
                "/api/v2/tickets",
                params={"email": email, "order_by": order_by, "order_type": "desc"},
            )
        except PermanentError as exc:
            if exc.status == 400 and exc.vendor_code == "invalid_value":
                return []  # "There is no contact matching the given email": a new customer
            raise
        return [t for t in data if isinstance(t, dict)] if isinstance(data, list) else []

    def _requester(self, email: str | None) -> str:
        requester = email or self._fallback
        if not requester:
            raise PermanentError(
                "freshdesk: no requester e-mail (anonymous chat and no fallback_email configured)"
            )
        return str(requester)

    async def find_chat_ticket(self, event: Event, email: str | None) -> Any | None:
        subject_tag = f"Chat {event.chat_id} "
        for ticket in await self._tickets_of(self._requester(email), "created_at"):
            fields = ticket.get("custom_fields") or {}
            if self._chat_field and fields.get(self._chat_field) == event.chat_id:
                return ticket.get("id")
            if str(ticket.get("subject") or "").startswith(subject_tag):
                return ticket.get("id")
        return None

    async def create_ticket(self, event: Event, email: str | None) -> Any:
        description = (
            f"Chat {event.chat_id} started in cipherdesk (queue {event.queue})."
            if isinstance(event, ChatOpened)
            else format_transcript(event) + "\n\n" + comment_marker(event)
            if isinstance(event, ChatClosed)
            else ""
        )
        ticket: dict[str, Any] = {
            "email": self._requester(email),
            "subject": ticket_subject(event),
            "description": as_html(description),
            "status": 2,
            "priority": self._priority,
            "source": SOURCE_CHAT,
            "tags": self._tags,
        }
        if self._chat_field:
            ticket["custom_fields"] = {self._chat_field: event.chat_id}
        customer = event.customer
        if email and customer and customer.name:
            ticket["name"] = customer.name
        data = await self._call("POST", "/api/v2/tickets", json=ticket)
        ticket_id = (data or {}).get("id") if isinstance(data, dict) else None
        if ticket_id is None:
            raise RetryableError("freshdesk: ticket created without an id in the answer")
        if isinstance(event, ChatClosed):
            await self.kv.put(DONE_KEY + event.event_id, "1", ttl=ATTEMPT_TTL)
        return int(ticket_id)

    async def comment_bodies(self, ticket_id: Any) -> list[str]:
        data = await self._call("GET", f"/api/v2/tickets/{int(ticket_id)}/conversations")
        if not isinstance(data, list):
            return []
        return [str(c.get("body") or "") for c in data if isinstance(c, dict)]

    def comment_body(self, event: ChatClosed) -> str:
        return as_html(format_transcript(event) + "\n\n" + comment_marker(event))

    async def add_comment(self, ticket_id: Any, event: ChatClosed, body: str) -> Any | None:
        await self._call(
            "POST",
            f"/api/v2/tickets/{int(ticket_id)}/notes",
            json={"body": body, "private": True},
        )
        return None

    async def open_tickets(self, email: str) -> list[dict[str, Any]]:
        tickets = await self._tickets_of(email, "updated_at")
        return [t for t in tickets if t.get("status") in OPEN_STATUSES and "id" in t]

    def ticket_url(self, ticket_id: Any) -> str:
        return f"{self._base}/a/tickets/{ticket_id}"

    async def health(self) -> Health:
        try:
            await self._call("GET", "/api/v2/agents/me")
        except PluginError as exc:
            return Health(ok=False, detail=str(exc))
        return Health(ok=True, detail="freshdesk: authenticated")


def create(
    config: dict[str, Any],
    secrets: dict[str, Any],
    http: aiohttp.ClientSession,
    context: PluginContext | None = None,
) -> FreshdeskPlugin:
    return FreshdeskPlugin(config, secrets, http, context)


factory = Factory(INFO, create)
info = INFO
