"""Tenant keyword lists in the store (migration 0003), on SQLite and PostgreSQL."""

from __future__ import annotations

from gateway.store.base import KeywordListRecord
from tests.gateway.store.helpers import tenant


async def test_keyword_lists_round_trip_per_tenant(store) -> None:
    await store.create_tenant(tenant("t1"))
    await store.create_tenant(tenant("t2"))
    rec = KeywordListRecord("t1", "vip", "词\tvip\tblock\n", 1, "d1", 10.0, "agt_1")
    await store.put_keyword_list(rec)
    await store.put_keyword_list(KeywordListRecord("t2", "vip", "x\ty\n", 1, "d2", 11.0))
    assert await store.list_keyword_lists("t1") == [rec]
    replaced = KeywordListRecord("t1", "vip", "a\tb\nc\td\n", 2, "d3", 12.0, "agt_2")
    await store.put_keyword_list(replaced)
    await store.put_keyword_list(KeywordListRecord("t1", "abc", "q\tz\n", 1, "d4", 13.0))
    assert [r.name for r in await store.list_keyword_lists("t1")] == ["abc", "vip"]
    assert (await store.list_keyword_lists("t1"))[1] == replaced
    assert await store.delete_keyword_list("t1", "vip") is True
    assert await store.delete_keyword_list("t1", "vip") is False
    assert [r.name for r in await store.list_keyword_lists("t1")] == ["abc"]
    assert [r.digest for r in await store.list_keyword_lists("t2")] == ["d2"]
