"""What admins read of the outbox (``gateway/store/_outbox_admin.py``), on both engines:
one row by id whatever its state, counts per plugin bounded by a cap, and a tenant's dead
letters and pending rows found through their own indexes (0024) instead of by reading its
delivered rows."""

from __future__ import annotations

import sqlite3

from gateway.store import Store
from gateway.store._outbox_admin import counting, listing
from tests.gateway.store.helpers import event, setup_chat


async def _outbox(store: Store) -> dict[str, int]:
    """t1: webhook rows a (delivered), b (dead), c (pending); zendesk rows d, e (dead);
    t2: one dead webhook row f. Returns ids by key."""
    await setup_chat(store, "c1")
    await setup_chat(store, "c2", tenant_id="t2")
    await store.enqueue_events(
        [
            event("a", "c1"),
            event("b", "c1"),
            event("c", "c1"),
            event("d", "c1", plugin="zendesk"),
            event("e", "c1", plugin="zendesk"),
            event("f", "c2", tenant_id="t2"),
        ]
    )
    ids = {i.idempotency_key: i.id for i in await store.list_events(limit=100)}
    assert await store.mark_delivered(ids["a"], 60.0)
    for key in ("b", "d", "e", "f"):
        assert await store.dead_letter(ids[key], attempts=5, error="gave up")
    return ids


async def test_one_row_by_id_in_any_state(store: Store) -> None:
    ids = await _outbox(store)
    for key, state in (("a", "delivered"), ("b", "dead"), ("c", "pending"), ("f", "dead")):
        item = await store.get_event(ids[key])
        assert item is not None
        assert (item.idempotency_key, item.state) == (key, state)
    assert (await store.get_event(ids["f"])).tenant_id == "t2"  # type: ignore[union-attr]
    assert await store.get_event(max(ids.values()) + 1) is None


async def test_counts_per_plugin_of_one_tenant_and_state(store: Store) -> None:
    await _outbox(store)
    assert await store.count_events(tenant_id="t1", state="dead", cap=100) == {
        "webhook": 1,
        "zendesk": 2,
    }
    assert await store.count_events(tenant_id="t1", state="pending", cap=100) == {"webhook": 1}
    assert await store.count_events(tenant_id="t1", state="delivered", cap=100) == {"webhook": 1}
    assert await store.count_events(tenant_id="t1", state="dead", plugin="zendesk", cap=100) == {
        "zendesk": 2
    }
    assert await store.count_events(tenant_id="t2", state="dead", cap=100) == {"webhook": 1}
    assert await store.count_events(tenant_id="t3", state="dead", cap=100) == {}
    # the cap bounds the rows counted in all, whatever plugin they belong to
    capped = await store.count_events(tenant_id="t1", state="dead", cap=2)
    assert sum(capped.values()) == 2 and set(capped) <= {"webhook", "zendesk"}


async def test_dead_letters_listed_oldest_first_for_their_tenant(store: Store) -> None:
    ids = await _outbox(store)
    dead = await store.list_events(tenant_id="t1", state="dead", limit=100)
    assert [i.id for i in dead] == [ids["b"], ids["d"], ids["e"]]
    two = await store.list_events(tenant_id="t1", state="dead", limit=2)
    assert [i.id for i in two] == [ids["b"], ids["d"]]


async def test_a_tenants_rows_of_one_state_are_read_through_its_index(
    store: Store, backend: str
) -> None:
    if backend != "sqlite":
        return  # PostgreSQL's plan depends on statistics; SQLite's is fixed by its schema
    await _outbox(store)
    conn = sqlite3.connect(store.path)  # type: ignore[attr-defined]
    try:
        for index, query in (
            ("outbox_dead_listing", listing("t1", None, "dead", 100)),
            ("outbox_dead_listing", listing("t1", "zendesk", "dead", 100)),
            ("outbox_dead_listing", counting("t1", "dead", None, 10_000)),
            ("outbox_pending_tenant", counting("t1", "pending", None, 10_000)),
            ("outbox_delivered", counting("t1", "delivered", None, 10_000)),
        ):
            plan = " | ".join(
                row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {query.template}", query.args)
            )
            assert f"INDEX {index} " in plan, (query.template, plan)
            assert "SCAN outbox" not in plan, (query.template, plan)
    finally:
        conn.close()
