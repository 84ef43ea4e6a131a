"""End-to-end delivery through the real SQLite store: a helpdesk outage during live
chats, a gateway restart in between, every event delivered exactly once per idempotency
key and in order per chat."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from pathlib import Path

from gateway.store import open_store
from gateway.store.base import Chat, NewMessage, Tenant
from plugins.api import MessagePosted
from plugins.outbox import BreakerPolicy, Dispatcher
from plugins.webhook import WebhookPlugin
from tests.plugins.fakes import decode, eventually, outbox_event

T0 = 1_700_000_000.0
CHATS = [f"chat-{i}" for i in range(4)]


async def open_sqlite(path: Path):
    store = open_store(f"sqlite:///{path}", path.parent)
    await store.open()
    return store


async def seed(store) -> None:
    await store.create_tenant(Tenant(id="acme", name="Acme"))
    for chat in CHATS:
        await store.create_chat(
            Chat(id=chat, tenant_id="acme", state="active", created_at=T0), wrapped_key=b"k" * 32
        )


async def post_message(store, chat: str, n: int, when: float) -> str:
    """What the gateway does per message: persist it and its outbox row in one transaction."""
    event = MessagePosted(
        tenant_id="acme",
        chat_id=chat,
        occurred_at=when,
        event_id=uuid.uuid4().hex,
        seq=n,
        sender="customer",
        text=f"masked message {n}",
    )
    row = outbox_event("webhook", event, key=f"{chat}/{n}")
    await store.append_message(
        NewMessage(
            chat_id=chat, msg_id=uuid.uuid4().hex, sender="customer", ts=when, body_sealed=b"sealed"
        ),
        [row],
    )
    return row.idempotency_key


async def _none_pending(store) -> bool:
    return not await store.list_events(state="pending")


def webhook_plugin_for(receiver, http, clock):
    plugin = WebhookPlugin(
        {"url": receiver.url + "/hook"}, {"secret": receiver.secret}, http, clock=clock
    )

    async def plugin_for(tenant_id, name):
        return plugin if name == "webhook" else None

    return plugin_for


async def test_restart_resumes_pending_with_same_idempotency_keys(tmp_path, receiver, http, clock):
    db = tmp_path / "x.db"
    store = await open_sqlite(db)
    await seed(store)
    keys = [await post_message(store, "chat-0", n, clock()) for n in (1, 2, 3)]
    keys.append(await post_message(store, "chat-1", 1, clock()))
    receiver.down = True
    d1 = Dispatcher(
        store,
        decode,
        webhook_plugin_for(receiver, http, clock),
        clock=clock,
        rng=lambda: 1.0,
        base_delay=5,
    )
    results = await d1.run_once()
    assert sorted(r.outcome for r in results) == ["retry", "retry"]  # oldest of each chat
    down_keys = [r.headers["Idempotency-Key"] for r in receiver.requests]
    assert sorted(down_keys) == ["chat-0/1", "chat-1/1"]
    await store.close()  # the gateway stops

    store = await open_sqlite(db)  # ... and starts again on the same file
    receiver.down = False
    clock.advance(6)
    d2 = Dispatcher(
        store,
        decode,
        webhook_plugin_for(receiver, http, clock),
        clock=clock,
        rng=lambda: 1.0,
        base_delay=5,
    )
    while await d2.run_once():
        pass
    assert sorted(receiver.accepted) == sorted(keys)
    ok = [r.headers["Idempotency-Key"] for r in receiver.requests[len(down_keys) :]]
    assert sorted(ok) == sorted(keys)  # each sent once after the restart, same keys
    assert [k for k in receiver.order if k.startswith("chat-0")] == keys[:3]
    assert await store.list_events(state="pending") == []
    delivered = await store.list_events(state="delivered")
    assert {i.idempotency_key for i in delivered} == set(keys)
    await store.close()


async def test_outage_during_live_chats_with_restart(tmp_path, receiver, http):
    """The issue's acceptance test, on real time with short delays."""
    receiver.clock = None  # real clock for signatures
    db = tmp_path / "live.db"
    store = await open_sqlite(db)
    await seed(store)
    sent: dict[str, list[str]] = defaultdict(list)
    counter = defaultdict(int)

    async def chatter(rounds: int) -> None:
        for _ in range(rounds):
            for chat in CHATS:
                counter[chat] += 1
                sent[chat].append(await post_message(store, chat, counter[chat], time.time()))
            await asyncio.sleep(0.01)

    def make(store_):
        return Dispatcher(
            store_,
            decode,
            webhook_plugin_for(receiver, http, time.time),
            base_delay=0.02,
            max_delay=0.1,
            poll_interval=0.01,
            breaker=BreakerPolicy(failure_threshold=3, cooldown=0.05, max_cooldown=0.2),
        )

    d = make(store)
    await d.start()
    await chatter(3)  # helpdesk up
    receiver.down = True  # helpdesk goes down during live chats
    await chatter(5)
    await asyncio.sleep(0.2)
    await d.stop(grace=0.5)  # gateway restart while it is down
    await store.close()

    store = await open_sqlite(db)
    d = make(store)
    await d.start()
    await chatter(3)
    await asyncio.sleep(0.1)
    receiver.down = False  # helpdesk back
    await chatter(2)
    try:
        await eventually(lambda: _none_pending(store), seconds=20)
    finally:
        await d.stop()
        await store.close()

    all_keys = [k for keys in sent.values() for k in keys]
    assert len(all_keys) == 4 * 13
    assert sorted(receiver.accepted) == sorted(all_keys)  # every event arrived
    # Exactly once: every key got exactly one successful request (no duplicate to de-dup).
    assert set(receiver.hits.values()) == {1}
    for chat, keys in sent.items():
        assert [k for k in receiver.order if k.startswith(chat + "/")] == keys, chat
    assert receiver.rejected == 0
    assert any(r.headers.get("Idempotency-Key") for r in receiver.requests)
    assert len(receiver.requests) > len(all_keys)  # there were failed attempts in between


async def test_store_satisfies_outbox_protocol(tmp_path):
    from plugins.outbox import OutboxStore

    store = await open_sqlite(tmp_path / "p.db")
    try:
        for name in OutboxStore.__dict__:
            if not name.startswith("_"):
                assert callable(getattr(store, name)), name
    finally:
        await store.close()
