"""The collector's older-generation pauses reach ``cipherdesk_gc_pause_seconds``."""

from __future__ import annotations

import gc
from pathlib import Path

from gateway.gc_pauses import CollectorPauses
from gateway.metrics import Metrics
from tests.gateway.helpers import start_gateway


class Ticks:
    """A clock that moves 30 ms per reading (a collection's start and stop)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.03
        return self.now


def _count(metrics: Metrics, generation: str) -> float:
    return metrics.value("cipherdesk_gc_pause_seconds_count", {"generation": generation})


def _sum(metrics: Metrics, generation: str) -> float:
    return metrics.value("cipherdesk_gc_pause_seconds_sum", {"generation": generation})


def test_full_and_middle_collections_are_timed_young_ones_not() -> None:
    metrics = Metrics()
    pauses = CollectorPauses(metrics.gc_pause_seconds, clock=Ticks())
    before = list(gc.callbacks)
    pauses.start()
    pauses.start()  # idempotent: one callback
    try:
        assert len(gc.callbacks) == len(before) + 1
        gc.collect(0)
        assert _count(metrics, "1") == _count(metrics, "2") == 0
        gc.collect(2)
        assert _count(metrics, "2") >= 1
        assert abs(_sum(metrics, "2") / _count(metrics, "2") - 0.03) < 1e-9
        gc.collect(1)
        assert _count(metrics, "1") >= 1
    finally:
        pauses.stop()
    assert gc.callbacks == before
    full = _count(metrics, "2")
    gc.collect(2)
    assert _count(metrics, "2") == full  # stopped: nothing more is timed


async def test_a_running_gateway_times_collections_and_stops_when_it_stops(
    tmp_path: Path,
) -> None:
    before = list(gc.callbacks)
    runner, _base, svc = await start_gateway(tmp_path)
    try:
        gc.collect(2)
        assert _count(svc.metrics, "2") >= 1
        assert b"cipherdesk_gc_pause_seconds_bucket" in svc.metrics.render()[0]
    finally:
        await runner.cleanup()
    assert gc.callbacks == before
