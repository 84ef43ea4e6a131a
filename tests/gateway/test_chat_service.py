"""ChatService unit tests on the real services (store, in-process bus, keys, plugins),
without HTTP or sockets, on SQLite and PostgreSQL.

Regressions of issue 21: concurrent closes both ran (two "closed" events, two
``chat.closed`` plugin rows), and a message to a chat closed behind the service's back
was stored and acked. Plus the service-level refusals (resume, tenants, erasure,
transfer, takeover audit, frozen tenant).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest

from auth.roles import Principal, Role
from gateway.bus.base import BusEvent, chat_topic
from gateway.chats import ChatError
from gateway.protocol import ChatEvent
from gateway.services import Services
from gateway.store.base import Agent, Chat, Tenant


async def _agent(svc: Services, role: str = "agent", tenant: str = "demo") -> Principal:
    agent = Agent(
        id=uuid.uuid4().hex,
        tenant_id=tenant,
        email=f"{uuid.uuid4().hex[:8]}@example.test",
        display_name=f"{role} {uuid.uuid4().hex[:4]}",
        role=role,
        password_hash="unused",
        totp_confirmed=True,
        created_at=svc.clock(),
    )
    await svc.store.create_agent(agent)
    return Principal(agent_id=agent.id, tenant_id=tenant, role=Role(role))


async def _tenant(svc: Services, tenant_id: str) -> Tenant:
    tenant = Tenant(id=tenant_id, name=tenant_id, allowed_origins=[], created_at=svc.clock())
    await svc.store.create_tenant(tenant)
    return tenant


async def _active_chat(svc: Services, agent: Principal) -> Chat:
    opened = await svc.chats.open_chat("demo")
    return await svc.chats.accept(agent, opened.chat.id)


def _record(events: list[BusEvent]) -> Callable[[BusEvent], None]:
    return events.append


def _closed_events(events: list[BusEvent]) -> list[ChatEvent]:
    return [e.frame for e in events if isinstance(e.frame, ChatEvent) and e.frame.event == "closed"]


async def _plugin_rows(svc: Services, event_type: str, chat_id: str) -> list[str]:
    items = await svc.store.list_events(tenant_id="demo", limit=1000)
    return [i.idempotency_key for i in items if i.event_type == event_type and i.chat_id == chat_id]


async def _enable_webhook(svc: Services) -> None:
    await svc.plugins.configure(
        "demo",
        "webhook",
        {"url": "https://hooks.example.test/cd", "secret": "s" * 32, "events": ["chat.closed"]},
    )


# ---------------------------------------------------------------- close (issue 21.2)


async def test_concurrent_closes_on_two_nodes_close_once(nodes: list[Services]) -> None:
    a, b = nodes
    await _enable_webhook(a)
    agent = await _agent(a)
    chat = await _active_chat(a, agent)
    events: list[BusEvent] = []
    for node in nodes:
        await node.bus.subscribe(chat_topic(chat.id), _record(events))
    results = await asyncio.gather(
        a.chats.close(chat.id, "demo", by="agent", principal=agent, reason="resolved"),
        b.chats.close(chat.id, "demo", by="agent", principal=agent, reason="resolved"),
        a.chats.close(chat.id, "demo", by="customer", csat=5),
        b.chats.close(chat.id, "demo", by="customer"),
    )
    await asyncio.sleep(0)  # in-process bus handlers run synchronously; nothing pending
    assert all(r.state == "closed" for r in results)
    assert len(_closed_events(events)) == 1
    assert len(await _plugin_rows(a, "chat.closed", chat.id)) == 1
    stored = await a.store.get_chat(chat.id)
    assert stored is not None and stored.state == "closed"
    assert stored.close_reason in ("resolved", "customer_left")
    assert stored.csat == 5  # the customer's rating is kept whoever won the close


async def test_closing_a_closed_chat_is_a_no_op_that_still_records_csat(svc: Services) -> None:
    agent = await _agent(svc)
    chat = await _active_chat(svc, agent)
    first = await svc.chats.close(chat.id, "demo", by="agent", principal=agent, reason="spam")
    events: list[BusEvent] = []
    await svc.bus.subscribe(chat_topic(chat.id), _record(events))
    again = await svc.chats.close(chat.id, "demo", by="customer", csat=2)
    assert _closed_events(events) == []
    assert again.close_reason == "spam" and again.closed_at == first.closed_at
    stored = await svc.store.get_chat(chat.id)
    assert stored is not None and stored.csat == 2


async def test_store_close_chat_is_compare_and_set(svc: Services) -> None:
    opened = await svc.chats.open_chat("demo")
    won = await asyncio.gather(
        *(svc.store.close_chat(opened.chat.id, closed_at=1.0, reason=f"r{i}") for i in range(5))
    )
    winners = [c for c in won if c is not None]
    assert len(winners) == 1 and winners[0].state == "closed"
    assert await svc.store.close_chat("no-such-chat", closed_at=1.0, reason="x") is None
    await svc.chats.erase(opened.chat.id, actor="test")
    assert await svc.store.close_chat(opened.chat.id, closed_at=2.0, reason="x") is None


# ---------------------------------------------------------------- post (issue 21.3)


async def test_post_with_a_stale_open_view_of_a_closed_chat_is_refused(
    nodes: list[Services],
) -> None:
    a, b = nodes
    opened = await a.chats.open_chat("demo")
    view = opened.chat  # what node A's socket believes: queued, open
    stored = await a.chats.post_customer_message("demo", view.id, "m1", "hello", view)
    assert stored.ack is not None and stored.ack.seq == 1
    await b.chats.close(view.id, "demo", by="customer")  # closed on the other node
    assert view.state == "queued"  # the bus of node A never told this view
    with pytest.raises(ChatError) as refused:
        await a.chats.post_customer_message("demo", view.id, "m2", "still there?", view)
    assert refused.value.code == "chat_closed"
    assert [m.seq for m in await a.store.messages_after(view.id, 0)] == [1]
    # A re-send of the message stored before the close is still acked with its seq.
    again = await a.chats.post_customer_message("demo", view.id, "m1", "hello", view)
    assert again.duplicate and again.ack is not None and again.ack.seq == 1


async def test_posts_racing_a_close_ack_exactly_what_is_stored(
    nodes: list[Services],
) -> None:
    a, b = nodes
    opened = await a.chats.open_chat("demo")
    view = opened.chat

    async def post(i: int) -> int | None:
        try:
            outcome = await a.chats.post_customer_message("demo", view.id, f"m{i}", "hi", view)
        except ChatError as exc:
            assert exc.code == "chat_closed"
            return None
        assert outcome.ack is not None
        return outcome.ack.seq

    results = await asyncio.gather(
        *(post(i) for i in range(10)),
        b.chats.close(view.id, "demo", by="customer"),
        *(post(i) for i in range(10, 20)),
    )
    acked = {s for s in results[:10] + results[11:] if isinstance(s, int)}
    stored = await a.store.messages_after(view.id, 0)
    assert {m.seq for m in stored} == acked  # every ack is stored, nothing else is
    assert [m.seq for m in stored] == list(range(1, len(stored) + 1))


async def test_store_refuses_appends_to_closed_chats(svc: Services) -> None:
    from gateway.store.base import ChatClosed, NewMessage, NotFound

    opened = await svc.chats.open_chat("demo")
    await svc.store.close_chat(opened.chat.id, closed_at=1.0, reason="resolved")
    new = NewMessage(
        chat_id=opened.chat.id, msg_id="x", sender="customer", ts=1.0, body_sealed=b"sealed"
    )
    with pytest.raises(ChatClosed):
        await svc.store.append_message(new)
    await svc.chats.erase(opened.chat.id, actor="test")
    with pytest.raises(NotFound):
        await svc.store.append_message(new)


async def test_agent_post_to_a_chat_closed_meanwhile_is_refused(svc: Services) -> None:
    agent = await _agent(svc)
    chat = await _active_chat(svc, agent)
    await svc.chats.close(chat.id, "demo", by="customer")
    with pytest.raises(ChatError) as refused:
        await svc.chats.post_agent_message(agent, chat.id, "a1", "hello?")
    assert refused.value.code == "not_assigned"
    assert await svc.store.messages_after(chat.id, 0) == []


async def test_frozen_tenant_refuses_posts(svc: Services) -> None:
    opened = await svc.chats.open_chat("demo")
    tenant = await svc.store.get_tenant("demo")
    assert tenant is not None
    tenant.frozen = True
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate("demo")
    with pytest.raises(ChatError) as refused:
        await svc.chats.post_customer_message("demo", opened.chat.id, "m1", "hi", opened.chat)
    assert refused.value.code == "tenant_frozen"
    assert await svc.store.messages_after(opened.chat.id, 0) == []
    with pytest.raises(ChatError) as no_open:
        await svc.chats.open_chat("demo")
    assert (no_open.value.code, no_open.value.close) == ("tenant_frozen", 4403)


# ---------------------------------------------------------------- refusals (issue 21.7)


async def test_resume_refuses_wrong_token_other_tenant_and_erased_chat(svc: Services) -> None:
    await _tenant(svc, "other")
    opened = await svc.chats.open_chat("demo")
    assert opened.token is not None
    ok = await svc.chats.resume_chat("demo", opened.chat.id, opened.token, 0)
    assert ok.chat.id == opened.chat.id and ok.token is None
    cases = [
        ("demo", opened.chat.id, opened.token[:-1] + ("A" if opened.token[-1] != "A" else "B")),
        ("other", opened.chat.id, opened.token),
        ("demo", "f" * 32, opened.token),
    ]
    for tenant_id, chat_id, token in cases:
        with pytest.raises(ChatError) as refused:
            await svc.chats.resume_chat(tenant_id, chat_id, token, 0)
        assert refused.value.code == "resume_refused", (tenant_id, chat_id)
    await svc.chats.erase(opened.chat.id, actor="test")
    with pytest.raises(ChatError) as erased:
        await svc.chats.resume_chat("demo", opened.chat.id, opened.token, 0)
    assert erased.value.code == "resume_refused"


async def test_other_tenants_chat_is_not_found_for_agents(svc: Services) -> None:
    await _tenant(svc, "other")
    outsider = await _agent(svc, "admin", tenant="other")
    opened = await svc.chats.open_chat("demo")
    for call in (
        svc.chats.accept(outsider, opened.chat.id),
        svc.chats.post_agent_message(outsider, opened.chat.id, "x", "hi"),
        svc.chats.close(opened.chat.id, "other", by="agent", principal=outsider),
        svc.chats.watch(outsider, opened.chat.id, None),
    ):
        with pytest.raises(ChatError) as refused:
            await call
        assert refused.value.code == "not_found"
    stored = await svc.store.get_chat(opened.chat.id)
    assert stored is not None and stored.state == "queued"


async def test_transfer_refusals_unknown_agent_and_bad_transfer(svc: Services) -> None:
    await _tenant(svc, "other")
    agent = await _agent(svc)
    outsider = await _agent(svc, tenant="other")
    chat = await _active_chat(svc, agent)
    for kwargs in (
        {"to_agent": None, "to_queue": None},
        {"to_agent": agent.agent_id, "to_queue": "billing"},
    ):
        with pytest.raises(ChatError) as bad:
            await svc.chats.transfer(agent, chat.id, **kwargs)
        assert bad.value.code == "bad_transfer"
    for target in ("no-such-agent", outsider.agent_id):
        with pytest.raises(ChatError) as unknown:
            await svc.chats.transfer(agent, chat.id, to_agent=target, to_queue=None)
        assert unknown.value.code == "unknown_agent"
    stored = await svc.store.get_chat(chat.id)
    assert stored is not None and stored.assigned_agent_id == agent.agent_id


async def test_takeover_needs_the_permission_and_is_audited(svc: Services) -> None:
    first = await _agent(svc)
    peer = await _agent(svc)
    supervisor = await _agent(svc, "supervisor")
    chat = await _active_chat(svc, first)
    with pytest.raises(ChatError) as taken:
        await svc.chats.accept(peer, chat.id)
    assert taken.value.code == "already_taken"  # no takeover permission: same as a lost race
    assert await svc.store.query_audit(action="chat.takeover") == []
    taken = await svc.chats.accept(supervisor, chat.id)
    assert taken.assigned_agent_id == supervisor.agent_id
    [audit] = await svc.store.query_audit(action="chat.takeover")
    assert (audit.actor, audit.target, audit.tenant_id) == (supervisor.agent_id, chat.id, "demo")
    assert audit.details["previous_agent"] == first.agent_id


async def test_erased_chat_refuses_every_call_with_not_found(svc: Services) -> None:
    agent = await _agent(svc)
    chat = await _active_chat(svc, agent)
    await svc.chats.post_agent_message(agent, chat.id, "a1", "hello")
    assert await svc.chats.erase(chat.id, actor="test") is True
    assert await svc.chats.messages(chat.id, 0) == []
    for call in (
        svc.chats.post_agent_message(agent, chat.id, "a2", "x"),
        svc.chats.post_customer_message("demo", chat.id, "c1", "x", chat),
        svc.chats.close(chat.id, "demo", by="customer"),
        svc.chats.accept(agent, chat.id),
    ):
        with pytest.raises(ChatError) as refused:
            await call
        assert refused.value.code == "not_found"


# ---------------------------------------------------------------- lifecycle (issue 19.6)


async def test_concurrent_accepts_on_two_nodes_have_one_winner(nodes: list[Services]) -> None:
    a, b = nodes
    agents = [await _agent(a) for _ in range(4)]
    opened = await a.chats.open_chat("demo")
    results = await asyncio.gather(
        *(node.chats.accept(p, opened.chat.id) for node, p in zip(nodes * 2, agents, strict=True)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, Chat)]
    losers = [r for r in results if isinstance(r, ChatError)]
    assert len(winners) == 1 and len(losers) == 3
    assert {e.code for e in losers} == {"already_taken"}
    stored = await b.store.get_chat(opened.chat.id)
    assert stored is not None and stored.assigned_agent_id == winners[0].assigned_agent_id
    assert stored.accepted_at is not None


async def test_transfer_to_a_queue_requeues_and_audits(svc: Services) -> None:
    agent = await _agent(svc)
    chat = await _active_chat(svc, agent)
    tenant = await svc.store.get_tenant("demo")  # queues are the tenant's configured ones
    assert tenant is not None
    tenant.settings = {**tenant.settings, "queues": ["billing"]}
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate("demo")
    moved = await svc.chats.transfer(agent, chat.id, to_agent=None, to_queue="billing")
    assert (moved.state, moved.queue, moved.assigned_agent_id) == ("queued", "billing", None)
    [audit] = await svc.store.query_audit(action="chat.transferred")
    assert audit.actor == agent.agent_id and audit.details["to_queue"] == "billing"
    with pytest.raises(ChatError) as gone:
        await svc.chats.post_agent_message(agent, chat.id, "a1", "still here?")
    assert gone.value.code == "not_assigned"


async def test_reading_another_agents_transcript_needs_permission_and_is_audited(
    svc: Services,
) -> None:
    owner = await _agent(svc)
    peer = await _agent(svc)
    supervisor = await _agent(svc, "supervisor")
    chat = await _active_chat(svc, owner)
    await svc.chats.post_agent_message(owner, chat.id, "a1", "hello")
    assert [m.text for m in await svc.chats.agent_history(owner, chat.id, 0, None)] == ["hello"]
    assert await svc.store.query_audit(action="transcript.opened") == []  # own chat: no audit
    with pytest.raises(ChatError) as refused:
        await svc.chats.agent_history(peer, chat.id, 0, None)
    assert refused.value.code == "forbidden"
    history = await svc.chats.agent_history(supervisor, chat.id, 0, "203.0.113.9")
    assert [m.seq for m in history] == [1]
    [audit] = await svc.store.query_audit(action="transcript.opened")
    assert (audit.actor, audit.target, audit.ip) == (supervisor.agent_id, chat.id, "203.0.113.9")


async def test_duplicate_message_id_is_stored_once_and_acked_with_its_seq(svc: Services) -> None:
    opened = await svc.chats.open_chat("demo")
    events: list[BusEvent] = []
    await svc.bus.subscribe(chat_topic(opened.chat.id), _record(events))
    first = await svc.chats.post_customer_message("demo", opened.chat.id, "m1", "hi", opened.chat)
    again = await svc.chats.post_customer_message("demo", opened.chat.id, "m1", "hi", opened.chat)
    assert first.ack is not None and again.ack is not None
    assert (first.ack.seq, again.ack.seq, first.duplicate, again.duplicate) == (1, 1, False, True)
    assert len(await svc.store.messages_after(opened.chat.id, 0)) == 1
    # Published again (the first publisher may have died); receivers de-duplicate by seq.
    assert [e.frame.seq for e in events if e.frame is not None and hasattr(e.frame, "seq")] == [
        1,
        1,
    ]
