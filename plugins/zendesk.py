"""Built-in plugin ``zendesk``: one Zendesk Support ticket per chat, with the masked
transcript as a private comment when the chat closes (Ticketing REST API v2, API-token
auth). The shared flow and why it keeps its own chat → ticket mapping: :mod:`plugins._ticketing`.

* ``chat.opened`` → ``GET /api/v2/tickets.json?external_id=<chat id>`` (a list, not the
  search API: no index lag) and, when none, ``POST /api/v2/tickets.json`` with
  ``external_id`` = chat id, requester name/e-mail (``customer.identity``), tags, a
  private first comment, and ``Idempotency-Key`` = the event id (honoured by Zendesk for
  about two hours — the mapping and the ``external_id`` lookup cover later retries);
* ``chat.closed`` → ``PUT /api/v2/tickets/{id}.json`` adding the transcript as a private
  comment ending with a ``[cipherdesk event …]`` marker; a retry after a failed attempt
  first reads ``GET /api/v2/tickets/{id}/comments.json`` for that marker (PUT is not
  idempotent). A *closed* ticket answers 422: a follow-up ticket is created
  (``via_followup_source_id``) and becomes the chat's ticket.

Errors: 429 → retry after ``Retry-After``; 5xx / network → retry with backoff;
401/403/404/422 (and other 4xx) → permanent (dead letter) with a message naming only the
status and Zendesk's error code.
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
from plugins.transcript import format_transcript, ticket_subject

VENDOR = "zendesk"

INFO = PluginInfo(
    name="zendesk",
    version=__version__,
    scopes=frozenset(
        {Scope.CHAT_OPENED.value, Scope.CHAT_CLOSED.value, Scope.CUSTOMER_IDENTITY.value}
    ),
    config_schema=(
        ConfigField(name="subdomain", help="Your Zendesk subdomain (acme → acme.zendesk.com)."),
        ConfigField(name="base_url", type="url", help="Overrides subdomain (tests, proxies)."),
        ConfigField(
            name="email", type="email", required=True, help="Agent e-mail of the API token."
        ),
        ConfigField(name="api_token", required=True, secret=True, help="Zendesk API token."),
        ConfigField(name="tags", type="list", default=["cipherdesk"], help="Tags on new tickets."),
        ConfigField(
            name="inbound_secret",
            secret=True,
            help="Signing secret of the Zendesk webhook that calls the inbound API "
            "(replies, internal notes, solved → handled; docs/PLUGINS.md §8); "
            "unset: no inbound API.",
        ),
        ConfigField(
            name="delete_customers",
            type="bool",
            default=False,
            help="When a customer's erasure is requested in cipherdesk, delete them "
            "permanently in Zendesk too (end users with the customer's e-mail: deleted, "
            "then permanently deleted).",
        ),
        ConfigField(name="timeout", type="float", default=10.0, help="Request timeout, s."),
    ),
    description="One Zendesk Support ticket per chat; the transcript as a private comment.",
)


INBOUND = InboundDialect(
    vendor=VENDOR,
    # ``{{ticket.status}}`` prints the status name; solved and pending tickets need
    # nothing more from the chat's agents (the customer's chat itself stays open).
    handled_statuses=frozenset({"solved", "pending", "closed"}),
    setup="""Inbound API (helpdesk -> chat), docs/PLUGINS.md section 8:
  Webhook  POST https://<gateway>/api/inbound/<tenant>/zendesk, JSON,
           signing secret = inbound_secret (Zendesk signs every request)
  Trigger "Comment is Private" / "Comment is Public":
  {"action": "comment", "public": "{{ticket.latest_comment.is_public}}",
   "chat": "{{ticket.external_id}}", "text": "{{ticket.latest_comment}}",
   "agent_name": "{{current_user.name}}",
   "id": "{{ticket.id}}-{{ticket.latest_comment.id}}"}
  Trigger "Status changed to Solved/Pending":
  {"action": "status", "status": "{{ticket.status}}", "chat": "{{ticket.external_id}}",
   "agent_name": "{{current_user.name}}"}""",
)
"""Inbound vocabulary: ``{"action": "comment", "public": "{{ticket.latest_comment.is_public}}"}``
maps public comments to replies and private ones to agent-only notes; ``{"action":
"status", "status": "{{ticket.status}}"}`` marks the chat handled. Zendesk signs its
webhooks, so no token authentication."""


def _base_url(config: dict[str, Any]) -> str:
    if config.get("base_url"):
        return str(config["base_url"]).rstrip("/")
    sub = str(config.get("subdomain") or "").strip()
    if not sub or not sub.replace("-", "").isalnum():
        raise ConfigError(INFO.name, "subdomain", "set subdomain (or base_url)")
    return f"https://{sub}.zendesk.com"


class ZendeskPlugin(TicketingPlugin):
    info = INFO
    vendor = VENDOR

    def __init__(
        self,
        config: dict[str, Any],
        secrets: dict[str, Any],
        http: aiohttp.ClientSession,
        context: PluginContext | None = None,
    ):
        token = f"{config['email']}/token:{secrets['api_token']}".encode()
        super().__init__(
            http=http,
            base=_base_url(config),
            authorization="Basic " + base64.b64encode(token).decode(),
            timeout=float(config.get("timeout", 10.0)),
            tags=list(config.get("tags") or ["cipherdesk"]),
            kv=context.kv if context else None,
            clock=context.clock if context else time.time,
        )
        self.info = self.scoped(INFO, config)

    async def find_people(self, email: str) -> list[Any]:
        """End users with the e-mail (Search Users, ``query=email:``); agents and admins are
        never deleted by a customer's request."""
        data = await self._call(
            "GET", "/api/v2/users/search.json", params={"query": f"email:{email}"}
        )
        users = [u for u in (data or {}).get("users") or [] if isinstance(u, dict)]
        return [int(u["id"]) for u in users if u.get("role") == "end-user" and "id" in u]

    async def delete_person(self, person_id: Any) -> None:
        """Delete User, then Permanently Delete User (which needs the first): a 404 means
        that step was done by an earlier attempt."""
        for path in (f"/api/v2/users/{person_id}.json", f"/api/v2/deleted_users/{person_id}.json"):
            try:
                await self._call("DELETE", path)
            except PluginError as exc:
                if exc.status != 404:
                    raise

    async def find_chat_ticket(self, event: Event, email: str | None) -> Any | None:
        data = await self._call(
            "GET", "/api/v2/tickets.json", params={"external_id": event.chat_id}
        )
        tickets = [t for t in (data or {}).get("tickets") or [] if isinstance(t, dict)]
        live = [t for t in tickets if t.get("status") != "closed" and "id" in t]
        chosen = live or [t for t in tickets if "id" in t]
        return int(chosen[-1]["id"]) if chosen else None

    async def create_ticket(
        self, event: Event, email: str | None, *, key_suffix: str = "", **extra: Any
    ) -> Any:
        opened = isinstance(event, ChatOpened)
        body = (
            f"Chat {event.chat_id} started in cipherdesk (queue {event.queue})."
            if isinstance(event, ChatOpened)
            else self.comment_body(event)
            if isinstance(event, ChatClosed)
            else ""
        )
        ticket: dict[str, Any] = {
            "subject": ticket_subject(event),
            "comment": {"body": body, "public": False},
            "external_id": event.chat_id,
            "tags": self._tags,
            **extra,
        }
        if email:
            customer = event.customer
            ticket["requester"] = {
                "name": (customer.name if customer and customer.name else email.split("@")[0]),
                "email": email,
            }
        data = await self._call(
            "POST",
            "/api/v2/tickets.json",
            json={"ticket": ticket},
            headers={"Idempotency-Key": event.event_id + key_suffix},
        )
        ticket_id = ((data or {}).get("ticket") or {}).get("id")
        if ticket_id is None:
            raise RetryableError("zendesk: ticket created without an id in the answer")
        if not opened and isinstance(event, ChatClosed) and "comment" not in extra:
            # The transcript went in as the first comment: remember it as sent.
            await self.kv.put(DONE_KEY + event.event_id, "1", ttl=ATTEMPT_TTL)
        return int(ticket_id)

    async def comment_bodies(self, ticket_id: Any) -> list[str]:
        data = await self._call("GET", f"/api/v2/tickets/{int(ticket_id)}/comments.json")
        return [
            str(c.get("body") or "")
            for c in (data or {}).get("comments") or []
            if isinstance(c, dict)
        ]

    def comment_body(self, event: ChatClosed) -> str:
        return format_transcript(event) + "\n\n" + comment_marker(event)

    async def add_comment(self, ticket_id: Any, event: ChatClosed, body: str) -> Any | None:
        try:
            await self._call(
                "PUT",
                f"/api/v2/tickets/{int(ticket_id)}.json",
                json={"ticket": {"comment": {"body": body, "public": False}}},
            )
        except PermanentError as exc:
            if exc.status != 422:
                raise
            # Closed tickets cannot be updated: continue in a follow-up ticket.
            follow = await self.create_ticket(
                event,
                event.customer.email if event.customer else None,
                key_suffix=":followup",
                via_followup_source_id=int(ticket_id),
                comment={"body": body, "public": False},
            )
            return follow
        return None

    async def open_tickets(self, email: str) -> list[dict[str, Any]]:
        data = await self._call(
            "GET",
            "/api/v2/search.json",
            params={
                "query": f"type:ticket status<solved requester:{email}",
                "sort_by": "updated_at",
                "sort_order": "desc",
            },
        )
        results = (data or {}).get("results") or []
        return [
            r
            for r in results
            if isinstance(r, dict) and r.get("result_type", "ticket") == "ticket" and "id" in r
        ]

    def ticket_url(self, ticket_id: Any) -> str:
        return f"{self._base}/agent/tickets/{ticket_id}"

    async def health(self) -> Health:
        try:
            data = await self._call("GET", "/api/v2/users/me.json")
        except PluginError as exc:
            return Health(ok=False, detail=str(exc))
        user = (data or {}).get("user") or {}
        if user.get("id") is None:
            return Health(ok=False, detail="zendesk: not authenticated")
        return Health(ok=True, detail="zendesk: authenticated")


def create(
    config: dict[str, Any],
    secrets: dict[str, Any],
    http: aiohttp.ClientSession,
    context: PluginContext | None = None,
) -> ZendeskPlugin:
    return ZendeskPlugin(config, secrets, http, context)


factory = Factory(INFO, create)
info = INFO
