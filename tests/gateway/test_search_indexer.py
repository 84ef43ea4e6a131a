"""The history search index is filled once per chat after it closes
(gateway/search_indexer.py): the masked text of customer and agent lines, found by the
same queries as before, never a damaged row's neighbours lost, and a close on this node
indexes at once."""

from __future__ import annotations

import asyncio

from gateway.search_indexer import SearchIndexer
from gateway.store.base import HistoryQuery
from gateway.store.sql import write
from tests.gateway.test_chat_service import _agent


async def _found(svc, words: str) -> list[str]:
    hashes = svc.chats.search.query("demo", words)
    return [c.id for c in await svc.store.list_history(HistoryQuery("demo", token_hashes=hashes))]


async def _closed_chat(svc, lines: list[str]) -> str:
    principal = await _agent(svc, "agent")
    opened = await svc.chats.open_chat("demo")
    chat = await svc.chats.accept(principal, opened.chat.id)
    for i, line in enumerate(lines):
        await svc.chats.post_customer_message("demo", chat.id, f"m{i}", line, chat)
    await svc.chats.post_agent_message(principal, chat.id, "a0", "Your walrus ships today")
    await svc.chats.close(chat.id, "demo", by="customer")
    return chat.id


async def test_a_closed_chat_is_searchable_by_its_masked_words_only(svc) -> None:
    chat = await _closed_chat(svc, ["parcel card 4111 1111 1111 1111 please", "我要退款"])
    assert await _found(svc, "parcel") == []  # closed, not indexed yet
    assert await svc.chats.search_indexer.run_once() == 1
    assert await svc.chats.search_indexer.run_once() == 0  # nothing left to do
    assert await _found(svc, "parcel") == [chat]
    assert await _found(svc, "退款 walrus") == [chat]  # customer and agent lines
    assert await _found(svc, "4111") == []  # the policy masked it before it was stored


async def test_a_damaged_row_is_skipped_and_the_rest_indexed(svc) -> None:
    chat = await _closed_chat(svc, ["damaged line", "parcel"])
    # fault injection: the first line's sealed body no longer opens (disk damage, a bad
    # restore); it must not keep this chat, or every chat after it, out of the index
    damage = write(
        "UPDATE messages SET body_sealed = ? WHERE chat_id = ? AND seq = 1", b"\x00", chat
    )
    assert await svc.store._query(damage) == 1
    assert await svc.chats.search_indexer.run_once() == 1
    assert await _found(svc, "parcel walrus") == [chat]
    assert await _found(svc, "damaged") == []


async def test_a_close_on_this_node_is_indexed_without_waiting_for_the_interval(svc) -> None:
    indexer = SearchIndexer(svc.store, svc.chats.keys, svc.chats.search, interval=3600)
    svc.chats.search_indexer = indexer
    await indexer.start()
    try:
        await asyncio.sleep(0.05)  # its first round ran and found nothing
        chat = await _closed_chat(svc, ["kicked parcel"])
        for _ in range(100):
            if await _found(svc, "kicked") == [chat]:
                break
            await asyncio.sleep(0.05)
        assert await _found(svc, "kicked") == [chat]
    finally:
        await indexer.stop()
