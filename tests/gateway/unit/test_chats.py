"""ChatService built from its parts: the lifecycle of one chat (open, claim, post,
transfer, close, erase) and the refusals of each step. Concurrency across nodes and the
issue-21 regressions live in tests/gateway/test_chat_service.py."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable

import pytest

from auth.roles import Principal, Role
from gateway.bus import MemoryBus
from gateway.bus.base import BusEvent, chat_topic, tenant_topic
from gateway.chats import ChatError, ChatService
from gateway.protocol import Msg, Profile
from gateway.store import Store
from gateway.store.base import Agent, Tenant
from gateway.tenants import TenantDirectory
from gateway.transcripts import seal_json
from tests.gateway.helpers import FakeClock
from tests.gateway.unit.conftest import TENANT

AgentFactory = Callable[..., Awaitable[Principal]]


@pytest.fixture
def make_agent(store: Store, clock: FakeClock, tenant: Tenant) -> AgentFactory:
    """An agent row of the test tenant (credentials unused here) and its principal."""

    async def make(role: str = "agent", name: str = "Ana") -> Principal:
        agent = Agent(
            id="agt_" + uuid.uuid4().hex,
            tenant_id=TENANT,
            email=f"{uuid.uuid4().hex[:8]}@acme.example",
            display_name=name,
            role=role,
            password_hash="unused",
            totp_confirmed=True,
            created_at=clock(),
        )
        await store.create_agent(agent)
        return Principal(agent_id=agent.id, tenant_id=TENANT, role=Role(role))

    return make


async def _refusal_code(call: Awaitable[object]) -> str:
    with pytest.raises(ChatError) as refused:
        await call
    return refused.value.code


async def test_open_refuses_unknown_tenant_frozen_tenant_and_unknown_queue(
    chats: ChatService, store: Store, tenant: Tenant, tenants: TenantDirectory
) -> None:
    with pytest.raises(ChatError) as unknown:
        await chats.open_chat("nope")
    assert (unknown.value.code, unknown.value.close) == ("unknown_tenant", 4403)
    assert await _refusal_code(chats.open_chat(TENANT, queue="billing")) == "unknown_queue"
    tenant.settings = {"queues": ["billing"]}
    tenant.frozen = True
    await store.update_tenant(tenant)
    tenants.invalidate(TENANT)
    assert await _refusal_code(chats.open_chat(TENANT, queue="billing")) == "tenant_frozen"
    tenant.frozen = False
    await store.update_tenant(tenant)
    tenants.invalidate(TENANT)
    opened = await chats.open_chat(TENANT, queue="billing")
    assert opened.chat.queue == "billing"


async def test_enforced_identity_needs_a_token(
    chats: ChatService, store: Store, tenant: Tenant
) -> None:
    tenant.identity_mode = "enforced"
    await store.update_tenant(tenant)
    assert await _refusal_code(chats.open_chat(TENANT)) == "identity_required"
    assert (
        await _refusal_code(chats.open_chat(TENANT, identity_token="x.y.z")) == "identity_invalid"
    )


async def test_opened_chat_is_queued_announced_and_resumable_with_its_token(
    chats: ChatService, bus: MemoryBus, tenant: Tenant
) -> None:
    events: list[BusEvent] = []
    await bus.subscribe(tenant_topic(TENANT), events.append)  # type: ignore[arg-type]
    opened = await chats.open_chat(TENANT)
    assert opened.chat.state == "queued" and opened.token
    assert [e.kind for e in events] == ["queue_changed"]
    resumed = await chats.resume_chat(TENANT, opened.chat.id, opened.token, 0)
    assert resumed.chat.id == opened.chat.id and resumed.token is None
    assert await _refusal_code(chats.resume_chat(TENANT, opened.chat.id, "guess", 0)) == (
        "resume_refused"
    )


async def test_claimed_chat_carries_messages_both_ways_in_order(
    chats: ChatService, bus: MemoryBus, make_agent: AgentFactory
) -> None:
    agent = await make_agent()
    opened = await chats.open_chat(TENANT)
    chat_id = opened.chat.id
    published: list[BusEvent] = []
    await bus.subscribe(chat_topic(chat_id), published.append)  # type: ignore[arg-type]
    assert await _refusal_code(chats.post_agent_message(agent, chat_id, "a0", "hi")) == (
        "not_assigned"
    )
    claimed = await chats.accept(agent, chat_id)
    assert (claimed.state, claimed.assigned_agent_id) == ("active", agent.agent_id)
    first = await chats.post_customer_message(TENANT, chat_id, "c1", "my order is late")
    second = await chats.post_agent_message(agent, chat_id, "a1", "let me check")
    assert first.ack is not None and second.ack is not None
    assert first.ack.seq < second.ack.seq
    history = await chats.messages(chat_id, 0)
    texts = [(m.sender, m.text) for m in history if m.sender != "system"]
    assert texts == [("customer", "my order is late"), ("agent", "let me check")]
    relayed = [e.frame.text for e in published if isinstance(e.frame, Msg)]
    assert "my order is late" in relayed and "let me check" in relayed


async def test_a_claimed_chat_is_taken_for_other_agents(
    chats: ChatService, make_agent: AgentFactory
) -> None:
    ana, bob = await make_agent(name="Ana"), await make_agent(name="Bob")
    opened = await chats.open_chat(TENANT)
    await chats.accept(ana, opened.chat.id)
    assert await _refusal_code(chats.accept(bob, opened.chat.id)) == "already_taken"
    again = await chats.accept(ana, opened.chat.id)  # accepting one's own chat is harmless
    assert again.assigned_agent_id == ana.agent_id


async def test_transfer_moves_the_chat_and_the_right_to_write(
    chats: ChatService, make_agent: AgentFactory
) -> None:
    ana, bob = await make_agent(name="Ana"), await make_agent(name="Bob")
    opened = await chats.open_chat(TENANT)
    await chats.accept(ana, opened.chat.id)
    moved = await chats.transfer(ana, opened.chat.id, to_agent=bob.agent_id, to_queue=None)
    assert moved.assigned_agent_id == bob.agent_id
    assert await _refusal_code(chats.post_agent_message(ana, opened.chat.id, "a1", "x")) == (
        "not_assigned"
    )
    outcome = await chats.post_agent_message(bob, opened.chat.id, "b1", "Bob here")
    assert outcome.ack is not None
    assert await chats.agent_name(bob.agent_id) == "Bob"


async def test_queue_snapshot_shows_queued_chats_and_the_agents_own(
    chats: ChatService, make_agent: AgentFactory
) -> None:
    ana, bob = await make_agent(name="Ana"), await make_agent(name="Bob")
    waiting = await chats.open_chat(TENANT)
    taken = await chats.open_chat(TENANT)
    await chats.accept(ana, taken.chat.id)
    for_ana = await chats.queue_snapshot(ana)
    assert [e.chat for e in for_ana.chats] == [waiting.chat.id]
    assert [(e.chat, e.agent) for e in for_ana.mine] == [(taken.chat.id, "Ana")]
    for_bob = await chats.queue_snapshot(bob)
    assert [e.chat for e in for_bob.chats] == [waiting.chat.id]  # not Ana's active chat
    assert for_bob.mine == []


async def test_queue_lists_the_longest_waiting_per_queue_counts_the_rest_and_all_own_chats(
    chats: ChatService,
    store: Store,
    tenant: Tenant,
    tenants: TenantDirectory,
    clock: FakeClock,
    make_agent: AgentFactory,
) -> None:
    """Before, the queue was the first 500 open chats of the tenant: with more, the newest
    customers and an agent's own chats opened after them were silently left out."""
    tenant.settings = {"queues": ["billing"]}
    await store.update_tenant(tenant)
    tenants.invalidate(TENANT)
    ana = await make_agent(name="Ana")
    biller = dataclasses.replace(await make_agent(name="Bo"), queues=frozenset({"billing"}))
    waiting = []
    for _ in range(5):
        waiting.append((await chats.open_chat(TENANT)).chat.id)
        clock.advance(1)
    billing = (await chats.open_chat(TENANT, queue="billing")).chat.id
    await chats.accept(ana, waiting[-1])  # the newest: beyond what the queue lists
    chats.queue_listed = 2

    for_ana = await chats.queue_snapshot(ana)
    assert [e.chat for e in for_ana.chats] == [*waiting[:2], billing]
    assert [e.chat for e in for_ana.mine] == [waiting[-1]]
    assert for_ana.waiting_unlisted == 2  # waiting[2] and waiting[3]
    for_biller = await chats.queue_snapshot(biller)
    assert ([e.chat for e in for_biller.chats], for_biller.waiting_unlisted) == ([billing], 0)

    await chats.accept(ana, waiting[0])  # the next in line moves up into the list
    for_ana = await chats.queue_snapshot(ana)
    assert [e.chat for e in for_ana.chats] == [waiting[1], waiting[2], billing]
    assert {e.chat for e in for_ana.mine} == {waiting[0], waiting[-1]}
    assert for_ana.waiting_unlisted == 1


async def test_a_queue_read_reuses_unchanged_entries_and_remakes_changed_ones(
    chats: ChatService, store: Store, make_agent: AgentFactory
) -> None:
    ana = await make_agent(name="Ana")
    first = await chats.open_chat(TENANT, profile=Profile(name="Carl", topic="refund"))
    second = await chats.open_chat(TENANT, profile=Profile(name="Dora"))
    before = {e.chat: e for e in (await chats.queue_snapshot(ana)).chats}
    await chats.accept(ana, second.chat.id)

    after = await chats.queue_snapshot(ana)
    assert after.chats[0] is before[first.chat.id]  # unchanged: no new entry, no decryption
    assert [(e.name, e.state, e.agent) for e in after.mine] == [("Dora", "active", "Ana")]

    chat = await store.get_chat(first.chat.id)
    key = await chats.keys.get(first.chat.id)
    assert chat is not None and key is not None
    chat.profile_sealed = seal_json(key, chat.id, "profile", {"name": "Carla"})
    await store.update_chat(chat)
    again = await chats.queue_snapshot(ana)
    assert [(e.name, e.topic) for e in again.chats] == [("Carla", None)]


async def test_closed_chat_refuses_messages_and_keeps_the_rating(
    chats: ChatService, make_agent: AgentFactory
) -> None:
    agent = await make_agent()
    opened = await chats.open_chat(TENANT)
    await chats.accept(agent, opened.chat.id)
    closed = await chats.close(opened.chat.id, TENANT, by="customer", csat=4)
    assert (closed.state, closed.csat) == ("closed", 4)
    assert await _refusal_code(chats.post_customer_message(TENANT, opened.chat.id, "c", "hi")) == (
        "chat_closed"
    )
    assert await _refusal_code(chats.post_agent_message(agent, opened.chat.id, "a", "hi")) == (
        "not_assigned"
    )


async def test_erase_shreds_the_chat_for_everyone(
    chats: ChatService, make_agent: AgentFactory
) -> None:
    agent = await make_agent()
    opened = await chats.open_chat(TENANT)
    assert opened.token is not None
    await chats.post_customer_message(TENANT, opened.chat.id, "c1", "card 4111")
    assert await chats.erase(opened.chat.id, actor="admin", tenant_id=TENANT)
    assert not await chats.erase(opened.chat.id, actor="admin", tenant_id="other")
    assert await chats.messages(opened.chat.id, 0) == []
    assert await _refusal_code(chats.resume_chat(TENANT, opened.chat.id, opened.token, 0)) == (
        "resume_refused"
    )
    assert await _refusal_code(chats.accept(agent, opened.chat.id)) == "not_found"
