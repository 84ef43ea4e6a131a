"""Refusals over real sockets (issue 21.7): each documented refusal is sent as its code,
leaves the stored state untouched, and leaves the connection usable.

Resume with a wrong token / another tenant's chat / an erased chat → ``resume_refused``;
a takeover is refused without the permission and audited with it; ``unknown_agent`` and
``bad_transfer``; a frozen tenant refuses posts (``tenant_frozen``); a post to a chat
closed on another path → ``chat_closed`` and no ack (the stale-view race itself, a close
the socket has not heard of yet, is pinned in tests/gateway/test_chat_service.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.protocol import Ack, ChatEvent, Pong
from gateway.sdk.client import ClosedError, CustomerClient, ResumeInfo, ServerError
from tests.e2e.conftest import SocketGateway, running_gateway
from tests.gateway.helpers import FakeClock, make_agent, make_tenant


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[SocketGateway]:
    async with running_gateway(tmp_path, clock=FakeClock()) as gateway:
        await make_tenant(gateway.svc, "other", origins=[gateway.base])
        yield gateway


async def _open(gw: SocketGateway) -> tuple[CustomerClient, ResumeInfo]:
    customer = gw.customer()
    await customer.connect()
    await customer.open()
    ack = await customer.send_text("hello")
    assert isinstance(ack, Ack) and ack.seq == 1
    info = customer.resume_info
    assert info is not None
    return customer, info


async def _refused_resume(gw: SocketGateway, info: ResumeInfo, tenant: str = "demo") -> None:
    client = gw.customer(tenant, resume=info)
    try:
        with pytest.raises(ServerError) as refused:
            await client.connect()
        assert refused.value.code == "resume_refused"
        # The connection stays usable: a new chat can be opened on it.
        welcome = await client.open()
        assert welcome.chat != info.chat and welcome.token
    finally:
        await client.aclose()


async def test_resume_with_a_wrong_token_is_refused(gw: SocketGateway) -> None:
    customer, info = await _open(gw)
    await customer.aclose()
    wrong = info.token[:-2] + ("AA" if not info.token.endswith("AA") else "BB")
    await _refused_resume(gw, ResumeInfo(info.chat, wrong, 0))
    good = gw.customer(resume=ResumeInfo(info.chat, info.token, 0))
    try:
        welcome = await good.connect()
        assert welcome is not None and welcome.chat == info.chat
    finally:
        await good.aclose()


async def test_resume_of_another_tenants_chat_is_refused(gw: SocketGateway) -> None:
    customer, info = await _open(gw)
    await customer.aclose()
    await _refused_resume(gw, info, tenant="other")


async def test_resume_of_an_erased_chat_is_refused(gw: SocketGateway) -> None:
    customer, info = await _open(gw)
    await customer.aclose()
    assert await gw.svc.chats.erase(info.chat, actor="test") is True
    await _refused_resume(gw, info)


async def test_takeover_is_refused_without_permission_and_audited_with_it(
    gw: SocketGateway,
) -> None:
    customer, info = await _open(gw)
    first = await gw.agent("first@example.test")
    first_id = gw.ids["first@example.test"]
    peer = await gw.agent("peer@example.test")
    boss = await gw.agent("boss@example.test", role="supervisor")
    boss_id = gw.ids["boss@example.test"]
    try:
        await first.accept(info.chat)
        with pytest.raises(ServerError) as refused:
            await peer.accept(info.chat)
        assert refused.value.code == "already_taken"  # no takeover permission
        assert await gw.svc.store.query_audit(action="chat.takeover") == []

        await boss.accept(info.chat)
        removed = await first.wait_for(
            lambda f: isinstance(f, ChatEvent) and f.event == "removed" and f.chat == info.chat
        )
        assert removed.chat == info.chat
        [audit] = await gw.svc.store.query_audit(action="chat.takeover")
        assert (audit.actor, audit.target, audit.tenant_id) == (boss_id, info.chat, "demo")
        assert audit.details["previous_agent"] == first_id
        chat = await gw.svc.store.get_chat(info.chat)
        assert chat is not None and chat.assigned_agent_id == boss_id
        # The previous owner can no longer write; the new one can.
        with pytest.raises(ServerError) as gone:
            await first.send_text(info.chat, "still mine?")
        assert gone.value.code == "not_assigned"
        assert isinstance(await boss.send_text(info.chat, "I take it from here"), Ack)
    finally:
        for client in (first, peer, boss, customer):
            await client.aclose()


async def test_transfer_to_unknown_agent_and_bad_transfer_are_refused(gw: SocketGateway) -> None:
    customer, info = await _open(gw)
    agent = await gw.agent("owner@example.test")
    agent_id = gw.ids["owner@example.test"]
    outsider, _, _ = await make_agent(gw.svc, "outsider@example.test", tenant="other")
    try:
        await agent.accept(info.chat)
        for to_agent in ("no-such-agent", outsider.id):
            with pytest.raises(ServerError) as unknown:
                await agent.transfer(info.chat, to_agent=to_agent)
            assert (unknown.value.code, unknown.value.ref) == ("unknown_agent", info.chat)
        for to_agent, to_queue in ((None, None), (agent_id, "billing")):
            with pytest.raises(ServerError) as bad:
                await agent.transfer(info.chat, to_agent=to_agent, to_queue=to_queue)
            assert bad.value.code == "bad_transfer"
        chat = await gw.svc.store.get_chat(info.chat)
        assert chat is not None and (chat.state, chat.assigned_agent_id) == ("active", agent_id)
        assert isinstance(await agent.ping(), Pong)  # still connected and usable
    finally:
        await agent.aclose()
        await customer.aclose()


async def test_frozen_tenant_refuses_posts_on_live_sockets(gw: SocketGateway) -> None:
    customer, info = await _open(gw)
    try:
        tenant = await gw.svc.store.get_tenant("demo")
        assert tenant is not None
        tenant.frozen = True
        await gw.svc.store.update_tenant(tenant)
        gw.svc.tenants.invalidate("demo")
        with pytest.raises(ServerError) as refused:
            await customer.send_text("anyone?")
        assert refused.value.code == "tenant_frozen"
        assert [m.seq for m in await gw.svc.store.messages_after(info.chat, 0)] == [1]
        newcomer = gw.customer()
        code, _reason = await _closed_on_connect(newcomer)
        assert code == 4403
    finally:
        await customer.aclose()


async def _closed_on_connect(client: CustomerClient) -> tuple[int | None, str | None]:
    try:
        await client.connect()
    except ClosedError as exc:
        return exc.code, exc.reason
    try:
        return await client.wait_closed(timeout=10)
    finally:
        await client.aclose()


async def test_post_to_a_chat_closed_elsewhere_is_refused_not_acked(gw: SocketGateway) -> None:
    customer, info = await _open(gw)
    try:
        # Closed through the service (another node, the admin API): this socket's view
        # of the chat is still "open" when the next message arrives.
        await gw.svc.chats.close(info.chat, "demo", by="customer")
        await customer.wait_for(lambda f: isinstance(f, ChatEvent) and f.event == "closed")
        with pytest.raises(ServerError) as refused:
            await customer.send_text("after the close")
        assert refused.value.code == "chat_closed"
        assert [m.seq for m in await gw.svc.store.messages_after(info.chat, 0)] == [1]
    finally:
        await customer.aclose()
