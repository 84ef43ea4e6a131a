"""Queue scoping (issue 14.3) over real HTTP and websockets, on SQLite and PostgreSQL.

An admin scopes an agent to some of the tenant's queues: that agent's queue shows only
those queues' waiting chats (not even the customer's name or topic of the others), and
accepting or watching a chat of another queue is refused (``not_your_queue``); an
unscoped colleague still sees everything. Scopes name only configured queues, are audited,
and clearing them gives the agent every queue again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from gateway.protocol import QueueSnapshot
from gateway.sdk.client import AgentClient, CustomerClient, ServerError
from gateway.services import Services
from tests.gateway.helpers import bearer, login, make_agent, start_gateway


@pytest.fixture
async def gw(service_store_url: str, tmp_path: Path):
    runner, base, svc = await start_gateway(tmp_path, store={"url": service_store_url})
    async with aiohttp.ClientSession() as http:
        yield http, base, svc
    await runner.cleanup()


async def _token(http, base: str, svc: Services, email: str, role: str) -> tuple[str, str]:
    agent, secret, password = await make_agent(svc, email, role=role)
    return agent.id, await login(http, base, email, password, secret, svc.clock())


async def _patch(http, base, token, path, body) -> tuple[int, dict]:
    async with http.patch(f"{base}{path}", headers=bearer(token), json=body) as r:
        return r.status, await r.json()


async def _queue_until(agent: AgentClient, want: set[str]) -> QueueSnapshot:
    """The first snapshot listing exactly ``want`` as visible chats."""
    for _ in range(100):
        snap = await agent.queue()
        if {e.chat for e in snap.chats} == want:
            return snap
        await asyncio.sleep(0.05)
    raise AssertionError(f"queue never showed {want}: {[e.chat for e in snap.chats]}")


async def test_a_scoped_agent_sees_and_takes_only_their_queues(gw) -> None:
    http, base, svc = gw
    key = svc.identity.verify_key_b64
    _, admin = await _token(http, base, svc, "boss@example.com", "admin")
    status, _ = await _patch(http, base, admin, "/api/tenant", {"queues": ["billing", "sales"]})
    assert status == 200
    svc.tenants.invalidate("demo")
    scoped_id, scoped_token = await _token(http, base, svc, "bea@example.com", "agent")
    _, free_token = await _token(http, base, svc, "fay@example.com", "agent")

    status, body = await _patch(
        http, base, admin, f"/api/agents/{scoped_id}", {"queues": ["nowhere"]}
    )
    assert (status, body["error"]["code"], body["error"]["field"]) == (
        400,
        "unknown_queue",
        "queues",
    )
    status, body = await _patch(
        http, base, admin, f"/api/agents/{scoped_id}", {"queues": ["billing", "billing"]}
    )
    assert status == 200 and body["agent"]["queues"] == ["billing"]
    changed = await svc.store.query_audit(tenant_id="demo", action="agent.queues_changed")
    assert [(e.target, e.details["queues"]) for e in changed] == [(scoped_id, ["billing"])]

    customers = []
    chats = {}
    for queue in ("billing", "sales"):
        customer = CustomerClient(base, "demo", origin=base, gateway_key=key)
        await customer.connect()
        welcome = await customer.open(queue=queue, profile={"name": f"Customer {queue}"})
        chats[queue] = welcome.chat
        customers.append(customer)
    scoped = AgentClient(base, token=scoped_token, gateway_key=key)
    free = AgentClient(base, token=free_token, gateway_key=key)
    await scoped.connect()
    await free.connect()
    try:
        snap = await _queue_until(scoped, {chats["billing"]})
        assert all(e.name != "Customer sales" for e in snap.chats)
        await _queue_until(free, {chats["billing"], chats["sales"]})

        with pytest.raises(ServerError) as refused:
            await scoped.accept(chats["sales"])
        assert refused.value.code == "not_your_queue"
        chat = await svc.store.get_chat(chats["sales"])
        assert chat is not None and chat.state == "queued"  # still waiting for someone else
        await scoped.accept(chats["billing"])
        assert (await svc.store.get_chat(chats["billing"])).assigned_agent_id == scoped_id

        # Cleared scope: every queue again (a new console reads the agent afresh).
        status, body = await _patch(http, base, admin, f"/api/agents/{scoped_id}", {"queues": []})
        assert status == 200 and body["agent"]["queues"] == []
        await scoped.aclose()
        scoped = AgentClient(base, token=scoped_token, gateway_key=key)
        await scoped.connect()
        await _queue_until(scoped, {chats["sales"]})
        await scoped.accept(chats["sales"])
    finally:
        for client in (scoped, free, *customers):
            await client.aclose()


async def test_a_scoped_supervisor_cannot_watch_other_queues(gw) -> None:
    http, base, svc = gw
    key = svc.identity.verify_key_b64
    _, admin = await _token(http, base, svc, "boss@example.com", "admin")
    await _patch(http, base, admin, "/api/tenant", {"queues": ["billing", "sales"]})
    svc.tenants.invalidate("demo")
    sup_id, sup_token = await _token(http, base, svc, "sue@example.com", "supervisor")
    await _patch(http, base, admin, f"/api/agents/{sup_id}", {"queues": ["billing"]})
    customer = CustomerClient(base, "demo", origin=base, gateway_key=key)
    await customer.connect()
    welcome = await customer.open(queue="sales")
    supervisor = AgentClient(base, token=sup_token, gateway_key=key)
    await supervisor.connect()
    try:
        with pytest.raises(ServerError) as refused:
            await supervisor.watch(welcome.chat)
        assert refused.value.code == "not_your_queue"
        opened = await svc.store.query_audit(tenant_id="demo", action="transcript.opened")
        assert opened == []  # refused before anything was read
    finally:
        await supervisor.aclose()
        await customer.aclose()
