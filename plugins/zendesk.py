"""Built-in plugin ``zendesk``: the masked transcript of each closed chat lands in Zendesk
Support as a private comment, through the Ticketing REST API v2 with API-token auth.

On ``chat.closed``:

1. with the customer's e-mail (needs the ``customer.identity`` scope, which this plugin
   declares): ``GET /api/v2/search.json?query=type:ticket status<solved requester:<email>``
   (newest updated first);
2. an unsolved ticket found → ``PUT /api/v2/tickets/{id}.json`` adding the transcript as a
   private comment (``public: false``);
3. none found → ``POST /api/v2/tickets.json`` creating a ticket (subject, the transcript
   as a private first comment, requester name/e-mail, tags ``["cipherdesk"]``).
   Without an e-mail (anonymous chat) the ticket is created without a requester, so
   Zendesk makes the API user the requester; agents can set the real one.

``Idempotency-Key`` (the event id) is sent on writes: Zendesk de-duplicates ticket
creation on it. Appending a comment is not de-duplicated by Zendesk, so a retry after a
timeout that actually succeeded may add the comment twice (at-least-once).

Errors: 429 → retry after ``Retry-After``; 5xx / network → retry with backoff;
401/403/404/422 (and other 4xx) → permanent (dead letter) with a message naming only
the status.
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
    PluginError,
    PluginInfo,
    Scope,
)
from plugins.transcript import format_transcript, ticket_subject

VENDOR = "zendesk"

INFO = PluginInfo(
    name="zendesk",
    version=__version__,
    scopes=frozenset({Scope.CHAT_CLOSED.value, Scope.CUSTOMER_IDENTITY.value}),
    config_schema=(
        ConfigField(name="subdomain", help="Your Zendesk subdomain (acme → acme.zendesk.com)."),
        ConfigField(name="base_url", type="url", help="Overrides subdomain (tests, proxies)."),
        ConfigField(
            name="email", type="email", required=True, help="Agent e-mail of the API token."
        ),
        ConfigField(name="api_token", required=True, secret=True, help="Zendesk API token."),
        ConfigField(name="tags", type="list", default=["cipherdesk"], help="Tags on new tickets."),
        ConfigField(name="timeout", type="float", default=10.0, help="Request timeout, s."),
    ),
    description="Chat transcripts into Zendesk Support tickets (new or the open one).",
)


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
        self, config: dict[str, Any], secrets: dict[str, Any], http: aiohttp.ClientSession
    ):
        token = f"{config['email']}/token:{secrets['api_token']}".encode()
        super().__init__(
            http=http,
            base=_base_url(config),
            authorization="Basic " + base64.b64encode(token).decode(),
            timeout=float(config.get("timeout", 10.0)),
            tags=list(config.get("tags") or ["cipherdesk"]),
        )

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

    async def append(
        self, ticket: dict[str, Any], event: ChatClosed, headers: dict[str, str]
    ) -> None:
        await self._call(
            "PUT",
            f"/api/v2/tickets/{int(ticket['id'])}.json",
            json={"ticket": {"comment": {"body": format_transcript(event), "public": False}}},
            headers=headers,
        )

    async def create(self, event: ChatClosed, email: str | None, headers: dict[str, str]) -> None:
        ticket: dict[str, Any] = {
            "subject": ticket_subject(event),
            "comment": {"body": format_transcript(event), "public": False},
            "tags": self._tags,
        }
        if email:
            customer = event.customer
            ticket["requester"] = {
                "name": (customer.name if customer and customer.name else email.split("@")[0]),
                "email": email,
            }
        await self._call("POST", "/api/v2/tickets.json", json={"ticket": ticket}, headers=headers)

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
    config: dict[str, Any], secrets: dict[str, Any], http: aiohttp.ClientSession
) -> ZendeskPlugin:
    return ZendeskPlugin(config, secrets, http)


factory = Factory(INFO, create)
info = INFO
