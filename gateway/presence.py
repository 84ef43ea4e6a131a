"""Agent presence: how many agents of a tenant are connected right now, on any node.

Why: a customer should learn at once when nobody is there to answer (the widget then
offers its offline form) instead of waiting in a queue no one watches. The ``welcome``
frame carries ``agents_online``.

On one node a counter per tenant suffices (:class:`MemoryPresence`). With several nodes
(:class:`RedisPresence`) each node keeps its own agent connections in a Redis sorted set
per tenant, scored by an expiry that a heartbeat pushes forward; a node that dies stops
heart-beating and its entries age out after ``ttl`` seconds, so presence heals without a
home-made membership protocol. Redis errors degrade to "unknown" (-1), never to a crash.

Connections may name their agent (``connected(..., agent_id=...)``): :meth:`agents` then
tells which agents are online and with how many consoles, for the console's transfer
picker (``GET /api/team``).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import Counter
from typing import Any, Protocol

import structlog

log = structlog.get_logger("cipherdesk.presence")

UNKNOWN = -1


class Presence(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def connected(
        self, tenant_id: str, conn_id: str, agent_id: str | None = None
    ) -> None: ...

    async def disconnected(self, tenant_id: str, conn_id: str) -> None: ...

    async def online(self, tenant_id: str) -> int:
        """Agents connected for the tenant, or ``UNKNOWN`` (-1) when it cannot be told."""

    async def agents(self, tenant_id: str) -> dict[str, int] | None:
        """``{agent_id: open connections}`` of the tenant; None when it cannot be told."""


class MemoryPresence:
    """One node: a counter per tenant."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._agents: dict[str, dict[str, str]] = {}  # tenant -> conn -> agent

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def connected(self, tenant_id: str, conn_id: str, agent_id: str | None = None) -> None:
        self._counts[tenant_id] += 1
        if agent_id:
            self._agents.setdefault(tenant_id, {})[conn_id] = agent_id

    async def disconnected(self, tenant_id: str, conn_id: str) -> None:
        self._counts[tenant_id] -= 1
        if self._counts[tenant_id] <= 0:
            del self._counts[tenant_id]
        conns = self._agents.get(tenant_id)
        if conns is not None:
            conns.pop(conn_id, None)
            if not conns:
                del self._agents[tenant_id]

    async def online(self, tenant_id: str) -> int:
        return self._counts.get(tenant_id, 0)

    async def agents(self, tenant_id: str) -> dict[str, int] | None:
        return dict(Counter(self._agents.get(tenant_id, {}).values()))


class RedisPresence:
    """Several nodes: sorted sets ``<prefix><tenant>`` of ``<node>:<conn>`` by expiry."""

    def __init__(
        self, url: str, *, prefix: str = "cd:presence:", ttl: float = 30.0, clock: Any = time.time
    ) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._prefix = prefix
        self._ttl = ttl
        self._clock = clock
        self._node = secrets.token_hex(6)
        self._local: dict[str, dict[str, str | None]] = {}  # tenant -> conn -> agent
        self._task: asyncio.Task[None] | None = None

    def _key(self, tenant_id: str) -> str:
        return self._prefix + tenant_id

    def _member(self, conn_id: str, agent_id: str | None) -> str:
        """``<node>:<conn>``, plus ``|<agent>`` when the connection named its agent."""
        return f"{self._node}:{conn_id}" + (f"|{agent_id}" if agent_id else "")

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._heartbeat())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            for tenant_id, conns in self._local.items():
                if conns:
                    await self._redis.zrem(
                        self._key(tenant_id), *(self._member(c, a) for c, a in conns.items())
                    )
        await self._redis.aclose()

    async def connected(self, tenant_id: str, conn_id: str, agent_id: str | None = None) -> None:
        self._local.setdefault(tenant_id, {})[conn_id] = agent_id
        with contextlib.suppress(Exception):
            await self._redis.zadd(
                self._key(tenant_id),
                {self._member(conn_id, agent_id): self._clock() + self._ttl},
            )

    async def disconnected(self, tenant_id: str, conn_id: str) -> None:
        agent_id = self._local.get(tenant_id, {}).pop(conn_id, None)
        with contextlib.suppress(Exception):
            await self._redis.zrem(self._key(tenant_id), self._member(conn_id, agent_id))

    async def agents(self, tenant_id: str) -> dict[str, int] | None:
        try:
            members = await self._redis.zrangebyscore(self._key(tenant_id), self._clock(), "+inf")
        except Exception:
            log.warning("presence_unavailable")
            return None
        found: Counter[str] = Counter()
        for raw in members:
            member = raw.decode() if isinstance(raw, bytes) else str(raw)
            if "|" in member:
                found[member.split("|", 1)[1]] += 1
        return dict(found)

    async def online(self, tenant_id: str) -> int:
        try:
            return int(await self._redis.zcount(self._key(tenant_id), self._clock(), "+inf"))
        except Exception:
            log.warning("presence_unavailable")
            return UNKNOWN

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            now = self._clock()
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for tenant_id, conns in self._local.items():
                        key = self._key(tenant_id)
                        if conns:
                            pipe.zadd(
                                key, {self._member(c, a): now + self._ttl for c, a in conns.items()}
                            )
                        pipe.zremrangebyscore(key, "-inf", now)  # entries of dead nodes
                    await pipe.execute()
            except Exception:
                log.warning("presence_heartbeat_failed")


def open_presence(bus_url: str) -> Presence:
    """Presence follows the bus: in-process for ``memory://``, Redis otherwise."""
    if bus_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisPresence(bus_url.split("?", 1)[0])
    return MemoryPresence()
