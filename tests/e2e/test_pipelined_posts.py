"""A socket reads its next message while the one before is being stored (issue 18): the
messages it sent meanwhile share commits, and they are stored, acked and relayed in the
order they were sent (gateway/ws/pipeline.py, ``Store.queue_append``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from gateway.protocol import Ack, AgentMsg, CustomerMsg, Msg
from gateway.store.base import AppendResult, NewMessage
from tests.e2e.conftest import SocketGateway, accepted_chat


def hold_first_commit(monkeypatch: pytest.MonkeyPatch, gw: SocketGateway) -> list[NewMessage]:
    """The first append queued from now on does not finish before a second one is queued
    (a socket that waits for each commit before reading on never queues it: the wait runs
    out after 5 s and fails the message). Returns the appends queued, in order."""
    store = gw.svc.store
    real = store.queue_append
    queued: list[NewMessage] = []
    second = asyncio.Event()

    def gated(message: NewMessage, events: Any = None) -> Awaitable[AppendResult]:
        queued.append(message)
        appended = real(message, events)
        if len(queued) > 1:
            second.set()
            return appended

        async def after_the_second() -> AppendResult:
            await asyncio.wait_for(second.wait(), 5)
            return await appended

        return after_the_second()

    monkeypatch.setattr(store, "queue_append", gated)
    return queued


async def test_a_customers_messages_are_read_while_the_first_is_stored_and_keep_their_order(
    gw: SocketGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await gw.agent("alice@example.com")
    customer, welcome = await accepted_chat(gw, alice, echo=False)
    queued = hold_first_commit(monkeypatch, gw)

    for i in range(1, 6):  # back to back, as the widget sends what was typed offline
        await customer.send(CustomerMsg(id=f"m{i}", text=f"message {i}"))
    acks = [
        await customer.wait_for(lambda f, i=i: isinstance(f, Ack) and f.id == f"m{i}")
        for i in range(1, 6)
    ]
    assert [a.seq for a in acks] == [1, 2, 3, 4, 5]
    assert len(queued) == 5
    got = [
        await alice.wait_for(lambda f, s=s: isinstance(f, Msg) and f.seq == s) for s in range(1, 6)
    ]
    assert [m.text for m in got] == [f"message {i}" for i in range(1, 6)]
    stored = await gw.svc.store.messages_after(welcome.chat, 0)
    assert [m.seq for m in stored] == [1, 2, 3, 4, 5]
    await customer.aclose()
    await alice.aclose()


async def test_an_agents_replies_in_several_chats_are_pipelined_too(
    gw: SocketGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await gw.agent("alice@example.com")
    customers, chats = [], []
    for _ in range(2):
        customer, welcome = await accepted_chat(gw, alice, echo=False)
        customers.append(customer)
        chats.append(welcome.chat)
    queued = hold_first_commit(monkeypatch, gw)

    sends = [(chats[i % 2], f"r{i}") for i in range(4)]
    for chat, rid in sends:
        await alice.send(AgentMsg(chat=chat, id=rid, text=f"reply {rid}"))
    acks = [
        await alice.wait_for(lambda f, rid=rid: isinstance(f, Ack) and f.id == rid)
        for _, rid in sends
    ]
    assert [(a.chat, a.seq) for a in acks] == [
        (chats[0], 1),
        (chats[1], 1),
        (chats[0], 2),
        (chats[1], 2),
    ]
    assert len(queued) == 4
    for customer, chat in zip(customers, chats, strict=True):
        replies = [
            await customer.wait_for(lambda f, s=s: isinstance(f, Msg) and f.seq == s)
            for s in (1, 2)
        ]
        assert all(m.chat == chat and m.sender == "agent" for m in replies)
        await customer.aclose()
    await alice.aclose()


async def test_sealed_messages_are_read_ahead_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End-to-end mode: the gateway stores ciphertext it cannot read, in the same order."""
    from tests.e2e.test_e2e_mode import e2e_tenant

    async with e2e_tenant(tmp_path) as e2e:
        agent = await e2e.staff("ana@example.com")
        customer, chat = await e2e.chat_with(agent)
        queued = hold_first_commit(monkeypatch, e2e.gw)
        acks = await asyncio.gather(
            *(customer.send_text(f"sealed {i}", msg_id=f"m{i}") for i in range(1, 5))
        )
        assert [(a.id, a.seq) for a in acks] == [(f"m{i}", i) for i in range(1, 5)]
        assert len(queued) == 4
        got = [
            await agent.wait_for(lambda f, s=s: isinstance(f, Msg) and f.seq == s)
            for s in range(1, 5)
        ]
        assert [agent.read(m).text for m in got] == [f"sealed {i}" for i in range(1, 5)]
        assert all(m.chat == chat and m.text == "" for m in got)  # ciphertext relayed
        await customer.aclose()
        await agent.aclose()
