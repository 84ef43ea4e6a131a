"""Built-in plugin ``freshdesk``: the masked transcript of each closed chat lands in
Freshdesk, through the REST API v2 (HTTP Basic with the API key as user, ``X`` as password).

On ``chat.closed``:

1. with the customer's e-mail: ``GET /api/v2/tickets?email=<email>&order_by=updated_at
   &order_type=desc`` and keep tickets whose status is 2 (Open) or 3 (Pending). Freshdesk's
   list endpoint only returns tickets created in the last 30 days unless
   ``updated_since`` is given — an older open ticket is therefore not found and a new
   ticket is created (acceptable: chats are about recent issues);
2. one found → ``POST /api/v2/tickets/{id}/notes`` ``{"body": <html>, "private": true}``;
3. none → ``POST /api/v2/tickets`` ``{"email", "name", "subject", "description", "status": 2,
   "priority": 1, "tags": ["cipherdesk"]}``.

Freshdesk needs a requester to create a ticket. Without the customer's e-mail (anonymous
chat) the configured ``fallback_email`` is used; when none is configured the delivery
fails permanently (dead letter, replayable once configured).

Same error mapping as the other built-ins: 429 → retry after ``Retry-After``; 5xx /
network → retry; other 4xx → permanent. ``Idempotency-Key`` is sent, though Freshdesk
does not document de-duplication on it.
"""

from __future__ import annotations

import base64
from typing import Any

import aiohttp

from plugins import __version__
from plugins._ticketing import TicketingPlugin
from plugins.api import (
    ChatClosed,
    ConfigError,
    ConfigField,
    Factory,
    Health,
    PermanentError,
    PluginError,
    PluginInfo,
    Scope,
)
from plugins.transcript import as_html, format_transcript, ticket_subject

VENDOR = "freshdesk"
OPEN_STATUSES = (2, 3)  # Open, Pending

INFO = PluginInfo(
    name="freshdesk",
    version=__version__,
    scopes=frozenset({Scope.CHAT_CLOSED.value, Scope.CUSTOMER_IDENTITY.value}),
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
        ConfigField(name="timeout", type="float", default=10.0, help="Request timeout, s."),
    ),
    description="Chat transcripts into Freshdesk tickets (a private note on the open one).",
)


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
        self, config: dict[str, Any], secrets: dict[str, Any], http: aiohttp.ClientSession
    ):
        super().__init__(
            http=http,
            base=_base_url(config),
            authorization="Basic " + base64.b64encode(f"{secrets['api_key']}:X".encode()).decode(),
            timeout=float(config.get("timeout", 10.0)),
            tags=list(config.get("tags") or ["cipherdesk"]),
        )
        self._fallback = config.get("fallback_email")
        self._priority = int(config.get("priority", 1))

    async def open_tickets(self, email: str) -> list[dict[str, Any]]:
        data = await self._call(
            "GET",
            "/api/v2/tickets",
            params={"email": email, "order_by": "updated_at", "order_type": "desc"},
        )
        if not isinstance(data, list):
            return []
        return [t for t in data if isinstance(t, dict) and t.get("status") in OPEN_STATUSES]

    async def append(
        self, ticket: dict[str, Any], event: ChatClosed, headers: dict[str, str]
    ) -> None:
        await self._call(
            "POST",
            f"/api/v2/tickets/{int(ticket['id'])}/notes",
            json={"body": as_html(format_transcript(event)), "private": True},
            headers=headers,
        )

    async def create(self, event: ChatClosed, email: str | None, headers: dict[str, str]) -> None:
        requester = email or self._fallback
        if not requester:
            raise PermanentError(
                "freshdesk: no requester e-mail (anonymous chat and no fallback_email configured)"
            )
        ticket: dict[str, Any] = {
            "email": requester,
            "subject": ticket_subject(event),
            "description": as_html(format_transcript(event)),
            "status": 2,
            "priority": self._priority,
            "tags": self._tags,
        }
        customer = event.customer
        if email and customer and customer.name:
            ticket["name"] = customer.name
        await self._call("POST", "/api/v2/tickets", json=ticket, headers=headers)

    def ticket_url(self, ticket_id: Any) -> str:
        return f"{self._base}/a/tickets/{ticket_id}"

    async def health(self) -> Health:
        try:
            await self._call("GET", "/api/v2/agents/me")
        except PluginError as exc:
            return Health(ok=False, detail=str(exc))
        return Health(ok=True, detail="freshdesk: authenticated")


def create(
    config: dict[str, Any], secrets: dict[str, Any], http: aiohttp.ClientSession
) -> FreshdeskPlugin:
    return FreshdeskPlugin(config, secrets, http)


factory = Factory(INFO, create)
info = INFO
