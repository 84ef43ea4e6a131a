"""``Store.queue_append``: appends queued one after the other keep their order per chat."""

from __future__ import annotations

import asyncio

import pytest

from gateway.store import NotFound, Store
from tests.gateway.store.helpers import event, msg, setup_chat


async def test_queued_appends_get_seqs_in_the_order_they_were_queued(store: Store) -> None:
    for cid in ("c1", "c2", "c3"):
        await setup_chat(store, cid)
    pending = []
    for i in range(30):
        cid = f"c{1 + i % 3}"
        pending.append((cid, f"m{i}", store.queue_append(msg(f"m{i}", chat_id=cid))))
        if i % 4 == 0:
            await asyncio.sleep(0)  # let batches leave between the queueing calls
    results = [await result for _, _, result in pending]
    for cid in ("c1", "c2", "c3"):
        queued = [(mid, r) for (c, mid, _), r in zip(pending, results, strict=True) if c == cid]
        assert [r.message.seq for _, r in queued] == list(range(1, 11))
        assert [r.message.msg_id for _, r in queued] == [mid for mid, _ in queued]
        stored = await store.messages_after(cid, 0)
        assert [m.msg_id for m in stored] == [mid for mid, _ in queued]


async def test_a_queued_append_raises_what_append_message_raises(store: Store) -> None:
    await setup_chat(store)
    appended = store.queue_append(msg("m1"), [event("e1")])
    missing = store.queue_append(msg("m2", chat_id="nope"))
    assert (await appended).message.seq == 1
    with pytest.raises(NotFound):
        await missing
    resent = await store.queue_append(msg("m1"))
    assert resent.duplicate and resent.message.seq == 1
