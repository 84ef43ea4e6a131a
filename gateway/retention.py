"""Retention: keep closed chats only as long as needed, then destroy them safely.

Handbook rule: collect the minimum, keep it only as long as needed. Every
``interval_seconds`` the job crypto-shreds chats closed more than ``closed_chat_days``
ago (their data keys are deleted, so transcripts, identities and pending plugin events
become unreadable), each erase audited. The clock is injectable so tests run exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from gateway.chats import ChatService
from gateway.config import RetentionConfig
from gateway.store.base import Store

log = structlog.get_logger("cipherdesk.retention")

DAY = 86_400.0


class RetentionJob:
    def __init__(
        self, store: Store, chats: ChatService, config: RetentionConfig, clock: Callable[[], float]
    ) -> None:
        self._store = store
        self._chats = chats
        self._config = config
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """Erase every chat past retention; returns how many were erased."""
        if self._config.closed_chat_days <= 0:
            return 0
        cutoff = self._clock() - self._config.closed_chat_days * DAY
        erased = 0
        while True:
            batch = await self._store.chats_closed_before(cutoff, limit=200)
            if not batch:
                break
            for chat_id in batch:
                if await self._chats.erase(chat_id, actor="retention"):
                    erased += 1
            if len(batch) < 200:
                break
        if erased:
            log.info("retention_erased", chats=erased)
        return erased

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("retention_failed")
            await asyncio.sleep(self._config.interval_seconds)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
