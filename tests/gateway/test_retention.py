"""The retention job on the real services, SQLite and PostgreSQL, with an injected clock.

Covers the boundary day (``closed_at < now - days`` is erased, exactly at the cutoff is
kept), more chats than one store batch, ``closed_chat_days = 0`` (keep forever) and
erase failures (logged, skipped, retried on the next run; they never block the rest).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog

from gateway.config import RetentionConfig
from gateway.retention import BATCH, DAY, RetentionJob
from gateway.services import Services
from tests.gateway.helpers import FakeClock, record_erasures

DAYS = 30.0


async def _closed_chat(svc: Services, closed_at: float, text: str | None = "hello") -> str:
    opened = await svc.chats.open_chat("demo")
    if text is not None:
        await svc.chats.post_customer_message("demo", opened.chat.id, "m1", text, opened.chat)
    closed = await svc.store.close_chat(opened.chat.id, closed_at=closed_at, reason="resolved")
    assert closed is not None
    return opened.chat.id


def _job(svc: Services, clock: FakeClock, days: float = DAYS) -> RetentionJob:
    return RetentionJob(svc.store, svc.chats, RetentionConfig(closed_chat_days=days), clock)


async def _erased(svc: Services, chat_id: str) -> bool:
    chat = await svc.store.get_chat(chat_id)
    assert chat is not None
    return chat.close_reason == "erased"


async def test_boundary_day_erases_only_chats_closed_before_the_cutoff(
    svc: Services, clock: FakeClock
) -> None:
    now = clock()
    cutoff = now - DAYS * DAY
    before = await _closed_chat(svc, cutoff - 1)
    at = await _closed_chat(svc, cutoff)
    after = await _closed_chat(svc, cutoff + 1)
    open_chat = (await svc.chats.open_chat("demo")).chat.id
    job = _job(svc, clock)

    assert (await job.run_once()).total("closed_chats") == 1
    assert [await _erased(svc, c) for c in (before, at, after)] == [True, False, False]
    assert await svc.store.get_chat_key(before) is None
    assert await svc.store.messages_after(before, 0) == []
    assert await svc.store.messages_after(at, 0) != []
    [audit] = await svc.store.query_audit(action="chat.erased")
    assert (audit.actor, audit.target) == ("retention", before)

    clock.advance(1)  # the chat closed exactly at the old cutoff is now past it
    assert (await job.run_once()).total("closed_chats") == 1
    assert await _erased(svc, at) and not await _erased(svc, after)
    # idempotent: nothing left past the cutoff
    assert (await job.run_once()).total("closed_chats") == 0
    open_row = await svc.store.get_chat(open_chat)
    assert open_row is not None and open_row.state == "queued"  # idle-close is off by default


async def test_more_chats_than_one_batch_are_all_erased_in_one_run(
    svc: Services, clock: FakeClock
) -> None:
    old = clock() - (DAYS + 1) * DAY
    count = 2 * BATCH + 13
    ids = [await _closed_chat(svc, old + i, text=None) for i in range(count)]
    keep = await _closed_chat(svc, clock() - DAY)
    assert (await _job(svc, clock).run_once()).total("closed_chats") == count
    assert await svc.store.chats_closed_before(clock(), limit=10_000) == [keep]
    assert all([await _erased(svc, c) for c in ids[:: BATCH // 2]])
    assert len(await svc.store.query_audit(action="chat.erased", limit=10_000)) == count


async def test_a_batch_of_erasures_is_shredded_once(
    svc: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chat is erased without shredding, and the batch is shredded once after them
    (on SQLite a WAL checkpoint per chat tripled an erase's cost)."""
    old = clock() - (DAYS + 1) * DAY
    ids = [await _closed_chat(svc, old + i) for i in range(5)]
    erases, shreds = record_erasures(svc.store, monkeypatch)
    assert (await _job(svc, clock).run_once()).total("closed_chats") == 5
    assert sorted(erases) == sorted((chat_id, False) for chat_id in ids)
    assert shreds == [5]


async def test_zero_days_keeps_everything(svc: Services, clock: FakeClock) -> None:
    ancient = await _closed_chat(svc, 0.0)
    assert (await _job(svc, clock, days=0).run_once()).total("closed_chats") == 0
    assert not await _erased(svc, ancient)
    assert await svc.store.get_chat_key(ancient) is not None


async def test_erase_failures_are_logged_skipped_and_retried_next_run(
    svc: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = clock() - (DAYS + 1) * DAY
    # The failing chats are the oldest: first in every batch the store returns.
    poisoned = [await _closed_chat(svc, old - 10 + i, text=None) for i in range(3)]
    healthy = [await _closed_chat(svc, old + i, text=None) for i in range(BATCH + 5)]
    real_erase = svc.store.erase_chat

    async def flaky_erase(chat_id: str, *, shred: bool = True) -> bool:
        if chat_id in poisoned:
            raise ConnectionError("disk on fire")
        return await real_erase(chat_id, shred=shred)

    monkeypatch.setattr(svc.store, "erase_chat", flaky_erase)
    job = _job(svc, clock)
    with structlog.testing.capture_logs() as logs:
        run = await asyncio.wait_for(job.run_once(), timeout=120)
    assert run.total("closed_chats") == len(healthy)
    failures: list[dict[str, Any]] = [e for e in logs if e["event"] == "retention_erase_failed"]
    assert sorted(e["chat"] for e in failures) == sorted(poisoned)
    assert all(e["error"] == "ConnectionError" and "exc_info" not in e for e in failures)
    assert "disk on fire" not in repr(logs)
    assert [await _erased(svc, c) for c in poisoned] == [False] * 3

    monkeypatch.setattr(svc.store, "erase_chat", real_erase)  # the disk recovered
    assert (await job.run_once()).total("closed_chats") == 3
    assert all([await _erased(svc, c) for c in poisoned])


async def test_the_job_loop_keeps_running_after_a_failed_run(
    svc: Services, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []
    ran_twice = asyncio.Event()

    async def failing_query() -> list[str]:
        runs.append(1)
        if len(runs) >= 2:
            ran_twice.set()
        raise ConnectionError("store unavailable")

    monkeypatch.setattr(svc.store, "list_tenants", failing_query)
    job = RetentionJob(
        svc.store, svc.chats, RetentionConfig(closed_chat_days=DAYS, interval_seconds=0.01), clock
    )
    with structlog.testing.capture_logs() as logs:
        await job.start()
        try:
            await asyncio.wait_for(ran_twice.wait(), timeout=30)
        finally:
            await job.stop()
    assert [e["event"] for e in logs].count("retention_failed") >= 2
