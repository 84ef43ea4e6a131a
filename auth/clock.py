"""The one notion of "now" that every time-dependent piece of ``auth`` accepts.

TOTP windows, session lifetimes, lockout delays and identity-token expiry all depend
on the current time. Taking the clock as a parameter (instead of calling
``time.time()`` inline) keeps those rules pure and lets tests replay exact sequences
of instants without sleeping or monkeypatching.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Clock", "ManualClock", "system_clock"]

Clock = Callable[[], float]
"""A zero-argument callable returning the current UNIX time in seconds."""

system_clock: Clock = time.time
"""The production clock (wall time, UNIX seconds)."""


class ManualClock:
    """A clock that only moves when told to, for tests and simulations.

    It is deliberately tiny and mutable: an instance is passed wherever a
    :data:`Clock` is expected, and the test advances it between calls.
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` and return the new time."""
        self.now += seconds
        return self.now

    def set(self, at: float) -> None:
        """Jump to the absolute time ``at``."""
        self.now = float(at)
