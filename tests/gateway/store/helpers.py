"""Record builders shared by the store tests."""

from __future__ import annotations

from gateway.store import Agent, Chat, NewMessage, OutboxEvent, Store, Tenant


def tenant(tid: str = "t1", **kw) -> Tenant:
    name = kw.pop("name", f"Tenant {tid}")
    return Tenant(id=tid, name=name, created_at=kw.pop("created_at", 1.0), **kw)


def agent(aid: str = "a1", tenant_id: str = "t1", **kw) -> Agent:
    return Agent(
        id=aid,
        tenant_id=tenant_id,
        email=kw.pop("email", f"{aid}@example.com"),
        display_name=kw.pop("display_name", aid.upper()),
        role=kw.pop("role", "agent"),
        password_hash=kw.pop("password_hash", "$argon2id$v=19$stub"),
        created_at=kw.pop("created_at", 10.0),
        **kw,
    )


def chat(cid: str = "c1", tenant_id: str = "t1", **kw) -> Chat:
    return Chat(
        id=cid,
        tenant_id=tenant_id,
        state=kw.pop("state", "queued"),
        created_at=kw.pop("created_at", 100.0),
        **kw,
    )


def msg(msg_id: str, chat_id: str = "c1", **kw) -> NewMessage:
    return NewMessage(
        chat_id=chat_id,
        msg_id=msg_id,
        sender=kw.pop("sender", "customer"),
        ts=kw.pop("ts", 200.0),
        body_sealed=kw.pop("body_sealed", b"sealed:" + msg_id.encode()),
        **kw,
    )


def event(key: str, chat_id: str | None = "c1", plugin: str = "webhook", **kw) -> OutboxEvent:
    return OutboxEvent(
        tenant_id=kw.pop("tenant_id", "t1"),
        plugin=plugin,
        event_type=kw.pop("event_type", "message"),
        idempotency_key=key,
        payload_sealed=kw.pop("payload_sealed", b"payload:" + key.encode()),
        chat_id=chat_id,
        created_at=kw.pop("created_at", 50.0),
        **kw,
    )


async def setup_chat(store: Store, cid: str = "c1", *, tenant_id: str = "t1", **kw) -> Chat:
    if await store.get_tenant(tenant_id) is None:
        await store.create_tenant(tenant(tenant_id))
    c = chat(cid, tenant_id, **kw)
    await store.create_chat(c, b"wrapped-key-" + cid.encode())
    return c
