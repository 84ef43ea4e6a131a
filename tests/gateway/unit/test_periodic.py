"""Periodic: a round at start, one per interval, one more on wake; failures do not stop it."""

from __future__ import annotations

import asyncio

from gateway.periodic import Periodic


async def _until(predicate, within: float = 5.0) -> None:
    for _ in range(int(within / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_wake_runs_a_round_without_waiting_for_the_interval() -> None:
    rounds: list[int] = []

    async def round_() -> None:
        rounds.append(len(rounds))

    job = Periodic("test", 3600.0, round_, failure_event="test_failed")
    await job.start()
    try:
        await _until(lambda: len(rounds) == 1)  # the first round runs at once
        job.wake()
        await _until(lambda: len(rounds) == 2)
        await asyncio.sleep(0.05)
        assert len(rounds) == 2  # then it waits for the (long) interval again
    finally:
        await job.stop()
    assert not job.running


async def test_a_wake_during_a_round_asks_for_exactly_one_more() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    rounds = 0

    async def round_() -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 1:
            started.set()
            await release.wait()

    job = Periodic("test", 3600.0, round_, failure_event="test_failed")
    await job.start()
    try:
        await started.wait()
        job.wake()
        job.wake()
        release.set()
        await _until(lambda: rounds == 2)
        await asyncio.sleep(0.05)
        assert rounds == 2
    finally:
        await job.stop()


async def test_a_failing_round_is_retried_next_interval() -> None:
    calls = 0

    async def round_() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")

    job = Periodic("test", 0.01, round_, failure_event="test_failed")
    await job.start()
    try:
        await _until(lambda: calls >= 3)
    finally:
        await job.stop()
