"""``Store.kv_live_keys``: which of many keys hold a live value, in a few round trips."""

from __future__ import annotations

from gateway.store import Store
from gateway.store.sqlstore import KV_KEYS_PER_QUERY
from tests.gateway.store.helpers import setup_chat


async def test_live_keys_are_those_kv_get_finds(store: Store) -> None:
    await setup_chat(store)
    await setup_chat(store, "c2", tenant_id="t2")
    count = KV_KEYS_PER_QUERY * 2 + 7  # several queries' worth
    keys = [f"handled:chat{i}" for i in range(count)]
    for i, key in enumerate(keys):
        if i % 3 == 0:
            await store.kv_put("t1", "_inbound", key, b"x", now=100.0)
        elif i % 3 == 1:  # expired by the time of the question
            await store.kv_put("t1", "_inbound", key, b"x", now=100.0, expires_at=150.0)
    await store.kv_put("t1", "other", keys[2], b"x", now=100.0)  # another namespace
    await store.kv_put("t2", "_inbound", keys[2], b"x", now=100.0)  # another tenant

    live = await store.kv_live_keys("t1", "_inbound", keys, 200.0)

    assert live == {key for i, key in enumerate(keys) if i % 3 == 0}
    for key in keys[:30]:
        assert (key in live) == (await store.kv_get("t1", "_inbound", key, 200.0) is not None)
    assert await store.kv_live_keys("t1", "_inbound", [], 200.0) == set()
