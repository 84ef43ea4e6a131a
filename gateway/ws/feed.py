"""Gap-free, duplicate-free delivery of a chat's messages to one connection.

Why: the bus is at-most-once and, across nodes, not ordered — node A may publish seq 13
before node B publishes seq 12. A connection that simply dropped "seq ≤ last seen" would
lose 12 for good. The store is the source of truth, so a :class:`ChatFeed` sends each
message exactly once, in seq order: a live message that skips ahead triggers a replay of
the missing range from the store; live messages arriving meanwhile are held and released
in order afterwards.

A gap the store cannot fill (the chat was erased, the store is down) is retried with
exponential backoff; after ``RETRY_DELAYS`` run out without progress the feed gives up on
that chat: it drops what it held and calls ``on_stuck``. The websocket handlers answer by
closing the connection with 1011, and the client resumes — the resume replays from the
store whatever it holds, which is the defined outcome (docs/PROTOCOL.md, "Delivery").
A fetch error never escapes the background task, so nothing is left unretrieved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog

from gateway.protocol import Msg

log = structlog.get_logger("cipherdesk.feed")

Fetch = Callable[[str, int], Awaitable[list[Msg]]]
Sleep = Callable[[float], Awaitable[Any]]

#: Close reason sent with 1011 when a gap cannot be filled: the client should resume.
STUCK_CLOSE_REASON = "resume"

#: Pauses before the 2nd, 3rd, ... fetch of a gap that did not fill (about 1.5 s in all).
#: Any attempt that delivers something starts the schedule over: only a gap that makes no
#: progress at all is given up on.
RETRY_DELAYS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8)


class ChatFeed:
    """Per-connection ordering state for any number of chats."""

    def __init__(
        self,
        send: Callable[[Msg], Any],
        fetch: Fetch,
        *,
        on_stuck: Callable[[str], None],
        retry_delays: Sequence[float] = RETRY_DELAYS,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._send = send
        self._fetch = fetch
        self._on_stuck = on_stuck
        self._delays = tuple(retry_delays)
        self._sleep = sleep
        self._last: dict[str, int] = {}
        self._held: dict[str, dict[int, Msg]] = {}
        self._replaying: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def last_seq(self, chat: str) -> int:
        return self._last.get(chat, 0)

    def held(self, chat: str) -> list[int]:
        """Seqs held back waiting for a gap to fill (for tests and diagnostics)."""
        return sorted(self._held.get(chat, {}))

    def start_at(self, chat: str, seq: int) -> None:
        """Messages up to ``seq`` are known to the client already (resume, fresh chat)."""
        self._last[chat] = max(self._last.get(chat, 0), seq)

    def offer(self, msg: Msg) -> None:
        """A live message from the bus (synchronous: called from bus handlers)."""
        chat = msg.chat or ""
        last = self._last.get(chat, 0)
        if msg.seq <= last:
            return
        if chat in self._replaying or msg.seq > last + 1:
            self._held.setdefault(chat, {})[msg.seq] = msg
            if chat not in self._replaying:
                self._spawn_replay(chat)
            return
        self._deliver(chat, msg)

    async def replay(self, chat: str, after: int | None = None) -> None:
        """Send everything stored after ``after`` (default: what this client has)."""
        if after is not None:
            self._last[chat] = after
        self._replaying.add(chat)
        await self._catch_up(chat)

    async def deliver_paced(
        self, chat: str, messages: Sequence[Msg], send: Callable[[Msg], Awaitable[bool]]
    ) -> bool:
        """An explicit transcript (a supervisor's ``watch``) at the reader's pace: ``send``
        waits for room in the socket's queue, so a transcript longer than the queue no
        longer drops a reading client as a slow consumer. Live messages that arrive
        meanwhile are held and follow in order afterwards. False when ``send`` gave up
        (slow consumer, closing socket)."""
        self._replaying.add(chat)
        try:
            for msg in messages:
                if msg.seq <= self._last.get(chat, 0):
                    continue
                self._last[chat] = msg.seq
                if not await send(msg):
                    return False
        finally:
            self._replaying.discard(chat)
        if not self._release(chat):
            self._spawn_replay(chat)  # a hole between the transcript and live messages
        return True

    def _spawn_replay(self, chat: str) -> None:
        self._replaying.add(chat)
        task = asyncio.get_running_loop().create_task(self._catch_up(chat))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _catch_up(self, chat: str) -> None:
        """Fetch and release until nothing held waits on a hole, or give up (see module)."""
        try:
            delays = iter(self._delays)
            while True:
                before = self._last.get(chat, 0)
                fetched = True
                try:
                    await self._fill(chat)
                except Exception as exc:  # any store failure: retry, then give up
                    fetched = False
                    log.warning("feed_fetch_failed", chat=chat, error=type(exc).__name__)
                # A failed fetch is never "done": the store may hold more than we know.
                if self._release(chat) and fetched:
                    return
                if self._last.get(chat, 0) > before:
                    delays = iter(self._delays)  # progress: the gap is moving, start over
                delay = next(delays, None)
                if delay is None:
                    break
                await self._sleep(delay)
        finally:
            self._replaying.discard(chat)
        self._give_up(chat)

    async def _fill(self, chat: str) -> None:
        for msg in await self._fetch(chat, self._last.get(chat, 0)):
            if msg.seq == self._last.get(chat, 0) + 1:
                self._deliver(chat, msg)

    def _release(self, chat: str) -> bool:
        """Deliver held messages that now follow on; False while a hole remains."""
        held = self._held.pop(chat, {})
        for seq in sorted(held):
            if seq <= self._last.get(chat, 0):
                continue
            if seq != self._last.get(chat, 0) + 1:
                # Still a hole (stored after our fetch, or not at all): keep the rest.
                self._held[chat] = {s: m for s, m in held.items() if s >= seq}
                return False
            self._deliver(chat, held[seq])
        return True

    def _give_up(self, chat: str) -> None:
        dropped = self._held.pop(chat, {})
        log.warning(
            "feed_gap_unfilled",
            chat=chat,
            last_seq=self._last.get(chat, 0),
            held=len(dropped),
            attempts=len(self._delays) + 1,
        )
        self._on_stuck(chat)

    def _deliver(self, chat: str, msg: Msg) -> None:
        self._last[chat] = msg.seq
        self._send(msg)

    def forget(self, chat: str) -> None:
        self._last.pop(chat, None)
        self._held.pop(chat, None)

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
