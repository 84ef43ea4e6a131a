"""The flow every ticketing helpdesk shares, so vendor plugins only say what differs.

On ``chat.closed``: with the customer's e-mail, look for the requester's open ticket and
append the masked transcript to it; otherwise create a ticket. ``enrich`` lists the open
tickets for the agent. Authenticated JSON calls, timeouts and the mapping of HTTP
statuses to retryable/permanent errors live in :mod:`plugins._http`.

A vendor subclass provides: how to find open tickets, how to append, how to create, the
URL of a ticket for agents, and how to check credentials (``health``).
"""

from __future__ import annotations

import abc
from typing import Any

import aiohttp

from plugins._http import request_json
from plugins.api import ChatClosed, CustomerIdentity, Event

Ticket = dict[str, Any]


class TicketingPlugin(abc.ABC):
    """Base of the Zendesk and Freshdesk plugins (see the module docstring)."""

    vendor = ""

    def __init__(
        self,
        *,
        http: aiohttp.ClientSession,
        base: str,
        authorization: str,
        timeout: float,
        tags: list[str],
    ) -> None:
        self._http = http
        self._base = base
        self._auth = authorization
        self._timeout = timeout
        self._tags = tags

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._base}>"

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": self._auth, **kwargs.pop("headers", {})}
        return await request_json(
            self._http,
            self.vendor,
            method,
            self._base + path,
            headers=headers,
            timeout_s=self._timeout,
            **kwargs,
        )

    # -- what a vendor provides ---------------------------------------------------------
    @abc.abstractmethod
    async def open_tickets(self, email: str) -> list[Ticket]:
        """The requester's open tickets, most recently updated first."""

    @abc.abstractmethod
    async def append(self, ticket: Ticket, event: ChatClosed, headers: dict[str, str]) -> None:
        """Add the masked transcript to an existing ticket."""

    @abc.abstractmethod
    async def create(self, event: ChatClosed, email: str | None, headers: dict[str, str]) -> None:
        """Create a ticket carrying the masked transcript."""

    @abc.abstractmethod
    def ticket_url(self, ticket_id: Any) -> str:
        """Where an agent opens the ticket in the helpdesk."""

    # -- the shared flow ----------------------------------------------------------------
    async def deliver(self, event: Event) -> None:
        if not isinstance(event, ChatClosed):
            return  # not declared; the dispatcher never sends other types
        headers = {"Idempotency-Key": event.event_id}
        email = event.customer.email if event.customer else None
        if email:
            tickets = await self.open_tickets(email)
            if tickets:
                await self.append(tickets[0], event, headers)
                return
        await self.create(event, email, headers)

    async def enrich(self, customer: CustomerIdentity) -> dict[str, Any]:
        if not customer.email:
            return {"open_tickets": []}
        tickets = await self.open_tickets(customer.email)
        return {
            "open_tickets": [
                {
                    "id": t["id"],
                    "subject": t.get("subject"),
                    "status": t.get("status"),
                    "url": self.ticket_url(t["id"]),
                }
                for t in tickets[:10]
            ]
        }

    async def aclose(self) -> None:
        return None
