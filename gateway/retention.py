"""Retention: keep closed chats only as long as needed, then destroy them safely.

Handbook rule: collect the minimum, keep it only as long as needed. Every
``interval_seconds`` the job crypto-shreds chats closed more than ``closed_chat_days``
ago (their data keys are deleted, so transcripts, identities and pending plugin events
become unreadable), each erase audited. The clock is injectable so tests run exactly.
A chat whose erase fails is logged and retried on the next run; it never blocks the rest.

Not covered yet: chats that never close are kept until someone closes them (idle-open
chats auto-closing after a tenant-set time is the retention-policy work of issue 15).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from gateway.chats import ChatService
from gateway.config import RetentionConfig
from gateway.housekeeping import Housekeeping
from gateway.store.base import Store

log = structlog.get_logger("cipherdesk.retention")

DAY = 86_400.0
BATCH = 200  # chats per store query


class RetentionJob:
    def __init__(
        self,
        store: Store,
        chats: ChatService,
        config: RetentionConfig,
        clock: Callable[[], float],
        housekeeping: Housekeeping | None = None,
    ) -> None:
        self._housekeeping = housekeeping
        self._store = store
        self._chats = chats
        self._config = config
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """Erase every chat past retention; returns how many were erased.

        A chat whose erase fails is logged, skipped for the rest of this run and retried
        on the next one: one bad row never stops the others from being destroyed.
        """
        if self._config.closed_chat_days <= 0:
            return 0
        cutoff = self._clock() - self._config.closed_chat_days * DAY
        erased = 0
        failed: set[str] = set()
        while True:
            # Failed chats stay first in the store's order: ask past them. Every chat of a
            # batch is either erased (it leaves the query) or failed, so this terminates.
            limit = BATCH + len(failed)
            found = await self._store.chats_closed_before(cutoff, limit=limit)
            batch = [chat_id for chat_id in found if chat_id not in failed]
            if not batch:
                break
            for chat_id in batch:
                try:
                    if await self._chats.erase(chat_id, actor="retention"):
                        erased += 1
                except Exception as exc:  # one line per chat; the next run retries it
                    failed.add(chat_id)
                    log.warning("retention_erase_failed", chat=chat_id, error=type(exc).__name__)
            if len(found) < limit:
                break
        if erased or failed:
            log.info("retention_erased", chats=erased, failed=len(failed))
        return erased

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("retention_failed")
            if self._housekeeping is not None:
                try:
                    await self._housekeeping.run_once()
                except Exception as exc:  # one line; the next interval tries again
                    log.warning("housekeeping_failed", error=type(exc).__name__)
            await asyncio.sleep(self._config.interval_seconds)

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
