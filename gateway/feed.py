"""Gap-free, duplicate-free delivery of a chat's messages to one connection.

Why: the bus is at-most-once and, across nodes, not ordered — node A may publish seq 13
before node B publishes seq 12. A connection that simply dropped "seq ≤ last seen" would
lose 12 for good. The store is the source of truth, so a :class:`ChatFeed` sends each
message exactly once, in seq order: a live message that skips ahead triggers a replay of
the missing range from the store; live messages arriving meanwhile are held and released
in order afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.protocol import Msg

Fetch = Callable[[str, int], Awaitable[list[Msg]]]


class ChatFeed:
    """Per-connection ordering state for any number of chats."""

    def __init__(self, send: Callable[[Msg], Any], fetch: Fetch) -> None:
        self._send = send
        self._fetch = fetch
        self._last: dict[str, int] = {}
        self._held: dict[str, dict[int, Msg]] = {}
        self._replaying: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def last_seq(self, chat: str) -> int:
        return self._last.get(chat, 0)

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
        await self._replay_then_release(chat)

    def _spawn_replay(self, chat: str) -> None:
        self._replaying.add(chat)
        task = asyncio.get_running_loop().create_task(self._replay_then_release(chat))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replay_then_release(self, chat: str) -> None:
        try:
            await self._fill(chat)
        finally:
            self._replaying.discard(chat)
        self._release(chat)

    async def _fill(self, chat: str) -> None:
        for msg in await self._fetch(chat, self._last.get(chat, 0)):
            if msg.seq == self._last.get(chat, 0) + 1:
                self._deliver(chat, msg)

    def _release(self, chat: str) -> None:
        held = self._held.pop(chat, {})
        for seq in sorted(held):
            if seq <= self._last.get(chat, 0):
                continue
            if seq != self._last.get(chat, 0) + 1:
                # Still a hole (stored after our fetch): hold the rest and fetch again.
                self._held[chat] = {s: m for s, m in held.items() if s >= seq}
                self._spawn_replay(chat)
                return
            self._deliver(chat, held[seq])

    def _deliver(self, chat: str, msg: Msg) -> None:
        self._last[chat] = msg.seq
        self._send(msg)

    def forget(self, chat: str) -> None:
        self._last.pop(chat, None)
        self._held.pop(chat, None)

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
