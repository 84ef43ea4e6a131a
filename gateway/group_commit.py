"""Group commit for round trips: what is asked for while one call is on the wire leaves
together in the next call.

Why: with redis-py, one command costs the event loop tens of microseconds of Python (build
the command, take a pooled connection, parse the reply, wake the caller) — far more than
Redis spends running it. A node asks Redis for something on every message (a rate-limit
decision, a bus event to publish), from every connection at once; sent one by one, those
commands were a large share of a message's CPU (issue 18). Batched the way a database
batches commits, a busy node pays one command per round trip, however many connections
ask, while an idle one still pays exactly one round trip per request. Items leave in the
order they were submitted, a batch is one call, and with one call in flight (the default)
batches also complete in that order. With several calls in flight, items that share a
``key`` (the messages of one chat) still complete in the order they were submitted: an item
waits while a call holding its key is on the wire.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar, cast

__all__ = ["GroupCommit"]

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """Submit items one by one; ``send`` receives them in batches.

    ``send(items)`` returns one result per item, in order; if it raises, every submitter of
    that batch gets the exception. A batch holds items up to ``max_weight`` (``weight`` of
    each item, 1 by default) — one item heavier than that travels alone, never split. A
    submitter that goes away (its task cancelled) leaves the others their results.

    ``max_in_flight`` calls may be on the wire at once (1: strictly one after the other,
    batches leave in submission order). More than one keeps a caller that waits on its
    call from also waiting for someone else's; items then batch only once that many calls
    are out, and batches may complete out of order -- except items with the same ``key``:
    one whose key a call on the wire holds stays queued (the items behind it may go) until
    that call returns, so a key's items complete in submission order (several of them may
    share one call, in order).
    """

    def __init__(
        self,
        send: Callable[[list[Item]], Awaitable[list[Result]]],
        *,
        max_weight: int,
        weight: Callable[[Item], int] | None = None,
        max_in_flight: int = 1,
        key: Callable[[Item], Hashable] | None = None,
    ) -> None:
        if max_weight < 1 or max_in_flight < 1:
            raise ValueError("max_weight and max_in_flight must be positive")
        self._send = send
        self._max_weight = max_weight
        self._weight = weight or (lambda _item: 1)
        self._max_in_flight = max_in_flight
        self._key = key
        self._on_wire: set[Hashable] = set()  # keys of the items in calls on the wire
        self._queue: deque[tuple[Item, asyncio.Future[Result]]] = deque()
        self._senders: set[asyncio.Task[None]] = set()
        self.calls = 0
        """How many batches were sent (for tests and benchmarks)."""

    async def submit(self, item: Item) -> Result:
        """Queue ``item`` for the next call and wait for its result."""
        return await self.enqueue(item)

    def enqueue(self, item: Item) -> asyncio.Future[Result]:
        """Queue ``item`` now and return the future of its result: the order of ``enqueue``
        calls is the submission order, whenever the caller gets round to waiting."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._queue.append((item, future))
        if len(self._senders) < self._max_in_flight:
            self._senders.add(loop.create_task(self._send_queued()))
        return future

    async def _send_queued(self) -> None:
        """Send batches until the queue is empty (started by :meth:`enqueue`, which
        :meth:`submit` calls, while fewer than ``max_in_flight`` run)."""
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while self._queue:
                batch = self._take_batch()
                if not batch:
                    break  # all queued keys are on the wire; their calls take them on return
                self.calls += 1
                held = self._hold(batch)
                try:
                    results = await self._send([item for item, _ in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(f"{len(results)} results for {len(batch)} items")
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for (_, future), result in zip(batch, results, strict=True):
                        if not future.done():  # its submitter may have gone meanwhile
                            future.set_result(result)
                finally:
                    self._release(held)
                batch = []
        finally:
            # Synchronously, in the same step as the last look at the queue: a submit
            # that comes after it sees this task gone and starts another.
            self._senders.discard(cast("asyncio.Task[None]", asyncio.current_task()))
            for _, future in batch:  # only when this task itself is cancelled (shutdown)
                future.cancel()

    def _take_batch(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        """The next batch: queued items in order up to ``max_weight``, passing over (and
        leaving queued, in order) those whose key a call on the wire holds."""
        queue = self._queue
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        passed: list[tuple[Item, asyncio.Future[Result]]] = []
        weight = 0
        while queue:
            item = queue[0][0]
            if self._on_wire and self._key is not None and self._key(item) in self._on_wire:
                passed.append(queue.popleft())
                continue
            next_weight = self._weight(item)
            if batch and weight + next_weight > self._max_weight:
                break
            batch.append(queue.popleft())
            weight += next_weight
        queue.extendleft(reversed(passed))
        return batch

    def _hold(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> set[Hashable]:
        """Mark the batch's keys as on the wire (none without ``key``). No other call holds
        them: ``_take_batch`` passes over the items of keys on the wire."""
        if self._key is None:
            return set()
        held = {self._key(item) for item, _ in batch}
        self._on_wire |= held
        return held

    def _release(self, held: set[Hashable]) -> None:
        self._on_wire -= held
