"""Lockout counting is an atomic read-modify-write on both engines (issue 21.4).

Before: the gateway read the record, computed, and wrote it back; ten parallel failures
were counted as 3, 7 or 10. ``update_lockout`` serialises the whole step per key.
"""

from __future__ import annotations

import asyncio

from gateway.store import AgentSession, LockoutRecord, Store
from tests.gateway.store.helpers import agent, tenant


def _plus_one(now: float):
    def change(before: LockoutRecord | None) -> LockoutRecord:
        failures = before.failures if before else 0.0
        return LockoutRecord("ignored", failures=failures + 1, last_failure_at=now)

    return change


async def test_parallel_increments_are_all_counted(store: Store, second_store: Store) -> None:
    # 40 concurrent failures from two "nodes" sharing the database: none may be lost.
    calls = [
        s.update_lockout("p:k1", _plus_one(float(i)))
        for i in range(20)
        for s in (store, second_store)
    ]
    results = await asyncio.gather(*calls)
    record = await store.get_lockout("p:k1")
    assert record is not None and record.failures == 40.0
    # Every caller saw a distinct "before" (a strict serialisation of the updates).
    befores = sorted((b.failures if b else 0.0) for b, _ in results)
    assert befores == [float(i) for i in range(40)]


async def test_update_returns_before_after_and_can_delete(store: Store) -> None:
    before, after = await store.update_lockout("a:x", _plus_one(5.0))
    assert before is None and after == LockoutRecord("a:x", failures=1.0, last_failure_at=5.0)
    stored = await store.get_lockout("a:x")
    assert stored == after
    before, after = await store.update_lockout("a:x", lambda rec: None)
    assert before == stored and after is None
    assert await store.get_lockout("a:x") is None
    # Deleting a key that does not exist leaves no row behind either.
    assert await store.update_lockout("a:none", lambda rec: None) == (None, None)
    assert await store.get_lockout("a:none") is None


async def test_fractional_failures_and_alert_time_round_trip(store: Store) -> None:
    rec = LockoutRecord(
        "a:y", failures=2.75, last_failure_at=1.5, locked_until=9.0, alerted_at=7.25
    )
    await store.put_lockout(rec)
    assert await store.get_lockout("a:y") == rec


async def test_clear_lockouts_by_prefix(store: Store) -> None:
    for key in ("p:aaa:1", "p:aaa:2", "p:aab:1", "a:aaa", "p:a_a:1"):
        await store.put_lockout(LockoutRecord(key, failures=1.0))
    assert await store.clear_lockouts("p:aaa:") == 2
    assert await store.get_lockout("p:aaa:1") is None
    assert await store.get_lockout("p:aab:1") is not None
    assert await store.get_lockout("a:aaa") is not None
    # LIKE wildcards in the prefix are literal: "p:a_" must not match "p:aab".
    assert await store.clear_lockouts("p:a_a:") == 1
    assert await store.get_lockout("p:aab:1") is not None


async def test_session_reauth_mark(store: Store) -> None:
    await store.create_tenant(tenant())
    await store.create_agent(agent())
    await store.create_session(AgentSession("h1", "a1", "t1", 100.0, 100.0, reauth_at=100.0))
    assert (await store.get_session("h1")).reauth_at == 100.0
    assert await store.mark_session_reauth("h1", 250.0)
    assert await store.mark_session_reauth("h1", 200.0)  # never lowered
    assert (await store.get_session("h1")).reauth_at == 250.0
    await store.revoke_session("h1", 300.0)
    assert not await store.mark_session_reauth("h1", 400.0)
    assert not await store.mark_session_reauth("unknown", 400.0)
