"""A transcript longer than the per-connection send queue reaches the agent whole.

Regression: ``history`` put every message into the bounded send queue at once, so an agent
asking for a chat of more than ``websocket.send_queue`` messages was dropped as a "slow
consumer" (close 1008) although it was reading (found by the restore drill under load).
A supervisor's ``watch`` had the same flaw (the transcript went through the feed at once).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.protocol import Ack
from gateway.sdk.client import AgentClient, CustomerClient
from tests.e2e.conftest import running_gateway
from tests.gateway.helpers import FakeClock

QUEUE = 16  # a small send queue stands for the production 256
MESSAGES = 5 * QUEUE


@dataclass
class LongChat:
    chat: str
    customer: CustomerClient
    supervisor: AgentClient


@pytest.fixture
async def long_chat(tmp_path: Path) -> AsyncIterator[LongChat]:
    """A chat of ``MESSAGES`` messages and a connected supervisor, on a gateway whose send
    queue holds ``QUEUE`` frames."""
    async with running_gateway(tmp_path, clock=FakeClock(), websocket={"send_queue": QUEUE}) as gw:
        customer = gw.customer()
        supervisor: AgentClient | None = None
        try:
            await customer.connect()
            chat = (await customer.open()).chat
            for i in range(MESSAGES):  # stored through the service (no customer rate limit)
                posted = await gw.svc.chats.post_customer_message(
                    "demo", chat, f"m-{i:04d}", f"line {i}"
                )
                assert isinstance(posted.ack, Ack)
            supervisor = await gw.agent("sup@example.com", role="supervisor")
            yield LongChat(chat, customer, supervisor)
        finally:
            if supervisor is not None:
                await supervisor.aclose()
            await customer.aclose()


async def test_history_longer_than_the_send_queue_is_delivered_whole(long_chat: LongChat) -> None:
    history = await long_chat.supervisor.history(long_chat.chat, 0)
    assert [m.text for m in history] == [f"line {i}" for i in range(MESSAGES)]


async def test_watching_a_chat_longer_than_the_send_queue_gets_it_whole(
    long_chat: LongChat,
) -> None:
    transcript = await long_chat.supervisor.watch(long_chat.chat)
    assert [m.text for m in transcript] == [f"line {i}" for i in range(MESSAGES)]
    # still connected and following live
    await long_chat.customer.send_text("one more")
    live = await long_chat.supervisor.wait_for(lambda f: getattr(f, "text", None) == "one more")
    assert live.seq == MESSAGES + 1
