"""A connection's messages in flight: stored in the order they came, acked in that order,
while the connection reads on.

Why: a session used to handle its frames strictly one after the other, and a message's
turn included its commit. Timed step by step under load (bench/multinode.py, 20 sockets,
4 messages in flight each), a message spent 12.7 ms (p50) waiting for the ones ahead of it
on its own socket, then 5.1 ms being stored: each socket relayed one message per commit,
whatever it had waiting, and the node stayed a third idle (issue 18). Now a session queues
each message's append (``ChatService.queue_*_message`` → ``Store.queue_append``, which
keeps a chat's appends in order) and reads its next frame at once; the messages a socket
sent meanwhile share the next commit. :class:`PostPipeline` finishes them in the order
they came: the ack and notice to the sender (an error for a refused one), the relay to the
chat's readers. Frames that must come after the messages before them (a close, a file, a
transfer) wait for :meth:`PostPipeline.drain` first.
"""

from __future__ import annotations

import abc
import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import structlog

from gateway.chats import ChatError, PostOutcome
from gateway.logs import error_location
from gateway.protocol import CloseCode
from gateway.ratelimit.limits import Decision
from gateway.services import STORE_UNAVAILABLE_REASON
from gateway.store.base import StoreUnavailable
from gateway.ws.connection import ProtocolViolation, SecureConnection

__all__ = ["PIPELINE_DEPTH", "Admissions", "PostPipeline", "abort_after_failure"]

log = structlog.get_logger("cipherdesk.ws")

T = TypeVar("T")

PIPELINE_DEPTH = 16
"""Messages of one connection in flight at most: the next one waits for room, and the
socket's unread frames wait in the kernel (the client's own flow control)."""

FRAMES_PER_MESSAGE = 4
"""Frames one finished message may put in its sender's send queue at once (ack, notice,
the echo, a queue or typing update beside them). Messages that share a commit finish
together, so a connection's depth is also bounded by its send queue divided by this: a
client that reads its acks is never cut off as a slow consumer for sending fast."""


def abort_after_failure(conn: SecureConnection, exc: BaseException) -> None:
    """Close a connection whose work in the background failed (a message being finished, a
    queue snapshot): the client's view would silently go stale, so it reconnects to fresh
    state. One log line; the store being unavailable is a 1013 "try again later", anything
    else 1011 (the session's own steps close the same way, ``serve_connection``)."""
    if isinstance(exc, StoreUnavailable):
        log.warning("ws_store_unavailable", kind=conn.kind, step="background")
        conn.abort(CloseCode.TRY_AGAIN_LATER, STORE_UNAVAILABLE_REASON)
    else:
        log.error("ws_background_failed", error=type(exc).__name__, where=error_location(exc))
        conn.abort(CloseCode.INTERNAL, "internal error")


class _InOrder(abc.ABC, Generic[T]):
    """Work items of one connection, finished one after the other in the order they were
    added while the connection reads on: the queue, its bound, its worker task and the
    handling of a failed item, written once for :class:`PostPipeline` and
    :class:`Admissions`. A failed item ends as the session's own steps would (an error
    frame, or a close) and the items after it still finish."""

    def __init__(self, conn: SecureConnection, depth: int) -> None:
        self._conn = conn
        self._depth = depth
        self._pending: deque[tuple[str, T]] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._room = asyncio.Event()

    def __len__(self) -> int:
        return len(self._pending)

    async def _wait_for_room(self) -> None:
        while len(self._pending) >= self._depth:
            self._room.clear()
            await self._room.wait()

    def _push(self, ref: str, item: T) -> None:
        self._pending.append((ref, item))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._run())

    async def drain(self) -> None:
        """Wait until every item added so far is finished."""
        while self._worker is not None and not self._worker.done():
            await asyncio.shield(self._worker)

    @abc.abstractmethod
    async def _finish_one(self, ref: str, item: T) -> None:
        """Finish one item (``ref``: the client's id of its message)."""

    async def _run(self) -> None:
        conn, pending = self._conn, self._pending
        while pending:
            ref, item = pending[0]
            try:
                await self._finish_one(ref, item)
            except ProtocolViolation as exc:
                conn.abort(exc.code, exc.reason)
            except ChatError as exc:
                if exc.close is not None:
                    conn.abort(exc.close, exc.message)
                else:
                    conn.send_error(exc.code, exc.message, ref)
            except Exception as exc:  # the rest still finish: stored messages get relayed
                abort_after_failure(conn, exc)
            finally:
                pending.popleft()
                self._room.set()


class PostPipeline(_InOrder[Awaitable[PostOutcome]]):
    """The messages one connection has queued and not yet finished (see the module text)."""

    def __init__(self, conn: SecureConnection, depth: int = PIPELINE_DEPTH) -> None:
        super().__init__(conn, max(1, min(depth, conn.send_capacity // FRAMES_PER_MESSAGE)))

    async def add(self, ref: str, outcome: Awaitable[PostOutcome]) -> None:
        """Finish ``outcome`` (a queued message, ``ref`` its client id) after the ones
        added before it; waits while ``depth`` messages are in flight."""
        await self._wait_for_room()
        self._push(ref, outcome)

    async def _finish_one(self, ref: str, outcome: Awaitable[PostOutcome]) -> None:
        result = await outcome
        if result.ack is not None:
            self._conn.send(result.ack)
        if result.notice is not None:
            self._conn.send(result.notice)


Refusal = Decision | None
"""A message's rate-limit decision as :class:`Admissions` waits for it: the refusing
decision, or None when the message may go."""

Step = Callable[[Refusal], Awaitable[None]]
"""What a session does with a decided message: refuse it, or queue it for storing."""


class Admissions(_InOrder[tuple["asyncio.Future[Refusal]", Step]]):
    """Messages of one connection that wait for something a round trip away -- the
    rate-limit decision with the Redis limiter, an agent reply's chat being read (see
    ``AgentSession._writable_chat``): each is asked for when its frame arrives, and the
    messages go on to their next step in the order they came, each once its decision is
    in, while the connection reads on.

    Why: a session used to wait for each message's decision before reading its next
    frame. With the memory limiter that wait is nothing; with Redis it is a round trip, so
    each socket relayed one message per round trip whatever it had waiting, and the relay
    with Redis limits on did 0.44-0.53x of limits off (``bench/limits.py``). The
    decisions of a socket's waiting messages now share the limiter's calls (its group
    commit), as their appends share commits (:class:`PostPipeline`).
    """

    def __init__(self, conn: SecureConnection, depth: int = PIPELINE_DEPTH) -> None:
        super().__init__(conn, depth)

    async def add(self, ref: str, refusal: Awaitable[Refusal], step: Step) -> None:
        """Run ``step(refusal)`` after the steps added before it; ``refusal`` is asked for
        now (so decisions are asked for in the order frames came). Waits while ``depth``
        messages are undecided or not yet handed on."""
        await self._wait_for_room()
        self._push(ref, (asyncio.ensure_future(refusal), step))

    async def _finish_one(self, ref: str, item: tuple[asyncio.Future[Refusal], Step]) -> None:
        refusal, step = item
        await step(await refusal)
