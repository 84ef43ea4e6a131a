"""One read of a tenant's queue, shared by every console of the tenant on this node.

Why: every queue change (a chat opened, accepted, transferred, closed) tells every
console of the tenant to refresh its queue. Built per console, each refresh read every
open chat from the store and opened every sealed profile: with 50 agents and 1,000 open
chats, a burst of openings cost 50 × 1,000 reads and decryptions every 50 ms, which
saturated a node before any message was relayed (bench/latency.py could not finish its
set-up). The consoles of one tenant need the *same* rows, filtered differently, so one
read serves them all.

The rule that keeps it correct: a console asks for rows *not older than* the last queue
change it was told about (``not_before``, on this module's monotonic clock). A read that
started at or after that moment already reflects the change and is shared (joined while
in flight, or reused when done); otherwise a new read starts. A change that arrives while
a read is running makes the console ask again, so nobody is left with a stale queue.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from gateway.protocol import QueueEntry


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One open chat as every console of the tenant sees it, plus what decides which
    consoles list it (the state and the assigned agent)."""

    entry: QueueEntry
    state: str
    assigned_agent_id: str | None


@dataclass(frozen=True, slots=True)
class QueueRead:
    """One read of a tenant's queue: the rows consoles list, and per queue how many
    waiting chats the rows leave out (each queue lists its longest-waiting chats only)."""

    rows: list[QueueRow]
    unlisted: dict[str, int]


@dataclass(slots=True)
class _Read:
    started: float
    rows: asyncio.Future[QueueRead]


class SharedQueueReads:
    """Coalesces concurrent queue reads per tenant (see the module docstring)."""

    def __init__(
        self,
        load: Callable[[str], Awaitable[QueueRead]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self.clock = clock
        self._latest: dict[str, _Read] = {}

    async def rows(self, tenant_id: str, not_before: float) -> QueueRead:
        """The tenant's queue from a read that started at or after ``not_before``."""
        latest = self._latest.get(tenant_id)
        if latest is None or latest.started < not_before:
            latest = _Read(self.clock(), asyncio.ensure_future(self._load(tenant_id)))
            self._latest[tenant_id] = latest
            latest.rows.add_done_callback(lambda fut: self._forget_failed(tenant_id, fut))
        return await asyncio.shield(latest.rows)

    def _forget_failed(self, tenant_id: str, fut: asyncio.Future[QueueRead]) -> None:
        """A failed read is never reused (the next console asking starts a new one)."""
        if fut.cancelled() or fut.exception() is not None:
            latest = self._latest.get(tenant_id)
            if latest is not None and latest.rows is fut:
                del self._latest[tenant_id]
