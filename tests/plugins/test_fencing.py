"""Outbox leases fence deliveries (issue 21, item 5), on the real stores (SQLite and
PostgreSQL): a dispatcher whose lease expired and was taken over cannot settle the row,
a row is never claimed twice while its lease runs, a delivery is cut before its lease
ends, and ``delivery_timeout`` must stay below the lease."""

from __future__ import annotations

import asyncio
import time

import pytest

from plugins.api import MessagePosted
from plugins.outbox import Dispatcher
from tests.plugins.fakes import (
    ALL_EVENTS,
    Clock,
    MemoryOutbox,
    RecordingPlugin,
    decode,
    eventually,
    outbox_event,
    plugin_table,
)

T0 = 1_700_000_000.0


def msg(chat: str = "chat-1", n: int = 1) -> MessagePosted:
    return MessagePosted(
        tenant_id="acme",
        chat_id=chat,
        occurred_at=T0 + n,
        event_id=f"{chat}-{n}",
        seq=n,
        sender="customer",
        text="masked",
    )


async def test_stale_lease_token_cannot_settle(real_store):
    store = real_store
    await store.enqueue_events([outbox_event("p", msg())])
    [first] = await store.claim_due_events(T0 + 10)
    assert await store.claim_due_events(T0 + 20) == []  # leased: nobody else gets it
    [second] = await store.claim_due_events(T0 + 10 + store.lease_seconds)  # lease expired
    assert second.id == first.id and second.lease_token == first.lease_token + 1
    stale = first.lease_token
    assert await store.mark_delivered(first.id, T0 + 80, lease=stale) is False
    assert (
        await store.reschedule_event(
            first.id, attempts=1, next_attempt_at=T0, error="x", lease=stale
        )
        is False
    )
    assert await store.dead_letter(first.id, attempts=1, error="x", lease=stale) is False
    [row] = await store.list_events(state="pending")
    assert row.attempts == 0 and row.last_error is None  # the stale calls wrote nothing
    assert await store.mark_delivered(first.id, T0 + 81, lease=second.lease_token) is True
    [done] = await store.list_events(state="delivered")
    assert done.delivered_at == T0 + 81
    # settled rows cannot be settled again, fenced or not
    assert await store.mark_delivered(first.id, T0 + 82, lease=second.lease_token) is False


async def test_two_dispatchers_with_an_expiring_lease(real_store):
    """A's delivery hangs past its lease; B re-claims and delivers; A's late result is
    fenced (it writes nothing) and the row stays delivered exactly once by B."""
    store = real_store
    clock = Clock(T0 + 100)
    slow = RecordingPlugin("p", ALL_EVENTS, ["hang"])
    fast = RecordingPlugin("p", ALL_EVENTS)
    a = Dispatcher(store, decode, plugin_table(slow), clock=clock, rng=lambda: 1.0)
    b = Dispatcher(store, decode, plugin_table(fast), clock=clock, rng=lambda: 1.0)
    await store.enqueue_events([outbox_event("p", msg())])

    task_a = asyncio.create_task(a.run_once())
    await eventually(lambda: slow.attempted)
    assert await b.run_once() == []  # A's lease still runs: B may not claim the row

    clock.advance(store.lease_seconds + 1)  # A's lease is over (A is still "sending")
    [rb] = await b.run_once()
    assert rb.outcome == "delivered" and [e.event_id for e in fast.received] == ["p:chat-1-1"]

    slow.release.set()
    [ra] = await task_a
    assert ra.outcome == "fenced" and ra.error == "lease lost to another dispatcher"
    [row] = await store.list_events()
    assert row.state == "delivered" and row.attempts == 0
    assert row.delivered_at == clock()  # B's settlement, untouched by A


async def test_delivery_is_cut_before_its_lease_ends(real_store):
    """Real time: a hanging plugin is cancelled before its lease expires, so the row is
    handed back (retry) by its own dispatcher before anyone else could claim it."""
    store = real_store
    store.lease_seconds = 1.5
    hang = RecordingPlugin("p", ALL_EVENTS, ["hang"])
    d = Dispatcher(
        store,
        decode,
        plugin_table(hang),
        clock=time.time,
        rng=lambda: 0.0,
        delivery_timeout=1.0,
        lease_margin=0.3,
    )
    await store.enqueue_events([outbox_event("p", msg())])
    claimed_at = time.time()
    [r] = await d.run_once()
    ended = time.time()
    assert r.outcome == "retry" and r.error == "timeout"
    assert ended < claimed_at + store.lease_seconds  # settled inside its own lease
    [row] = await store.list_events(state="pending")
    assert row.attempts == 1 and row.last_error == "timeout"


def test_delivery_timeout_must_stay_below_the_lease():
    store = MemoryOutbox(lease_seconds=30.0)
    with pytest.raises(ValueError, match="must be below the outbox lease"):
        Dispatcher(store, decode, plugin_table(), delivery_timeout=30.0)
    with pytest.raises(ValueError, match="must be below the outbox lease"):
        Dispatcher(store, decode, plugin_table(), delivery_timeout=29.0, lease_margin=2.0)
    Dispatcher(store, decode, plugin_table(), delivery_timeout=27.0, lease_margin=2.0)


async def test_memory_kit_fences_like_the_stores():
    store = MemoryOutbox(lease_seconds=10)
    await store.enqueue_events([outbox_event("p", msg())])
    [first] = await store.claim_due_events(T0 + 5)
    [second] = await store.claim_due_events(T0 + 16)
    assert await store.mark_delivered(first.id, T0 + 17, lease=first.lease_token) is False
    assert await store.mark_delivered(first.id, T0 + 17, lease=second.lease_token) is True


async def test_dispatcher_on_real_store_orders_retries_and_dead_letters(real_store):
    """The dispatcher's rules on real SQL: per-chat order while an earlier row backs off,
    Retry-After honoured, a permanent failure dead-letters at once and then no longer
    holds its chat back (the documented ordering contract), replay delivers it last."""
    from plugins.api import PermanentError, RetryableError

    store = real_store
    clock = Clock(T0 + 100)
    p = RecordingPlugin(
        "p", ALL_EVENTS, [RetryableError("busy", retry_after=50), PermanentError("rejected")]
    )
    d = Dispatcher(store, decode, plugin_table(p), clock=clock, rng=lambda: 0.0)
    await store.enqueue_events(
        [
            outbox_event("p", msg("chat-1", 1)),
            outbox_event("p", msg("chat-1", 2)),
            outbox_event("p", msg("chat-2", 1)),
        ]
    )
    first = {(r.item_id, r.outcome) for r in await d.run_once()}
    ids = {row.idempotency_key: row.id for row in await store.list_events()}
    assert first == {(ids["p:chat-1-1"], "retry"), (ids["p:chat-2-1"], "dead")}
    assert await d.run_once() == []  # chat-1's second row waits behind the first
    clock.advance(50)
    assert [(r.item_id, r.outcome) for r in await d.run_once()] == [
        (ids["p:chat-1-1"], "delivered")
    ]
    assert [(r.item_id, r.outcome) for r in await d.run_once()] == [
        (ids["p:chat-1-2"], "delivered")
    ]
    [dead] = await store.list_events(state="dead")
    assert dead.last_error == "PermanentError: rejected"
    assert await store.replay_dead(dead.id, clock())
    [r] = await d.run_once()
    assert (r.item_id, r.outcome) == (ids["p:chat-2-1"], "delivered")
    assert [e.event_id for e in p.received] == ["p:chat-1-1", "p:chat-1-2", "p:chat-2-1"]


async def test_retry_window_turns_into_a_dead_letter(real_store):
    store = real_store
    clock = Clock(T0 + 100)
    from plugins.api import RetryableError

    p = RecordingPlugin("p", ALL_EVENTS, [RetryableError("down")] * 50)
    d = Dispatcher(
        store,
        decode,
        plugin_table(p),
        clock=clock,
        rng=lambda: 1.0,
        max_attempts=None,
        retry_window=3 * 3600,
        max_delay=1800,
    )
    await store.enqueue_events([outbox_event("p", msg())])
    outcomes = []
    while True:
        results = await d.run_once()
        if results:
            outcomes.append(results[0].outcome)
            if results[0].outcome == "dead":
                break
        clock.advance(1800)
    [row] = await store.list_events(state="dead")
    assert row.last_error.startswith("gave up after the retry window")
    assert clock() - (T0 + 1) <= 3 * 3600 + 1800  # not a minute-scale give-up either
    assert clock() - (T0 + 1) > 2 * 3600
    assert outcomes.count("retry") == row.attempts - 1
