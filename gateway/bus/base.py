"""The message bus contract: how chat events reach connections on any gateway node.

Why a bus even on one node: connection handlers never call each other. A customer's
message is persisted, then *published* on the chat's topic; whichever connections
subscribed (the customer's tabs, the assigned agent, watching supervisors) get it, on
this node or — with the Redis bus — on any other. The store stays the source of truth:
a subscriber that missed events (reconnect, node death) replays from the store by
``seq``, so the bus may be at-most-once.

Topics: ``chat:<id>``, ``tenant:<id>`` (queue changes, flags), ``agent:<id>``
(assignments, session revocation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, Protocol

from msgspec import Struct

from gateway.protocol import Outbound

Audience = Literal["all", "customer", "agents", "supervisors"]
EventKind = Literal[
    "frame", "queue_changed", "join_chat", "leave_chat", "revoke", "frozen", "alert"
]


class BusEvent(Struct, kw_only=True):
    """One event on a topic. ``frame`` is delivered as-is to the matching audience."""

    kind: EventKind
    frame: Outbound | None = None
    audience: Audience = "all"
    chat: str | None = None
    # Token hashes of revoked sessions (kind "revoke"); None = all of the agent's sessions.
    sessions: list[str] | None = None
    # Connection id that caused the event and should not receive it (typing echo).
    skip_conn: str | None = None
    # Close reason for kind "revoke" (e.g. "credentials changed"); None: "session revoked".
    reason: str | None = None


Handler = Callable[[BusEvent], None]


class Subscription(Protocol):
    def cancel(self) -> None:
        """Stop delivering to this handler (idempotent)."""


class Bus(Protocol):
    """Topic fan-out. Handlers are called synchronously and must not block: they enqueue."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def subscribe(self, topic: str, handler: Handler) -> Subscription:
        """Return once events published afterwards (on any node) reach ``handler``."""

    async def publish(self, topic: str, event: BusEvent) -> None: ...


def chat_topic(chat_id: str) -> str:
    return f"chat:{chat_id}"


def tenant_topic(tenant_id: str) -> str:
    return f"tenant:{tenant_id}"


def customers_topic(tenant_id: str) -> str:
    """Every live customer socket of a tenant (rare service notices only: the busy
    tenant topic is for agents)."""
    return f"tenant-customers:{tenant_id}"


def agent_topic(agent_id: str) -> str:
    return f"agent:{agent_id}"
