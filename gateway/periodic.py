"""A background job that runs one round every ``interval`` seconds until stopped.

One place for the discipline every periodic worker of a node needs: exactly one task,
started once; a round that fails is logged (one line, its own event name) and the next
interval tries again, so a bad row never stops the job for good; ``stop`` cancels the task
and waits for it, so no round outlives the node's shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("cipherdesk.periodic")


class Periodic:
    """Runs ``round_`` every ``interval`` seconds (first right away, or after one interval
    with ``delay_first``) on a task named ``name``; failures log ``failure_event``.
    :meth:`wake` starts the next round without waiting for the rest of the interval."""

    def __init__(
        self,
        name: str,
        interval: float,
        round_: Callable[[], Awaitable[object]],
        *,
        failure_event: str,
        delay_first: bool = False,
    ) -> None:
        self.name = name
        self.interval = interval
        self._round = round_
        self._failure_event = failure_event
        self._delay_first = delay_first
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Run a round now (once the current one, if any, has finished)."""
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        if self._delay_first:
            await asyncio.sleep(self.interval)
        while True:
            self._wake.clear()  # a wake during the round asks for one more
            try:
                await self._round()
            except Exception:
                log.exception(self._failure_event)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
