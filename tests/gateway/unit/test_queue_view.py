"""SharedQueueReads: one store read serves every console that asks for a queue no older
than the change it heard of; a change after a read started forces a new read."""

from __future__ import annotations

import asyncio

import pytest

from gateway.protocol import QueueEntry
from gateway.queue_view import QueueRead, QueueRow, SharedQueueReads


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Counts reads; each read waits for ``release`` so tests control overlap."""

    def __init__(self) -> None:
        self.reads: list[str] = []
        self.release = asyncio.Event()
        self.fail_next = False

    async def __call__(self, tenant_id: str) -> QueueRead:
        self.reads.append(tenant_id)
        number = len(self.reads)
        await self.release.wait()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("store down")
        entry = QueueEntry(
            chat=f"c{number}",
            queue="default",
            waiting_since=0.0,
            verified=False,
            state="queued",
        )
        return QueueRead([QueueRow(entry, "queued", None)], {})


async def test_consoles_asking_during_one_read_share_it() -> None:
    clock, load = Clock(), Loader()
    reads = SharedQueueReads(load, clock)
    waiting = [asyncio.create_task(reads.rows("t", not_before=99.0)) for _ in range(50)]
    await asyncio.sleep(0)
    load.release.set()
    results = await asyncio.gather(*waiting)
    assert load.reads == ["t"]
    assert all(r is results[0] for r in results)


async def test_a_finished_read_is_reused_until_a_newer_change() -> None:
    clock, load = Clock(), Loader()
    load.release.set()
    reads = SharedQueueReads(load, clock)
    first = await reads.rows("t", not_before=100.0)
    clock.now = 105.0
    assert await reads.rows("t", not_before=100.0) is first  # read started at 100: fresh
    assert load.reads == ["t"]
    second = await reads.rows("t", not_before=100.5)  # a change heard after that read began
    assert second is not first and load.reads == ["t", "t"]


async def test_a_change_during_a_read_is_not_served_the_older_read() -> None:
    clock, load = Clock(), Loader()
    reads = SharedQueueReads(load, clock)
    early = asyncio.create_task(reads.rows("t", not_before=100.0))
    await asyncio.sleep(0)
    clock.now = 101.0  # the change arrives while the first read runs
    late = asyncio.create_task(reads.rows("t", not_before=100.5))
    await asyncio.sleep(0)
    load.release.set()
    assert (await early).rows[0].entry.chat == "c1"
    assert (await late).rows[0].entry.chat == "c2"


async def test_tenants_do_not_share_reads() -> None:
    clock, load = Clock(), Loader()
    load.release.set()
    reads = SharedQueueReads(load, clock)
    await reads.rows("a", not_before=0.0)
    await reads.rows("b", not_before=0.0)
    assert load.reads == ["a", "b"]


async def test_a_failed_read_fails_its_waiters_and_is_never_reused() -> None:
    clock, load = Clock(), Loader()
    reads = SharedQueueReads(load, clock)
    load.fail_next = True
    waiting = [asyncio.create_task(reads.rows("t", not_before=0.0)) for _ in range(3)]
    await asyncio.sleep(0)
    load.release.set()
    for task in waiting:
        with pytest.raises(RuntimeError, match="store down"):
            await task
    read = await reads.rows("t", not_before=0.0)
    assert read.rows[0].entry.chat == "c2" and load.reads == ["t", "t"]
