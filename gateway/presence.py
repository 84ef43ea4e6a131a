"""Agent presence: how many agents of a tenant are connected right now, on any node.

Why: a customer should learn at once when nobody is there to answer (the widget then
offers its offline form) instead of waiting in a queue no one watches. The ``welcome``
frame carries ``agents_online``.

On one node a counter per tenant suffices (:class:`MemoryPresence`). With several nodes
(:class:`RedisPresence`) each node keeps its own agent connections in a Redis sorted set
per tenant, scored by an expiry that a heartbeat pushes forward; a node that dies stops
heart-beating and its entries age out after ``ttl`` seconds, so presence heals without a
home-made membership protocol. Redis errors degrade to "unknown" (-1), never to a crash.
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

    async def connected(self, tenant_id: str, conn_id: str) -> None: ...

    async def disconnected(self, tenant_id: str, conn_id: str) -> None: ...

    async def online(self, tenant_id: str) -> int:
        """Agents connected for the tenant, or ``UNKNOWN`` (-1) when it cannot be told."""


class MemoryPresence:
    """One node: a counter per tenant."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def connected(self, tenant_id: str, conn_id: str) -> None:
        self._counts[tenant_id] += 1

    async def disconnected(self, tenant_id: str, conn_id: str) -> None:
        self._counts[tenant_id] -= 1
        if self._counts[tenant_id] <= 0:
            del self._counts[tenant_id]

    async def online(self, tenant_id: str) -> int:
        return self._counts.get(tenant_id, 0)


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
        self._local: dict[str, set[str]] = {}
        self._task: asyncio.Task[None] | None = None

    def _key(self, tenant_id: str) -> str:
        return self._prefix + tenant_id

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
                        self._key(tenant_id), *(f"{self._node}:{c}" for c in conns)
                    )
        await self._redis.aclose()

    async def connected(self, tenant_id: str, conn_id: str) -> None:
        self._local.setdefault(tenant_id, set()).add(conn_id)
        with contextlib.suppress(Exception):
            await self._redis.zadd(
                self._key(tenant_id), {f"{self._node}:{conn_id}": self._clock() + self._ttl}
            )

    async def disconnected(self, tenant_id: str, conn_id: str) -> None:
        self._local.get(tenant_id, set()).discard(conn_id)
        with contextlib.suppress(Exception):
            await self._redis.zrem(self._key(tenant_id), f"{self._node}:{conn_id}")

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
                            pipe.zadd(key, {f"{self._node}:{c}": now + self._ttl for c in conns})
                        pipe.zremrangebyscore(key, "-inf", now)  # entries of dead nodes
                    await pipe.execute()
            except Exception:
                log.warning("presence_heartbeat_failed")


def open_presence(bus_url: str) -> Presence:
    """Presence follows the bus: in-process for ``memory://``, Redis otherwise."""
    if bus_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisPresence(bus_url.split("?", 1)[0])
    return MemoryPresence()
