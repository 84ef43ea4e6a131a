"""Shared set-up of the socket-level end-to-end tests: a gateway on a real local port in
this process, and the steps nearly every test repeats (an agent created, logged in with a
real TOTP code and connected; a customer client with the gateway's key; a tenant setting
changed and the tenant cache invalidated; waiting for a chat in an agent's queue)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.protocol import ChatEvent, QueueSnapshot, Welcome
from gateway.sdk.client import AgentClient, CustomerClient
from gateway.services import Services
from tests.gateway.helpers import FakeClock, login, make_agent, start_gateway


@dataclass
class SocketGateway:
    """A running gateway (``base`` URL, its ``svc``) and the test's data directory.

    With a ``clock`` the gateway runs on it (TOTP codes are computed at ``clock.now``);
    without, on the wall clock. ``tokens``/``ids`` keep each logged-in agent's session
    token and agent id by e-mail."""

    base: str
    svc: Services
    tmp: Path
    clock: FakeClock | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    def customer(self, tenant: str = "demo", **kw: Any) -> CustomerClient:
        """A customer client of ``tenant`` (not yet connected), trusting this gateway."""
        return CustomerClient(
            self.base, tenant, origin=self.base, gateway_key=self.svc.identity.verify_key_b64, **kw
        )

    async def login(
        self, email: str, role: str = "agent", tenant: str = "demo", name: str | None = None
    ) -> str:
        """Create the agent and log in with password + TOTP over HTTP; returns its id."""
        agent, secret, password = await make_agent(self.svc, email, role=role, tenant=tenant)
        if name:
            agent.display_name = name
            await self.svc.store.update_agent(agent)
        now = self.clock.now if self.clock is not None else time.time()
        async with aiohttp.ClientSession() as http:
            self.tokens[email] = await login(http, self.base, email, password, secret, now)
        self.ids[email] = agent.id
        return agent.id

    async def connect(self, email: str, **kw: Any) -> AgentClient:
        """A console socket for an agent logged in with :meth:`login` (``kw`` as
        ``AgentClient``'s, e.g. ``echo=False``)."""
        client = AgentClient(
            self.base, token=self.tokens[email], gateway_key=self.svc.identity.verify_key_b64, **kw
        )
        await client.connect()
        return client

    async def agent(self, email: str, role: str = "agent", tenant: str = "demo") -> AgentClient:
        """:meth:`login` then :meth:`connect`."""
        await self.login(email, role=role, tenant=tenant)
        return await self.connect(email)

    async def accepted_chat(
        self, agent: AgentClient, **open_kw: Any
    ) -> tuple[CustomerClient, Welcome]:
        """A customer connects and opens a chat (``open_kw`` as ``CustomerClient.open``);
        ``agent`` waits until it is queued and accepts it."""
        customer = self.customer()
        await customer.connect()
        welcome = await customer.open(**open_kw)
        await queue_with(agent, welcome.chat)
        await agent.accept(welcome.chat)
        return customer, welcome

    async def update_tenant_settings(self, tenant_id: str = "demo", **settings: Any) -> None:
        """Merge ``settings`` into the tenant's and make every lookup see them at once."""
        tenant = await self.svc.store.get_tenant(tenant_id)
        assert tenant is not None
        tenant.settings = {**tenant.settings, **settings}
        await self.svc.store.update_tenant(tenant)
        self.svc.tenants.invalidate(tenant_id)


@contextlib.asynccontextmanager
async def running_gateway(
    tmp_path: Path, clock: FakeClock | None = None, **config_overrides: Any
) -> AsyncIterator[SocketGateway]:
    """:func:`tests.gateway.helpers.start_gateway`, cleaned up on exit."""
    if clock is not None:
        config_overrides["clock"] = clock
    runner, base, svc = await start_gateway(tmp_path, **config_overrides)
    try:
        yield SocketGateway(base, svc, tmp_path, clock)
    finally:
        await runner.cleanup()


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[SocketGateway]:
    """A gateway with the default configuration on the wall clock (a test module that
    needs another configuration defines its own ``gw``)."""
    async with running_gateway(tmp_path) as gateway:
        yield gateway


async def queue_with(agent: AgentClient, chat: str, within: float = 5.0) -> QueueSnapshot:
    """The first queue snapshot that lists ``chat`` as waiting (snapshots are coalesced)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        snap = await agent.queue()
        if any(e.chat == chat for e in snap.chats):
            return snap
        await asyncio.sleep(0.05)
    raise AssertionError(f"chat {chat} never appeared in the queue")


async def accepted_chat(
    gw: SocketGateway, agent: AgentClient, **customer_kw: Any
) -> tuple[CustomerClient, Welcome]:
    """A connected customer (``customer_kw`` as ``CustomerClient``'s) whose new chat
    ``agent`` has accepted; returns once the customer has seen the agent join."""
    customer = gw.customer(**customer_kw)
    await customer.connect()
    welcome = await customer.open()
    await queue_with(agent, welcome.chat)
    await agent.accept(welcome.chat)
    await customer.wait_for(lambda f: isinstance(f, ChatEvent) and f.event == "joined")
    return customer, welcome
