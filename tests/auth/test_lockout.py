"""Brute-force detection: exact decision sequences at given instants."""

from __future__ import annotations

import pytest

from auth.lockout import LockoutDecision, LockoutPolicy, LockoutState

POLICY = LockoutPolicy()  # 3 free, 1 s base, 900 s cap, lock at 10 for 900 s, reset 12 h


def fail_n(policy: LockoutPolicy, n: int, start: float = 1000.0) -> tuple[LockoutState, float]:
    """Record n failures, each at the earliest instant the policy allows."""
    state, now = LockoutState(), start
    for _ in range(n):
        decision = policy.check(state, now)
        now += decision.retry_after
        assert policy.check(state, now).allowed
        state = policy.record_failure(state, now)
    return state, now


def test_clean_state_is_allowed() -> None:
    assert POLICY.check(LockoutState(), 0.0) == LockoutDecision(True, 0.0, False)


def test_free_failures_cost_nothing() -> None:
    state = LockoutState()
    for i in range(2):
        state = POLICY.record_failure(state, 100.0 + i)
        assert POLICY.check(state, 100.0 + i) == LockoutDecision(True, 0.0, False)
    assert state.failures == 2


def test_exact_progressive_delays() -> None:
    state = LockoutState()
    t = 100.0
    for _ in range(3):
        state = POLICY.record_failure(state, t)
    # 3 failures: wait 1 s from the last one.
    assert POLICY.check(state, t) == LockoutDecision(False, 1.0, False)
    assert POLICY.check(state, t + 0.25) == LockoutDecision(False, 0.75, False)
    assert POLICY.check(state, t + 1.0).allowed
    expected_delays = [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]  # after failures 4..9
    for delay in expected_delays:
        t += 1000.0
        state = POLICY.record_failure(state, t)
        assert POLICY.check(state, t) == LockoutDecision(False, delay, False)
        assert not POLICY.check(state, t + delay - 0.001).allowed
        assert POLICY.check(state, t + delay).allowed
    assert state.failures == 9 and state.locked_until == 0.0


def test_delay_is_capped() -> None:
    policy = LockoutPolicy(max_delay=5.0, lock_after=50)
    assert [policy.delay_after(n) for n in range(8)] == [0, 0, 0, 1, 2, 4, 5, 5]
    assert policy.delay_after(10_000) == 5.0


def test_lock_engages_at_lock_after_and_lifts_after_duration() -> None:
    state, t = fail_n(POLICY, 9)
    assert state.locked_until == 0.0
    t += 64.0
    state = POLICY.record_failure(state, t)  # the 10th
    assert state.failures == 10
    assert state.locked_until == t + 900.0
    assert POLICY.check(state, t) == LockoutDecision(False, 900.0, True)
    assert POLICY.check(state, t + 899.5) == LockoutDecision(False, 0.5, True)
    assert POLICY.check(state, t + 900.0) == LockoutDecision(True, 0.0, False)


def test_failure_after_lock_relocks_immediately() -> None:
    state, t = fail_n(POLICY, 10)
    t = state.locked_until
    state = POLICY.record_failure(state, t)
    assert state.failures == 11
    assert POLICY.check(state, t + 1) == LockoutDecision(False, 899.0, True)


def test_success_resets() -> None:
    state, t = fail_n(POLICY, 5)
    assert POLICY.record_success(state) == LockoutState()
    assert POLICY.check(POLICY.record_success(state), t).allowed


def test_admin_unlock() -> None:
    state, t = fail_n(POLICY, 10)
    assert POLICY.check(state, t).locked
    assert POLICY.check(POLICY.unlock(), t).allowed


def test_reset_after_forgets_old_failures() -> None:
    state, _ = fail_n(POLICY, 8)
    last = state.last_failure_at
    assert not POLICY.is_clean(state, last + 43199.0)
    assert POLICY.is_clean(state, last + 43200.0)
    # The next failure after the reset window starts a fresh count of 1.
    fresh = POLICY.record_failure(state, last + 43200.0)
    assert fresh.failures == 1
    assert POLICY.check(fresh, last + 43200.0).allowed
    # Just before the window, the count carries on.
    assert POLICY.record_failure(state, last + 43199.0).failures == 9


def test_reset_does_not_cut_a_lock_short() -> None:
    policy = LockoutPolicy(lock_duration=100.0, reset_after=50.0, lock_after=2, free_failures=0)
    state = policy.record_failure(policy.record_failure(LockoutState(), 0.0), 10.0)
    assert state.locked_until == 110.0
    assert policy.check(state, 70.0) == LockoutDecision(False, 40.0, True)
    assert policy.check(state, 110.0).allowed


def test_states_are_immutable_values() -> None:
    state = LockoutState()
    new = POLICY.record_failure(state, 1.0)
    assert state == LockoutState() and new is not state
    with pytest.raises(AttributeError):
        new.failures = 0  # type: ignore[misc]


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        LockoutPolicy(free_failures=10, lock_after=10)
    with pytest.raises(ValueError):
        LockoutPolicy(base_delay=0)
