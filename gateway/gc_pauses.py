"""How long the garbage collector stops the process: a histogram per older generation.

Why: while the heap grows (1,000 connections opening in a burst), CPython 3.11 runs full
collections that walk every tracked object and stop every connection of the process at
once: 20–250 ms each on the 2-core development machine (bench/latency.py), the tail of
message latency at scale, and invisible in every other metric. An operator who sees
them knows the tail is the process's heap (more worker processes or nodes, fewer
connections per process), not a slow query.

Only generations 1 and 2 are timed. Young collections are many and short, and each one
costs the callback a comparison and a return.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable

from prometheus_client import Histogram

__all__ = ["CollectorPauses"]


class CollectorPauses:
    """Times the collector's older-generation runs into ``histogram`` (label
    ``generation``) between :meth:`start` and :meth:`stop`."""

    def __init__(
        self, histogram: Histogram, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._observe = {
            generation: histogram.labels(generation=str(generation)).observe
            for generation in (1, 2)
        }
        self._clock = clock
        self._started = 0.0

    def start(self) -> None:
        """Begin timing (idempotent)."""
        if self._on_collection not in gc.callbacks:
            gc.callbacks.append(self._on_collection)

    def stop(self) -> None:
        """Stop timing: the callback leaves ``gc.callbacks``."""
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_collection)

    def _on_collection(self, phase: str, info: dict[str, int]) -> None:
        generation = info["generation"]
        if not generation:
            return
        if phase == "start":
            self._started = self._clock()
        else:
            self._observe[generation](self._clock() - self._started)
