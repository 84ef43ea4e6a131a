"""Brute-force protection for logins, modelled on Keycloak's brute-force detection.

One :class:`LockoutState` is kept per key the gateway chooses (per account, and
separately per client IP); this module only computes. The rules, all relative to
the *last* failure:

* the first ``free_failures`` failures cost nothing;
* after ``n >= free_failures`` failures the next attempt must wait
  ``base_delay * 2 ** (n - free_failures)`` seconds, capped at ``max_delay``
  (1 s, 2 s, 4 s, ... with the defaults);
* the failure that brings the count to ``lock_after`` locks the key for
  ``lock_duration``. The count is *not* reset when the lock lifts, so every
  further failure locks again at once: after the first lock an attacker gets one
  guess per ``lock_duration``, not another ten;
* failures are forgotten once ``reset_after`` has passed since the last one
  (unless the key is still locked), and a success forgets them at once.

The gateway calls :meth:`LockoutPolicy.check` *before* verifying credentials and
answers "retry after" without verifying at all when it says no; it calls
:meth:`LockoutPolicy.record_failure` only for attempts that were checked and
failed, so hammering during a delay does not extend it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LockoutDecision", "LockoutPolicy", "LockoutState"]


@dataclass(frozen=True, slots=True)
class LockoutState:
    """What is persisted per key; the default value means "clean"."""

    failures: int = 0
    last_failure_at: float = 0.0
    locked_until: float = 0.0


@dataclass(frozen=True, slots=True)
class LockoutDecision:
    """Whether an attempt may proceed now, and if not, for how long to wait.

    ``locked`` distinguishes a lockout (tell the user, alert an admin) from an
    ordinary progressive delay.
    """

    allowed: bool
    retry_after: float = 0.0
    locked: bool = False


_CLEAN = LockoutState()


@dataclass(frozen=True, slots=True)
class LockoutPolicy:
    """The tunables of brute-force detection; methods are pure functions of state."""

    free_failures: int = 3
    base_delay: float = 1.0
    max_delay: float = 900.0
    lock_after: int = 10
    lock_duration: float = 900.0
    reset_after: float = 43200.0

    def __post_init__(self) -> None:
        if not 0 <= self.free_failures < self.lock_after:
            raise ValueError("LockoutPolicy needs 0 <= free_failures < lock_after")
        if min(self.base_delay, self.max_delay, self.lock_duration, self.reset_after) <= 0:
            raise ValueError("LockoutPolicy durations must be positive")

    def _current(self, state: LockoutState, now: float) -> LockoutState:
        """``state`` with stale failures forgotten."""
        if state.failures and now >= state.locked_until:
            if now - state.last_failure_at >= self.reset_after:
                return _CLEAN
        return state

    def delay_after(self, failures: int) -> float:
        """The wait imposed after ``failures`` consecutive failures (0 if free)."""
        if failures < self.free_failures:
            return 0.0
        exponent = failures - self.free_failures
        if exponent >= 64:  # 2**64 seconds dwarfs any cap; avoid huge floats
            return self.max_delay
        return min(self.max_delay, self.base_delay * 2.0**exponent)

    def check(self, state: LockoutState, now: float) -> LockoutDecision:
        """May an attempt be made at ``now``? If not, ``retry_after`` seconds from now."""
        state = self._current(state, now)
        if now < state.locked_until:
            return LockoutDecision(False, state.locked_until - now, True)
        if state.failures:
            ready_at = state.last_failure_at + self.delay_after(state.failures)
            if now < ready_at:
                return LockoutDecision(False, ready_at - now, False)
        return LockoutDecision(True)

    def record_failure(self, state: LockoutState, now: float) -> LockoutState:
        """The state after a failed attempt at ``now``; may start a lock."""
        state = self._current(state, now)
        failures = state.failures + 1
        locked_until = state.locked_until
        if failures >= self.lock_after:
            locked_until = max(locked_until, now + self.lock_duration)
        return LockoutState(failures=failures, last_failure_at=now, locked_until=locked_until)

    def record_success(self, state: LockoutState) -> LockoutState:
        """The state after a successful login: everything forgotten."""
        return _CLEAN

    def unlock(self) -> LockoutState:
        """A clean state, for an admin lifting a lock by hand."""
        return _CLEAN

    def is_clean(self, state: LockoutState, now: float) -> bool:
        """True if ``state`` carries nothing any more (the gateway may delete it)."""
        return self._current(state, now) == _CLEAN
