from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.plugins.fakes import (
    Clock,
    FreshdeskServer,
    MemoryOutbox,
    WebhookReceiver,
    ZendeskServer,
)


@pytest.fixture
def clock() -> Clock:
    # An hour after the events' timestamps: rows are due at their created_at (the
    # events' occurred_at here), as in the real stores.
    return Clock(1_700_000_000.0 + 3600)


@pytest.fixture
def store() -> MemoryOutbox:
    return MemoryOutbox()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def zendesk() -> AsyncIterator[ZendeskServer]:
    server = await ZendeskServer().start()
    yield server
    await server.close()


@pytest.fixture
async def freshdesk() -> AsyncIterator[FreshdeskServer]:
    server = await FreshdeskServer().start()
    yield server
    await server.close()


@pytest.fixture
async def receiver(clock: Clock) -> AsyncIterator[WebhookReceiver]:
    server = await WebhookReceiver(clock=clock).start()
    yield server
    await server.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
async def real_store(request: pytest.FixtureRequest, tmp_path) -> AsyncIterator[Any]:
    """A real gateway store (SQLite file, then a fresh PostgreSQL database) with a tenant
    ``acme`` and chats ``chat-1``..``chat-3``: the dispatcher tests run on the same SQL the
    gateway runs, not only on the in-memory kit."""
    from gateway.store import open_store
    from gateway.store.base import Chat, Tenant

    url = (
        f"sqlite:///{tmp_path}/cd.db"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_dsn")
    )
    store = open_store(url, tmp_path)
    await store.open()
    await store.create_tenant(Tenant(id="acme", name="Acme"))
    for n in (1, 2, 3):
        await store.create_chat(
            Chat(id=f"chat-{n}", tenant_id="acme", state="active", created_at=1_700_000_000.0),
            wrapped_key=b"k" * 32,
        )
    try:
        yield store
    finally:
        await store.close()
