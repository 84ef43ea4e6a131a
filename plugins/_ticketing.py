"""The flow every ticketing helpdesk shares, so vendor plugins only say what differs.

One ticket per chat, created exactly once:

* ``chat.opened`` → the chat's ticket is created (requester = the customer when the
  ``customer.identity`` scope gives an e-mail) so helpdesk agents see the chat at once;
* ``chat.closed`` → the masked transcript is added to the chat's ticket as a private
  note/comment (the ticket is created first if ``chat.opened`` never reached it, e.g.
  the plugin was enabled mid-chat).

Why not trust the vendor to de-duplicate: Zendesk's idempotency keys expire after about
two hours and cover ticket creation only, its search index lags by minutes, comments
(``PUT``) are not idempotent, and Freshdesk has no idempotency keys at all. A delivery
that timed out *after* the vendor acted is retried by the dispatcher, possibly hours
later. So the plugin keeps its own chat → ticket mapping in its key-value store
(:class:`plugins.api.KeyValueStore`) and, before creating, asks the vendor for a ticket
already carrying this chat (Zendesk ``external_id``, Freshdesk requester list + marker),
which also covers the create-succeeded-then-timed-out case. Comments carry a marker
(``[cipherdesk event <id>]``); before re-sending one after a failed attempt, the
ticket's comments are checked for it.

A vendor subclass provides: find a chat's ticket, create one, list a ticket's comment
bodies, add a comment, the URL of a ticket for agents, open tickets of a requester
(``enrich``), and ``health``.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from plugins._http import request_json
from plugins.api import (
    ChatClosed,
    ChatOpened,
    CustomerErased,
    CustomerIdentity,
    Event,
    KeyValueStore,
    PermanentError,
    PluginInfo,
    Scope,
)
from plugins.kv import MemoryKV

Ticket = dict[str, Any]
TICKET_KEY = "chat-ticket:"  # + chat id → vendor ticket id
ATTEMPT_KEY = "comment-attempt:"  # + event id → a comment send was started
DONE_KEY = "comment-done:"  # + event id → the comment is in the helpdesk
ATTEMPT_TTL = 30 * 86400.0


def comment_marker(event: Event) -> str:
    """The line identifying one delivery inside a comment (ids only, no chat text)."""
    return f"[cipherdesk event {event.event_id}]"


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
        kv: KeyValueStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._base = base
        self._auth = authorization
        self._timeout = timeout
        self._tags = tags
        # Outside the gateway (tests, scripts) the mapping lives in memory.
        self.kv: KeyValueStore = kv if kv is not None else MemoryKV(clock)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._base}>"

    @staticmethod
    def scoped(info: PluginInfo, config: dict[str, Any]) -> PluginInfo:
        """The instance's scopes: deletion requests only where the tenant enabled them
        (``delete_customers``)."""
        if not config.get("delete_customers"):
            return info
        return dataclasses.replace(info, scopes=info.scopes | {Scope.CUSTOMER_ERASED.value})

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
    async def find_chat_ticket(self, event: Event, email: str | None) -> Any | None:
        """The id of a ticket already created for ``event.chat_id``, asked of the vendor
        by a lookup that does not depend on a search index."""

    @abc.abstractmethod
    async def create_ticket(self, event: Event, email: str | None) -> Any:
        """Create the chat's ticket; returns its id."""

    @abc.abstractmethod
    async def comment_bodies(self, ticket_id: Any) -> list[str]:
        """Bodies of the ticket's comments/notes (to find a marker)."""

    @abc.abstractmethod
    async def add_comment(self, ticket_id: Any, event: ChatClosed, body: str) -> Any | None:
        """Add a private comment/note; returns a *new* ticket id when the vendor made the
        comment land elsewhere (Zendesk follow-up of a closed ticket), else None."""

    @abc.abstractmethod
    async def open_tickets(self, email: str) -> list[Ticket]:
        """The requester's open tickets, most recently updated first (for ``enrich``)."""

    @abc.abstractmethod
    async def find_people(self, email: str) -> list[Any]:
        """Ids of the helpdesk's *customer* records (end users, contacts -- never agents)
        with this e-mail address."""

    @abc.abstractmethod
    async def delete_person(self, person_id: Any) -> None:
        """Delete one customer record permanently; one already gone is not an error."""

    @abc.abstractmethod
    def ticket_url(self, ticket_id: Any) -> str:
        """Where an agent opens the ticket in the helpdesk."""

    @abc.abstractmethod
    def comment_body(self, event: ChatClosed) -> str:
        """The transcript as this vendor's comment body, ending with the marker."""

    # -- the shared flow ----------------------------------------------------------------
    async def deliver(self, event: Event) -> None:
        if isinstance(event, ChatOpened):
            await self.ticket_for(event)
        elif isinstance(event, ChatClosed):
            ticket_id = await self.ticket_for(event)
            await self._comment_once(ticket_id, event)
        elif isinstance(event, CustomerErased):
            await self.erase_customer(event)
        # other types are outside the declared scopes; the dispatcher never sends them

    async def erase_customer(self, event: CustomerErased) -> None:
        """A deletion request: every customer record with the customer's e-mail is
        deleted permanently (idempotent: a retry finds nothing left). Without a usable
        e-mail -- the tenant masks e-mails for plugins, or the customer gave none -- there
        is nobody to find: a permanent error, so the dead letter says so."""
        email = event.customer.email if event.customer else None
        if not email or "*" in email or "@" not in email:
            raise PermanentError(
                f"{self.vendor}: no usable e-mail to find the customer (show e-mails to "
                "plugins in the tenant's audience table)"
            )
        for person in await self.find_people(email):
            await self.delete_person(person)

    async def ticket_for(self, event: Event) -> Any:
        """The chat's ticket id: from the mapping, else from the vendor, else created —
        and remembered, so no retry or later event makes a second one."""
        key = TICKET_KEY + event.chat_id
        known = await self.kv.get(key)
        if known is not None:
            return _ticket_id(known)
        email = event.customer.email if event.customer else None
        ticket_id = await self.find_chat_ticket(event, email)
        if ticket_id is None:
            ticket_id = await self.create_ticket(event, email)
        await self.kv.put(key, str(ticket_id))
        return ticket_id

    async def _comment_once(self, ticket_id: Any, event: ChatClosed) -> None:
        if await self.kv.get(DONE_KEY + event.event_id) is not None:
            return  # e.g. the transcript went in as the new ticket's first comment
        attempt = ATTEMPT_KEY + event.event_id
        marker = comment_marker(event)
        if not await self.kv.put(attempt, str(ticket_id), ttl=ATTEMPT_TTL, only_if_absent=True):
            # An earlier attempt may have reached the vendor before it failed.
            earlier = _ticket_id(await self.kv.get(attempt) or str(ticket_id))
            for candidate in {earlier, ticket_id}:
                if any(marker in body for body in await self.comment_bodies(candidate)):
                    await self.kv.put(DONE_KEY + event.event_id, "1", ttl=ATTEMPT_TTL)
                    return
        moved = await self.add_comment(ticket_id, event, self.comment_body(event))
        if moved is not None:
            await self.kv.put(TICKET_KEY + event.chat_id, str(moved))
        await self.kv.put(DONE_KEY + event.event_id, "1", ttl=ATTEMPT_TTL)

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


def _ticket_id(raw: str) -> Any:
    return int(raw) if raw.isdigit() else raw
