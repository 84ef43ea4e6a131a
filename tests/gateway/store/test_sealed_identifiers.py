"""Issue 11, finding 10: identifiers a customer chooses never sit in the database in
clear — message ids are sealed (deterministically: a resend is still de-duplicated),
outbox idempotency keys carry only a keyed hash — on SQLite and PostgreSQL alike."""

from __future__ import annotations

from pathlib import Path

from gateway.protocol import Ack
from gateway.sdk.client import CustomerClient
from gateway.store import sqlite_path
from gateway.transcripts import open_msg_id, seal_msg_id
from tests.gateway.helpers import start_gateway
from tests.gateway.store.conftest import RawSQL

SECRET_ID = "cust-4111111111111111-acct-991"


async def test_client_ids_are_sealed_and_still_deduplicated(
    store_url: str, raw: RawSQL, tmp_path: Path
) -> None:
    runner, base, svc = await start_gateway(tmp_path, store={"url": store_url})
    try:
        # a plugin that wants chat.message, so outbox rows (with idempotency keys) exist;
        # its target is a closed loopback port: nothing leaves the machine
        await svc.plugins.configure(
            "demo",
            "webhook",
            {"url": "http://127.0.0.1:9/hook", "secret": "s" * 32},
            allow_private=True,
        )
        client = CustomerClient(base, "demo", origin=base, gateway_key=svc.identity.verify_key_b64)
        await client.connect()
        await client.open()
        first = await client.send_text("hello", msg_id=SECRET_ID)
        again = await client.send_text("hello", msg_id=SECRET_ID)  # a resend
        other = await client.send_text("second", msg_id="m-2")
        assert isinstance(first, Ack) and isinstance(again, Ack) and isinstance(other, Ack)
        assert again.seq == first.seq and other.seq == first.seq + 1
        chat_id = client.chat
        assert chat_id is not None
        # replays give the client its own id back
        replay = await svc.chats.messages(chat_id, 0)
        assert [(m.id, m.text) for m in replay] == [(SECRET_ID, "hello"), ("m-2", "second")]
        await client.aclose()

        stored_ids = [r[0] for r in await raw.fetch("SELECT msg_id FROM messages")]
        assert len(stored_ids) == 2
        assert all(i.startswith("s1:") and "4111" not in i for i in stored_ids), stored_ids
        keys = [r[0] for r in await raw.fetch("SELECT idempotency_key FROM outbox")]
        assert any(k.startswith("chat.message:") for k in keys), keys
        assert not [k for k in keys if SECRET_ID in k or "m-2" in k], keys
        if store_url.startswith("sqlite:"):
            db = Path(sqlite_path(store_url, tmp_path))
            for path in (db, db.with_name(db.name + "-wal")):
                if path.exists():
                    assert SECRET_ID.encode() not in path.read_bytes(), path
    finally:
        await runner.cleanup()


def test_sealed_id_round_trip_and_legacy_ids() -> None:
    key, other = bytes(32), bytes([1]) * 32
    sealed = seal_msg_id(key, "c1", SECRET_ID)
    assert sealed == seal_msg_id(key, "c1", SECRET_ID)  # deterministic: lookups work
    assert sealed != seal_msg_id(key, "c2", SECRET_ID)  # bound to its chat
    assert sealed != seal_msg_id(other, "c1", SECRET_ID)
    assert open_msg_id(key, "c1", sealed) == SECRET_ID
    assert open_msg_id(key, "c2", sealed) == sealed  # wrong chat: not opened
    assert open_msg_id(key, "c1", "legacy-clear-id") == "legacy-clear-id"
    assert open_msg_id(key, "c1", "s1:not-really-sealed") == "s1:not-really-sealed"
