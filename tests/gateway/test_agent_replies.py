"""An agent's replies over a real console socket: the chat is read once, not before every
reply (that read capped a node's replies: ``bench/limits.py --replies``), and the store
refuses a reply to a chat taken away behind the socket's back, however recent the
socket's view of it (``NewMessage.assigned_only``)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.protocol import Ack, AgentMsg, Error
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

            # Put back in its queue behind this socket's back (another node, its bus
            # event not yet here): the socket's view still says the chat is its agent's.
            back = await svc.store.assign_chat(
                chat, agent_id=None, queue="default", from_states=("active",), now=svc.clock()
            )
            assert back is not None and back.state == "queued"
            await agent.send(AgentMsg(id="late", chat=chat, text="still there?"))
            refused = await agent.wait_for(lambda f: isinstance(f, Error) and f.ref == "late")
            assert refused.code == "not_assigned"
            assert checks == [chat]  # refused by the store, not by a fresh read
            stored = await svc.store.messages_after(chat, 0)
    finally:
        await runner.cleanup()
    assert [m.seq for m in stored if m.sender == "agent"] == [a.seq for a in acks]
