from __future__ import annotations

from collections.abc import AsyncIterator

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
    return Clock()


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
