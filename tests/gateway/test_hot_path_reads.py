"""Store reads on a chat's hot paths, over real sockets. An agent's replies read the chat
once, not before every reply (that read capped a node's replies: ``bench/limits.py
--replies``), and the store refuses a reply to a chat taken away behind the socket's back
however recent the socket's view of it (``NewMessage.assigned_only``); a customer's typing
reads nothing, and an agent's typing shares its replies' read."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.protocol import Ack, AgentMsg, AgentTyping, Error, Typing
from tests.gateway.helpers import accepted_chat, start_gateway


async def test_replies_read_the_chat_once_and_a_stale_view_is_refused(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner, base, svc = await start_gateway(tmp_path)
    checks: list[str] = []
    real_check = svc.chats.agent_writable

    async def agent_writable(principal: Any, chat_id: str) -> Any:
        checks.append(chat_id)
        return await real_check(principal, chat_id)

    try:
        async with accepted_chat(svc, base) as (_customer, agent, chat):
            monkeypatch.setattr(svc.chats, "agent_writable", agent_writable)
            for n in range(6):
                await agent.send(AgentMsg(id=f"a{n}", chat=chat, text=f"reply {n}"))
            acks = [
                await agent.wait_for(lambda f, n=n: isinstance(f, Ack) and f.id == f"a{n}")
                for n in range(6)
            ]
            assert [a.seq for a in acks] == sorted(a.seq for a in acks)
            assert checks == [chat]  # once, not once per reply

            await _put_back_in_queue(svc, chat)
            await agent.send(AgentMsg(id="late", chat=chat, text="still there?"))
            refused = await agent.wait_for(lambda f: isinstance(f, Error) and f.ref == "late")
            assert refused.code == "not_assigned"
            assert checks == [chat]  # refused by the store, not by a fresh read
            stored = await svc.store.messages_after(chat, 0)
    finally:
        await runner.cleanup()
    assert [m.seq for m in stored if m.sender == "agent"] == [a.seq for a in acks]


def _chat_reads(store: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the chats ``store`` reads from now on (the reads still happen)."""
    reads: list[str] = []
    real_get = store.get_chat

    async def get_chat(chat_id: str) -> Any:
        reads.append(chat_id)
        return await real_get(chat_id)

    monkeypatch.setattr(store, "get_chat", get_chat)
    return reads


async def _typing_seen(receiver: Any, sender: str, on: bool, chat: str) -> None:
    """Wait until ``receiver`` gets ``sender``'s typing frame ``on`` of ``chat``."""
    seen = await receiver.wait_for(
        lambda f: isinstance(f, Typing) and f.sender == sender and f.on is on
    )
    assert seen.chat == chat


async def _put_back_in_queue(svc: Any, chat: str) -> None:
    """Put ``chat`` back in its queue behind the sockets' back (another node, its bus
    event not yet here): a socket's view still says the chat is its agent's."""
    back = await svc.store.assign_chat(
        chat, agent_id=None, queue="default", from_states=("active",), now=svc.clock()
    )
    assert back is not None and back.state == "queued"


async def test_a_customers_typing_reaches_the_agent_without_a_store_read(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A widget sends about two typing frames per message; each one used to read the chat
    from the store. The customer's socket keeps its chat's state from the bus."""
    runner, base, svc = await start_gateway(tmp_path)
    try:
        async with accepted_chat(svc, base) as (customer, agent, chat):
            reads = _chat_reads(svc.store, monkeypatch)
            for on in (True, False):
                await customer.typing(on)
                await _typing_seen(agent, "customer", on, chat)
            assert reads == []
    finally:
        await runner.cleanup()


async def test_a_replying_agents_typing_reads_nothing_and_a_customers_typing_keeps_it_so(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a reply has read the chat, the agent's typing uses that view; the customer's
    typing heard meanwhile does not make the next reply read the chat again (only a
    change to the chat does)."""
    runner, base, svc = await start_gateway(tmp_path)
    try:
        async with accepted_chat(svc, base) as (customer, agent, chat):
            await agent.send_text(chat, "hello")  # the chat is read here, once
            reads = _chat_reads(svc.store, monkeypatch)
            await agent.typing(chat, True)
            await _typing_seen(customer, "agent", True, chat)
            await customer.typing(True)
            await _typing_seen(agent, "customer", True, chat)
            ack = await agent.send_text(chat, "here is your answer")
            assert isinstance(ack, Ack)
            assert reads == []
    finally:
        await runner.cleanup()


async def test_an_agents_typing_before_its_first_reply_reads_the_chat_once(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent types about twice per reply; before the first reply each typing frame read
    the chat. Typing now shares the replies' view: three typing frames and the reply after
    them read the chat once (four reads on the code before)."""
    runner, base, svc = await start_gateway(tmp_path)
    try:
        async with accepted_chat(svc, base) as (customer, agent, chat):
            reads = _chat_reads(svc.store, monkeypatch)
            for on in (True, False, True):
                await agent.typing(chat, on)
                await _typing_seen(customer, "agent", on, chat)
            assert isinstance(await agent.send_text(chat, "here is your answer"), Ack)
            assert reads == [chat]
    finally:
        await runner.cleanup()


async def test_typing_in_a_chat_not_the_agents_answers_not_assigned_and_a_closed_one_nothing(
    tmp_path,
) -> None:
    runner, base, svc = await start_gateway(tmp_path)
    try:
        async with accepted_chat(svc, base) as (_customer, agent, chat):
            await _put_back_in_queue(svc, chat)  # typing is refused
            await agent.send(AgentTyping(chat=chat, on=True))
            refused = await agent.wait_for(lambda f: isinstance(f, Error))
            assert refused.code == "not_assigned"
        async with accepted_chat(svc, base, "bea@example.com") as (_customer, agent, chat):
            await agent.close_chat(chat)
            await agent.send(AgentTyping(chat=chat, on=True))
            await agent.send(AgentMsg(id="after", chat=chat, text="still there?"))
            answer = await agent.wait_for(lambda f: isinstance(f, Error))
            assert (answer.ref, answer.code) == ("after", "not_assigned")  # typing said nothing
    finally:
        await runner.cleanup()
