"""Listing and replacing wrapped chat data keys (the key-rotation job's store API)."""

from __future__ import annotations

from gateway.store import Store
from tests.gateway.store.helpers import setup_chat


async def test_list_chat_keys_pages_in_id_order(store: Store) -> None:
    for cid in ("c3", "c1", "c5", "c2", "c4"):
        await setup_chat(store, cid)
    assert await store.list_chat_keys("", 0) == []
    first = await store.list_chat_keys("", 2)
    assert first == [("c1", b"wrapped-key-c1"), ("c2", b"wrapped-key-c2")]
    second = await store.list_chat_keys(first[-1][0], 2)
    assert [cid for cid, _ in second] == ["c3", "c4"]
    third = await store.list_chat_keys(second[-1][0], 2)
    assert third == [("c5", b"wrapped-key-c5")]
    assert await store.list_chat_keys("c5", 2) == []
    assert all(isinstance(w, bytes) for _, w in first + second + third)


async def test_list_chat_keys_empty_store(store: Store) -> None:
    assert await store.list_chat_keys("", 100) == []


async def test_replace_chat_key(store: Store) -> None:
    await setup_chat(store, "c1")
    await setup_chat(store, "c2")
    assert await store.replace_chat_key("c1", b"\x00rewrapped\xff") is True
    assert await store.get_chat_key("c1") == b"\x00rewrapped\xff"
    assert await store.get_chat_key("c2") == b"wrapped-key-c2"
    assert await store.replace_chat_key("missing", b"x") is False
    assert await store.get_chat_key("missing") is None


async def test_replace_never_resurrects_an_erased_key(store: Store) -> None:
    await setup_chat(store, "c1")
    assert await store.erase_chat("c1") is True
    assert await store.replace_chat_key("c1", b"rewrapped") is False
    assert await store.get_chat_key("c1") is None
    assert await store.list_chat_keys("", 10) == []
