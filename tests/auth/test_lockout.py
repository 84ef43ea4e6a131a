"""Brute-force detection: exact decision sequences at given instants."""

from __future__ import annotations

import pytest

from auth.lockout import LockoutDecision, LockoutPolicy, LockoutState

POLICY = LockoutPolicy()  # 3 free, 1 s base, 900 s cap, lock at 10 for 900 s, decay 300 s
# The same shape without decay getting in the way of long gaps between failures.
SLOW = LockoutPolicy(decay_every=1e6)


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
        state = SLOW.record_failure(state, t)
    # 3 failures: wait 1 s from the last one.
    assert SLOW.check(state, t) == LockoutDecision(False, 1.0, False)
    assert SLOW.check(state, t + 0.25) == LockoutDecision(False, 0.75, False)
    assert SLOW.check(state, t + 1.0).allowed
    expected_delays = [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]  # after failures 4..9
    for delay in expected_delays:
        t += 1000.0
        state = SLOW.record_failure(state, t)
        assert SLOW.check(state, t) == LockoutDecision(False, delay, False)
        assert not SLOW.check(state, t + delay - 0.001).allowed
        assert SLOW.check(state, t + delay).allowed
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


def test_failures_decay_one_per_period() -> None:
    state, _ = fail_n(POLICY, 8)
    last = state.last_failure_at
    assert POLICY.current(state, last + 299.0).failures == 8
    assert POLICY.current(state, last + 300.0).failures == 7
    assert POLICY.current(state, last + 3 * 300.0 + 10).failures == 5
    assert not POLICY.is_clean(state, last + 8 * 300.0 - 1)
    assert POLICY.is_clean(state, last + 8 * 300.0)
    # Decay is idempotent: re-reading a decayed state does not decay it twice.
    once = POLICY.current(state, last + 450.0)
    assert POLICY.current(once, last + 450.0) == once
    assert POLICY.current(once, last + 600.0).failures == 6
    # The next failure counts on top of what is left.
    assert POLICY.record_failure(state, last + 600.0).failures == 7
    assert POLICY.record_failure(state, last + 8 * 300.0).failures == 1


def test_nothing_decays_during_a_lock_and_decay_starts_when_it_lifts() -> None:
    state, t = fail_n(POLICY, 10)
    assert state.locked_until == t + 900.0
    assert POLICY.current(state, t + 899.0) == state
    assert POLICY.current(state, t + 900.0 + 299.0).failures == 10
    assert POLICY.current(state, t + 900.0 + 300.0).failures == 9
    # A slow trickle of one guess per lock period cannot keep the key locked for ever:
    # after a quiet hour the count is down to 0 and the budget is back.
    assert POLICY.is_clean(state, t + 900.0 + 10 * 300.0)


def test_ceiling_never_locks_only_paces() -> None:
    ceiling = LockoutPolicy(free_failures=5, lock_after=None, max_delay=8.0, decay_every=36.0)
    state, t = LockoutState(), 0.0
    for _ in range(1000):
        state = ceiling.record_failure(state, t)
    assert state.locked_until == 0.0 and state.failures == 1000
    assert ceiling.check(state, t).allowed is False  # progressive delay shape...
    assert ceiling.pace(state, t) == 8.0  # ...but the gateway only paces, capped
    assert ceiling.pace(LockoutState(), t) == 0.0
    four = LockoutState(failures=4.0, last_failure_at=t)
    assert ceiling.pace(four, t) == 0.0
    assert ceiling.pace(LockoutState(failures=6.0, last_failure_at=t), t) == 2.0


def test_alert_due_once_per_interval() -> None:
    ceiling = LockoutPolicy(free_failures=3, lock_after=None, alert_every=3600.0)
    state = LockoutState(failures=2.0, last_failure_at=10.0)
    assert not ceiling.alert_due(state, 10.0)
    state = ceiling.record_failure(state, 11.0)
    assert ceiling.alert_due(state, 11.0)
    alerted = LockoutState(state.failures, state.last_failure_at, 0.0, alerted_at=11.0)
    assert not ceiling.alert_due(ceiling.record_failure(alerted, 12.0), 12.0)
    assert ceiling.alert_due(LockoutState(50.0, 3611.0, 0.0, 11.0), 3611.0)
    # record_failure keeps the alert time.
    assert ceiling.record_failure(alerted, 13.0).alerted_at == 11.0


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
        LockoutPolicy(decay_every=float("inf"))
    with pytest.raises(ValueError):
        LockoutPolicy(free_failures=-1, lock_after=None)
    with pytest.raises(ValueError):
        LockoutPolicy(base_delay=0)
