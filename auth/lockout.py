"""Brute-force throttling for logins that an attacker cannot turn into a denial of service.

Modelled on OWASP ASVS 5.0 §6.3 (throttle guessing without enabling malicious lockout)
and Keycloak's *temporary* lockout. The gateway keeps one :class:`LockoutState` per key
it chooses and calls these pure functions; which keys and which policy per key is the
gateway's business (``gateway/ratelimit/login.py``):

* per (account, source address): progressive delays, then a temporary lock of *that
  pair* only; an attacker guessing from one address never blocks the owner elsewhere;
* per source address: the same shape with a budget sized for an office behind NAT;
* per account, across all sources: a **ceiling** that never refuses and never locks
  (``lock_after=None``) — it only *paces* attempts (:meth:`LockoutPolicy.pace`) and
  raises an alert once per :attr:`LockoutPolicy.alert_every` (:meth:`LockoutPolicy.alert_due`).

The rules, for one key:

* the first ``free_failures`` failures cost nothing;
* after ``n >= free_failures`` failures the next attempt must wait
  ``base_delay * 2 ** (n - free_failures)`` seconds from the last failure, capped at
  ``max_delay`` (1 s, 2 s, 4 s, ... with the defaults);
* if ``lock_after`` is set, the failure that brings the count to it locks the key for
  ``lock_duration``;
* failures **decay**: once the key is not locked, one failure is forgotten every
  ``decay_every`` seconds since the last failure (or since the lock lifted), so a key
  recovers gradually instead of after a fixed 12-hour reset, and a slow trickle of
  guesses can never keep it locked;
* a success forgets the key at once.

Counts are whole numbers stored as floats; every function here is a pure function of the
state and ``now`` (an injectable clock in the caller), so tests replay exact instants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

__all__ = ["LockoutDecision", "LockoutPolicy", "LockoutState"]


@dataclass(frozen=True, slots=True)
class LockoutState:
    """What is persisted per key; the default value means "clean".

    ``alerted_at`` is when the last alert for this key was raised (ceiling keys only).
    """

    failures: float = 0.0
    last_failure_at: float = 0.0
    locked_until: float = 0.0
    alerted_at: float = 0.0


@dataclass(frozen=True, slots=True)
class LockoutDecision:
    """Whether an attempt may proceed now, and if not, for how long to wait.

    ``locked`` distinguishes a temporary lock (audit it) from a progressive delay.
    """

    allowed: bool
    retry_after: float = 0.0
    locked: bool = False


_CLEAN = LockoutState()


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """The tunables of one kind of key; methods are pure functions of state."""

    free_failures: int = 3
    base_delay: float = 1.0
    max_delay: float = 900.0
    lock_after: int | None = 10
    lock_duration: float = 900.0
    decay_every: float = 300.0
    alert_every: float = 3600.0

    def __post_init__(self) -> None:
        if self.free_failures < 0:
            raise ValueError("LockoutPolicy needs free_failures >= 0")
        if self.lock_after is not None and not self.free_failures < self.lock_after:
            raise ValueError("LockoutPolicy needs free_failures < lock_after")
        durations = (
            self.base_delay,
            self.max_delay,
            self.lock_duration,
            self.decay_every,
            self.alert_every,
        )
        if min(durations) <= 0 or not all(math.isfinite(d) for d in durations):
            raise ValueError("LockoutPolicy durations must be positive and finite")

    def current(self, state: LockoutState, now: float) -> LockoutState:
        """``state`` with the failures that have decayed by ``now`` forgotten.

        Nothing decays while the key is locked; afterwards the decay runs from the later
        of the last failure and the end of the lock.
        """
        if not state.failures or now < state.locked_until:
            return state
        since = max(state.last_failure_at, state.locked_until)
        forgotten = math.floor(max(0.0, now - since) / self.decay_every)
        if forgotten <= 0:
            return state
        left = state.failures - forgotten
        if left <= 0:
            return replace(_CLEAN, alerted_at=state.alerted_at)
        # Whole failures decay; the anchor moves by the decayed periods so the remainder
        # of the current period is kept and a later call does not count a span twice.
        return replace(
            state,
            failures=left,
            last_failure_at=since + forgotten * self.decay_every,
            locked_until=0.0,
        )

    def delay_after(self, failures: float) -> float:
        """The wait imposed after ``failures`` failures (0 while they are free)."""
        whole = math.floor(failures)
        if whole < self.free_failures:
            return 0.0
        exponent = whole - self.free_failures
        if exponent >= 64:  # 2**64 seconds dwarfs any cap; avoid huge floats
            return self.max_delay
        return min(self.max_delay, self.base_delay * 2.0**exponent)

    def check(self, state: LockoutState, now: float) -> LockoutDecision:
        """May an attempt be made at ``now``? If not, ``retry_after`` seconds from now."""
        if now < state.locked_until:
            return LockoutDecision(False, state.locked_until - now, True)
        fresh = self.current(state, now)
        if fresh.failures:
            # The delay is earned by the count at the last failure, counted from it.
            ready_at = state.last_failure_at + self.delay_after(fresh.failures)
            if now < ready_at:
                return LockoutDecision(False, ready_at - now, False)
        return LockoutDecision(True)

    def pace(self, state: LockoutState, now: float) -> float:
        """How long to hold an attempt before checking it (the ceiling's slow-down).

        Never a refusal: a ceiling key only ever makes attempts slower, so an attacker
        spreading guesses over many addresses slows every guess but cannot lock the
        owner out.
        """
        return self.delay_after(self.current(state, now).failures)

    def record_failure(self, state: LockoutState, now: float) -> LockoutState:
        """The state after a failed attempt at ``now``; may start a lock."""
        state = self.current(state, now)
        failures = state.failures + 1.0
        locked_until = state.locked_until
        if self.lock_after is not None and failures >= self.lock_after:
            locked_until = max(locked_until, now + self.lock_duration)
        return LockoutState(
            failures=failures,
            last_failure_at=now,
            locked_until=locked_until,
            alerted_at=state.alerted_at,
        )

    def alert_due(self, state: LockoutState, now: float) -> bool:
        """True when ``state`` is over the free budget and no alert was raised within
        ``alert_every``: the caller raises one and stores ``alerted_at=now``."""
        over = self.current(state, now).failures >= self.free_failures
        return over and (not state.alerted_at or now - state.alerted_at >= self.alert_every)

    def record_success(self, state: LockoutState) -> LockoutState:
        """The state after a successful login: everything forgotten."""
        return _CLEAN

    def unlock(self) -> LockoutState:
        """A clean state, for an admin lifting a lock by hand."""
        return _CLEAN

    def is_clean(self, state: LockoutState, now: float) -> bool:
        """True if ``state`` carries nothing any more (the gateway may delete it)."""
        fresh = self.current(state, now)
        return not fresh.failures and not fresh.locked_until
