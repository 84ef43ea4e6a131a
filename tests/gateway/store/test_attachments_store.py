"""Attachment blobs in the store (migration 0021), on SQLite and PostgreSQL: stored once
per (chat, file), read back byte for byte, deleted alone or with the erased chat."""

from __future__ import annotations

from tests.gateway.store.helpers import chat, tenant


async def test_blobs_are_kept_once_and_go_with_the_chat(store) -> None:
    await store.create_tenant(tenant("t1"))
    await store.create_chat(chat("c1"), b"wrapped")
    await store.create_chat(chat("c2"), b"wrapped")
    blob = bytes(range(256)) * 40
    await store.put_attachment("c1", "fa", blob, 10_000, 1.0)
    await store.put_attachment("c1", "fa", b"a re-sent upload keeps the first", 7, 2.0)
    await store.put_attachment("c1", "fb", b"second", 6, 3.0)
    await store.put_attachment("c2", "fa", b"other chat, same file id", 24, 4.0)
    assert await store.get_attachment("c1", "fa") == blob
    assert await store.attachment_size("c1", "fa") == 10_000  # the first put's
    assert await store.attachment_size("c1", "missing") is None
    assert await store.get_attachment("c2", "fa") == b"other chat, same file id"
    assert await store.get_attachment("c1", "missing") is None

    await store.delete_attachment("c1", "fb")
    assert await store.get_attachment("c1", "fb") is None
    assert await store.erase_chat("c1") is True
    assert await store.get_attachment("c1", "fa") is None
    assert await store.get_attachment("c2", "fa") is not None  # another chat's file stays
