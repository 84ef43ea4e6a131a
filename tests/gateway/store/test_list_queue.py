"""``Store.list_queue`` and ``Store.count_open_chats``: what consoles list of a tenant's
open chats, bounded per queue however many wait, and the team view's counts."""

from __future__ import annotations

from gateway.store import Store
from gateway.store.base import OpenChatCount
from tests.gateway.store.helpers import agent, setup_chat


async def _open_chats(store: Store) -> None:
    await setup_chat(store, "s0", queue="sales", created_at=100.0, queued_at=500.0)  # re-queued
    for i in range(1, 7):
        await setup_chat(store, f"s{i}", queue="sales", created_at=100.0 + i)
    await setup_chat(store, "b1", queue="billing", created_at=300.0)
    await setup_chat(store, "b0", queue="billing", created_at=300.0)  # same time: id orders
    await store.create_agent(agent("a1"))
    await store.create_agent(agent("a2"))
    for i in range(4):  # active chats come after every waiting one, and are all listed
        await setup_chat(
            store,
            f"x{i}",
            queue="sales",
            created_at=900.0 + i,
            state="active",
            assigned_agent_id="a1" if i < 3 else "a2",
        )
    await setup_chat(store, "done", queue="sales", created_at=50.0, state="closed")
    await setup_chat(store, "other", tenant_id="t2", queue="sales", created_at=1.0)


async def test_each_queue_lists_its_longest_waiting_chats_and_counts_them_all(
    store: Store,
) -> None:
    await _open_chats(store)

    listing = await store.list_queue("t1", waiting_per_queue=3)

    assert [c.id for c in listing.chats] == ["s1", "s2", "s3", "b0", "b1", "x0", "x1", "x2", "x3"]
    assert listing.waiting == {"sales": 7, "billing": 2}
    everything = await store.list_queue("t1", waiting_per_queue=100)
    assert {c.id for c in everything.chats} == {
        *(f"s{i}" for i in range(7)),
        "b0",
        "b1",
        *(f"x{i}" for i in range(4)),
    }
    assert everything.waiting == {"sales": 7, "billing": 2}
    nobody = await store.list_queue("t2", waiting_per_queue=0)
    assert (nobody.chats, nobody.waiting) == ([], {})


async def test_open_chats_are_counted_by_queue_state_and_agent(store: Store) -> None:
    await _open_chats(store)

    counts = await store.count_open_chats("t1")

    assert sorted(counts, key=lambda g: (g.queue, g.state, g.assigned_agent_id or "")) == [
        OpenChatCount("billing", "queued", None, 2),
        OpenChatCount("sales", "active", "a1", 3),
        OpenChatCount("sales", "active", "a2", 1),
        OpenChatCount("sales", "queued", None, 7),
    ]
    assert await store.count_open_chats("nobody") == []
