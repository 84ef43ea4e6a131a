"""Abuse protection at the edges of every connection (issue: rate limits, connection caps).

The limiter library (gateway/ratelimit/limits.py) decides; this module decides *where* to ask
and what the client sees: a refused connect gets close 4429 with ``retry-after=N`` in the
reason, a fast typist gets a ``notice`` (action "limited") and the message stays unacked
(the widget resends it later, nothing is lost), and only sustained abuse (strikes) is
disconnected. Concurrent-socket caps are node-local on purpose: sockets are a resource of
the node that holds them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from gateway.clientip import rate_limit_key
from gateway.config import WebSocketConfig
from gateway.metrics import Metrics
from gateway.protocol import CloseCode, Notice
from gateway.ratelimit.limits import (
    ConcurrencyLimiter,
    Decision,
    Limits,
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
)
from gateway.store.base import Tenant
from gateway.tenants import TenantDirectory
from gateway.ws.connection import ProtocolViolation, SecureConnection

#: Close (1013) when a tenant's sockets on this node are all taken.
TENANT_FULL = (CloseCode.TRY_AGAIN_LATER, "tenant at its connection cap; retry-after=5")
SLOW_DOWN = "You're sending messages faster than we can take them. Please wait a moment."


class _TenantLimits(NamedTuple):
    """A tenant's limits as last computed, and from what: the record the tenant directory
    handed out, and its overrides written out (compared when the record is a new one)."""

    tenant: Tenant
    fingerprint: str
    limits: Limits


def retry_reason(retry_after: float) -> str:
    return f"rate limited; retry-after={max(1, math.ceil(retry_after))}"


class Guard:
    def __init__(
        self,
        limits: Limits,
        limiter: RateLimiter,
        metrics: Metrics,
        tenants: TenantDirectory,
        ws: WebSocketConfig,
        clock: Callable[[], float],
        address_key: Callable[[str], str] = rate_limit_key,
    ) -> None:
        # How a client address appears in limiter keys (the app passes a keyed hash, see
        # gateway.derived_keys.address_hasher; tests may keep the readable default).
        self.address_key = address_key
        self.limits = limits
        self.limiter = limiter
        self.metrics = metrics
        self.tenants = tenants
        self.ws = ws
        self.concurrency = ConcurrencyLimiter(metrics)
        # Per-connection budgets (bytes/s) belong to the node holding the socket: sharing
        # them through Redis would cost a round trip per frame and buy nothing.
        self.local = MemoryRateLimiter(clock=clock, metrics=metrics)
        self.strikes = limits.strikes(clock)
        self._tenant_limits: dict[str, _TenantLimits] = {}
        # A message's decisions are taken without a coroutine or a batch when the limiter
        # is this process's own (its hit_many is the same hits one after the other).
        self._decides_here = limiter if isinstance(limiter, MemoryRateLimiter) else None

    def advertised_limits(self) -> dict[str, Any]:
        """What the ``hello`` frame tells clients, so well-behaved ones pace themselves."""
        return {
            "max_frame_bytes": self.ws.max_frame_bytes,
            "max_text_chars": self.ws.max_text_chars,
            "messages_per_chat": str(self.limits.messages_per_chat),
            "idle_timeout": self.ws.idle_timeout,
        }

    async def _limits_for(self, tenant_id: str) -> Limits:
        """The tenant's limits: the installation's with the tenant's overrides applied.
        Read once per tenant record the directory hands out (it caches each for a moment),
        not per message: the overrides are compared only when the record is a new one."""
        tenant = await self.tenants.get(tenant_id)
        if tenant is None:
            return self.limits
        cached = self._tenant_limits.get(tenant_id)
        if cached is not None and cached.tenant is tenant:
            return cached.limits
        overrides = tenant.settings.get("limits") or {}
        fingerprint = repr(sorted(overrides.items())) if overrides else ""
        if cached is not None and cached.fingerprint == fingerprint:
            limits = cached.limits
        elif not overrides:
            limits = self.limits
        else:
            try:
                limits = self.limits.for_tenant(overrides)
            except ValueError:
                limits = self.limits  # a bad override never lifts limits
        self._tenant_limits[tenant_id] = _TenantLimits(tenant, fingerprint, limits)
        return limits

    # ------------------------------------------------------------------ connections

    async def admit_connection(self, kind: str, ip: str) -> tuple[int, str] | None:
        """A refusal ``(close code, reason)`` or None; on None a slot is held until
        :meth:`release` of the returned key set (see :meth:`connection_opened`)."""
        decision = await self.limiter.hit(
            f"wsc:{self.address_key(ip)}", self.limits.ws_connect_per_ip, scope="ws_connect"
        )
        if not decision.allowed:
            return CloseCode.RATE_LIMITED, retry_reason(decision.retry_after)
        full = self.concurrency.try_acquire_all(
            [
                ("global", self.limits.global_connections, "global_connections"),
                (f"ip:{self.address_key(ip)}", self.limits.concurrent_per_ip, "concurrent_per_ip"),
            ]
        )
        if full == "global_connections":
            self.metrics.connections_refused_total.labels(reason="capacity").inc()
            return CloseCode.TRY_AGAIN_LATER, "server at capacity; retry-after=5"
        if full is not None:
            return CloseCode.RATE_LIMITED, "too many connections from your address; retry-after=30"
        return None

    def connection_opened(self, kind: str, ip: str) -> Callable[[], None]:
        gauge = self.metrics.connections.labels(kind=kind)
        gauge.inc()
        keys = ["global", f"ip:{self.address_key(ip)}"]

        def release() -> None:
            gauge.dec()
            self.concurrency.release_all(keys)

        return release

    async def tenant_slot(self, tenant_id: str) -> Callable[[], None] | None:
        """Hold one of the tenant's ``concurrent_per_tenant`` sockets on this node (its own
        ``limits`` override applies) for an admitted connection; None when all are taken
        (the caller refuses with :data:`TENANT_FULL`). One tenant's crowd — or a script
        opening sockets against it — cannot take every socket of the node from the others.
        """
        limits = await self._limits_for(tenant_id)
        key = f"tenant:{tenant_id}"
        if not self.concurrency.try_acquire(
            key, limits.concurrent_per_tenant, scope="concurrent_per_tenant"
        ):
            self.metrics.connections_refused_total.labels(reason="tenant_capacity").inc()
            return None
        released = False

        def release() -> None:
            nonlocal released
            if not released:  # idempotent: a double release must not open a hole
                released = True
                self.concurrency.release(key)

        return release

    # ------------------------------------------------------------------ frames

    async def inbound_bytes(self, conn: SecureConnection, size: int) -> None:
        """Byte-rate per connection: a flood of big frames is abuse, not typing → 4429."""
        decision = self.local.hit_now(
            f"bytes:{conn.conn_id}",
            self.limits.bytes_per_connection,
            cost=size,
            scope="bytes_per_connection",
        )
        if not decision.allowed:
            raise ProtocolViolation(CloseCode.RATE_LIMITED, retry_reason(decision.retry_after))

    @property
    def decides_remotely(self) -> bool:
        """Whether a message's decision is a round trip away (the Redis limiter): a session
        then asks for it and reads on (``gateway/ws/pipeline.py``, ``Admissions``) instead
        of waiting before its next frame."""
        return isinstance(self.limiter, RedisRateLimiter)

    async def customer_message(
        self, conn: SecureConnection, tenant_id: str, chat_id: str, ip: str, msg_id: str
    ) -> bool:
        refusal = await self.customer_message_refusal(tenant_id, chat_id, ip)
        return refusal is None or self.refuse(conn, msg_id, chat_id, refusal)

    async def customer_message_refusal(
        self, tenant_id: str, chat_id: str, ip: str
    ) -> Decision | None:
        """The decision refusing a customer message (chat and customer budgets spent), or
        None when it may go. No side effect on the connection: see :meth:`refuse`."""
        limits = await self._limits_for(tenant_id)
        chat_key = f"chat:{chat_id}"
        customer_key = f"cust:{self.address_key(ip)}"
        if self._decides_here is not None:  # the memory limiter: two direct decisions
            decide = self._decides_here.hit_now
            chat = decide(chat_key, limits.messages_per_chat, scope="messages_per_chat")
            customer = decide(
                customer_key, limits.messages_per_customer, scope="messages_per_customer"
            )
        else:
            chat, customer = await self.limiter.hit_many(
                [
                    (chat_key, limits.messages_per_chat, "messages_per_chat"),
                    (customer_key, limits.messages_per_customer, "messages_per_customer"),
                ]
            )
        if not chat.allowed:
            return chat
        return None if customer.allowed else customer

    def refuse(self, conn: SecureConnection, msg_id: str, chat_id: str, refusal: Decision) -> bool:
        """Tell the sender to slow down (False), or end the connection after repeated
        refusals (raises :class:`ProtocolViolation`)."""
        return self._limited(conn, msg_id, chat_id, refusal.retry_after)

    async def agent_message(
        self, conn: SecureConnection, agent_id: str, msg_id: str, chat_id: str
    ) -> bool:
        refusal = await self.agent_message_refusal(agent_id)
        return refusal is None or self.refuse(conn, msg_id, chat_id, refusal)

    async def agent_message_refusal(self, agent_id: str) -> Decision | None:
        """The decision refusing an agent's message (the agent's budget spent), or None
        when it may go. No side effect on the connection: see :meth:`refuse`."""
        decision = await self.limiter.hit(
            f"agent:{agent_id}", self.limits.messages_per_agent, scope="messages_per_agent"
        )
        return None if decision.allowed else decision

    def _limited(
        self, conn: SecureConnection, msg_id: str, chat_id: str, retry_after: float
    ) -> bool:
        if self.strikes.strike(conn.conn_id):
            raise ProtocolViolation(CloseCode.RATE_LIMITED, retry_reason(retry_after))
        conn.send(
            Notice(
                id=msg_id,
                action="limited",
                kinds=[],
                message=SLOW_DOWN,
                chat=chat_id,
                retry_after=round(retry_after, 3),
            )
        )
        return False

    def forget(self, conn: SecureConnection) -> None:
        self.strikes.clear(conn.conn_id)
