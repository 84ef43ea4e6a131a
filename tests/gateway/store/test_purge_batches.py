"""Retention's purge (``Store.purge_lifecycle``) on both engines: at most a batch of each
class per call, only rows past their class's cutoff, only the tenant's own, each batch
found through its class's index (0023) rather than by reading the tenant's rows."""

from __future__ import annotations

import sqlite3

from gateway.store import Store
from gateway.store._lifecycle import PURGE
from gateway.store.base import LifecycleCutoffs, PolicyFlag
from tests.gateway.store.helpers import event, setup_chat

NOW = 1_000_000.0


async def test_a_purge_takes_a_batch_of_each_class_past_its_cutoff(store: Store) -> None:
    await setup_chat(store, "c1")
    await setup_chat(store, "c2", tenant_id="t2")
    for tenant, chat in (("t1", "c1"), ("t2", "c2")):
        for seq, age in enumerate((50, 40, 30, 5), start=1):
            await store.add_flag(PolicyFlag(chat, tenant, seq, ["card"], b"s", NOW - age))
        await store.enqueue_events(
            [
                event(f"{tenant}-{k}", chat, tenant_id=tenant, created_at=NOW - 100 + k)
                for k in range(9)
            ]
        )
    for item in await store.list_events(limit=100):
        k = int(item.idempotency_key.rsplit("-", 1)[1])
        if k < 4:  # 0-2 delivered long ago, 3 lately
            assert await store.mark_delivered(item.id, NOW - (50 if k < 3 else 5))
        elif k < 8:  # 4-7: dead letters of events made long ago
            assert await store.dead_letter(item.id, attempts=3, error="gone")
    cutoffs = LifecycleCutoffs(flags_before=NOW - 20, delivered_before=NOW - 20, dead_before=NOW)

    first = await store.purge_lifecycle("t1", cutoffs, 2)
    assert first == {"flags": 2, "delivered_outbox": 2, "dead_letters": 2}
    second = await store.purge_lifecycle("t1", cutoffs, 2)
    assert second == {"flags": 1, "delivered_outbox": 1, "dead_letters": 2}
    assert await store.purge_lifecycle("t1", cutoffs, 2) == {
        "flags": 0,
        "delivered_outbox": 0,
        "dead_letters": 0,
    }
    left = await store.list_events(tenant_id="t1", limit=100)
    assert sorted(i.idempotency_key for i in left) == ["t1-3", "t1-8"]  # recent, pending
    assert [f.seq for f in await store.list_flags("t1", unreviewed_only=False)] == [4]
    assert len(await store.list_events(tenant_id="t2", limit=100)) == 9  # not its turn
    kept = LifecycleCutoffs(flags_before=None, delivered_before=None, dead_before=None)
    assert await store.purge_lifecycle("t2", kept, 2) == {
        "flags": 0,
        "delivered_outbox": 0,
        "dead_letters": 0,
    }


async def test_each_purge_batch_is_found_through_an_index(store: Store, backend: str) -> None:
    if backend != "sqlite":
        return  # SQLite's plan is the one on the writer; PostgreSQL's depends on statistics
    path = store.path  # type: ignore[attr-defined]
    conn = sqlite3.connect(path)
    try:
        for name, template in PURGE:
            plan = " | ".join(
                row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {template}", ("t1", 1.0, 10))
            )
            # the cutoff bounds the index range: only rows past it are read
            assert "_at<?)" in plan, (name, plan)
            assert "SCAN policy_flags" not in plan and "SCAN outbox" not in plan, (name, plan)
    finally:
        conn.close()
