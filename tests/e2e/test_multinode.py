"""Several real gateway processes behind one PostgreSQL and one Redis; one dies mid-chat.

Three ``cipherdesk serve`` nodes (A, B, C) share a fresh PostgreSQL database, the Redis
bus (a key prefix of their own), the Redis rate limiter, the master key and the signing
identity. Customers chat from node A with an agent logged in on node B, so every message
crosses the Redis bus in one direction or the other. Mid-chat, while customers and the
agent are sending, node A is SIGKILLed. The customers reconnect — through "the load
balancer", i.e. to node B or C — resuming with their ``last_seq`` and re-sending what was
not acked, and the chats continue.

Asserted, per chat, against a fresh connection's history (the store is the truth):
- the seqs are exactly 1..n and every message id appears once: nothing duplicated;
- every acked message (customer's and agent's) is there: nothing acked is lost;
- every message a customer sent (acked before the kill or re-sent after it) is there once;
- the chats carry on in both directions after the failover;
- no live view (customers', agent's) ever showed a message twice, and each customer and
  the agent saw every message of its chats (live, or replayed on resume; gateway/ws/feed.py
  fills cross-node seq gaps from the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from pathlib import Path
from typing import Any

import pytest

from gateway.protocol import Ack, ChatEvent, Msg
from gateway.sdk.client import AgentClient, ClosedError, CustomerClient
from tests.e2e.procs import PUBLIC_URL, Cluster, Node, login
from tests.gateway.helpers import eventually

pytestmark = [pytest.mark.services, pytest.mark.timeout(150)]

CUSTOMERS = 4
PASSWORD = "multi node test passphrase 42"
LIMITS = """
[ratelimit.limits]
ws_connect_per_ip = "10000/60s"
concurrent_per_ip = 1000
messages_per_chat = "10000/10s"
messages_per_customer = "10000/60s"
messages_per_agent = "100000/60s"
login_per_ip = "1000/60s"
"""


class TrackedCustomer(CustomerClient):
    """Records every ``msg`` frame it is handed (live or replayed), in order."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[int] = []
        self.acked: set[str] = set()

    def _observe(self, frame: Any) -> None:
        if isinstance(frame, Msg):
            self.seen.append(frame.seq)
        elif isinstance(frame, Ack):
            self.acked.add(frame.id)
        super()._observe(frame)

    def move_to(self, node: Node) -> None:
        """What a load balancer does on reconnect: the next socket lands on ``node``."""
        prefix, _, rest = self.url.partition("//")
        self.url = f"{prefix}//127.0.0.1:{node.port}/{rest.split('/', 1)[1]}"


class TrackedAgent(AgentClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: dict[str, list[int]] = {}
        self.acked: set[str] = set()

    def _observe(self, frame: Any) -> None:
        if isinstance(frame, Msg) and frame.chat is not None:
            self.seen.setdefault(frame.chat, []).append(frame.seq)
        elif isinstance(frame, Ack):
            self.acked.add(frame.id)
        super()._observe(frame)


@pytest.fixture
async def cluster(tmp_path: Path, postgres_dsn: str, redis_url: str, redis_prefix: str) -> Any:
    c = Cluster(
        tmp_path,
        store_url=postgres_dsn,
        bus_url=f"{redis_url}?prefix={redis_prefix}bus:",
        ratelimit_url=redis_url,
        config_toml=LIMITS,
    )
    try:
        await c.start(3)
        yield c
    finally:
        c.stop()


async def test_customers_and_agent_on_different_nodes_survive_a_node_kill(
    cluster: Cluster,
) -> None:
    node_a, node_b, _ = cluster.nodes
    key = cluster.verify_key
    secret = cluster.add_agent("ana@example.com", PASSWORD)
    token = await login(node_b.url, "ana@example.com", PASSWORD, secret)

    agent = TrackedAgent(node_b.url, token=token, gateway_key=key)
    await agent.connect()
    customers = [
        TrackedCustomer(node_a.url, "demo", origin=PUBLIC_URL, gateway_key=key)
        for _ in range(CUSTOMERS)
    ]
    try:
        await _run_scenario(cluster, agent, token, customers)
    finally:
        for client in (agent, *customers):
            with contextlib.suppress(Exception):
                await client.aclose()


async def _run_scenario(
    cluster: Cluster, agent: TrackedAgent, agent_token: str, customers: list[TrackedCustomer]
) -> None:
    node_a, node_b, node_c = cluster.nodes
    key = cluster.verify_key
    sent: dict[str, dict[str, str]] = {}  # chat -> msg id -> text (everything ever sent)
    agent_acked: dict[str, set[str]] = {}

    # ---- customers open chats on A; the agent on B accepts them (A -> B -> A).
    for i, customer in enumerate(customers):
        await customer.connect()
        welcome = await customer.open(profile={"name": f"customer {i}"})
        sent[welcome.chat] = {}
        agent_acked[welcome.chat] = set()
        await agent.accept(welcome.chat)
        joined = await customer.wait_for(
            lambda f: isinstance(f, ChatEvent) and f.event == "joined", timeout=10
        )
        assert joined.agent == "ana"  # the agent's accept on B reached the customer on A

    async def customer_says(customer: TrackedCustomer, text: str) -> None:
        assert customer.chat is not None
        msg_id = f"c-{customer.chat[:8]}-{len(sent[customer.chat])}"
        sent[customer.chat][msg_id] = text
        result = await customer.send_text(text, msg_id, timeout=10)
        assert isinstance(result, Ack), result

    async def agent_says(chat: str, text: str) -> None:
        msg_id = f"a-{chat[:8]}-{len(sent[chat])}"
        sent[chat][msg_id] = text
        result = await agent.send_text(chat, text, msg_id, timeout=10)
        assert isinstance(result, Ack), result
        agent_acked[chat].add(msg_id)

    # ---- a normal conversation across nodes, both directions.
    for round_ in range(3):
        for customer in customers:
            await customer_says(customer, f"question {round_}")
        for customer in customers:
            assert customer.chat is not None
            await agent_says(customer.chat, f"answer {round_}")
    await _both_sides_caught_up(agent, customers, sent)

    # ---- traffic in flight both ways, then node A dies.
    stop = asyncio.Event()

    async def customer_chatter(customer: TrackedCustomer) -> None:
        """Send until the node dies under us; the failed message stays in the outbox."""
        for n in itertools.count():
            if stop.is_set():
                return
            try:
                await customer_says(customer, f"burst {n}")
            except (ClosedError, TimeoutError, ConnectionError, OSError):
                return
            await asyncio.sleep(0)

    async def agent_chatter() -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            for customer in customers:
                assert customer.chat is not None
                await agent_says(customer.chat, f"reply {n}")
            await asyncio.sleep(0.01)

    chatter = [asyncio.create_task(customer_chatter(c)) for c in customers]
    replies = asyncio.create_task(agent_chatter())
    await asyncio.sleep(1.0)
    node_a.kill()
    await asyncio.wait_for(asyncio.gather(*chatter), 15)
    await asyncio.sleep(0.3)  # the agent keeps writing into chats whose customers are away
    stop.set()
    await asyncio.wait_for(replies, 15)
    assert not node_a.alive
    unacked_at_kill = sum(len(c.outbox) for c in customers)

    # ---- customers come back through the load balancer: to B or C, resuming.
    for i, customer in enumerate(customers):
        customer.move_to(node_b if i % 2 else node_c)
        welcome = await customer.reconnect()
        assert welcome is not None and welcome.chat == customer.chat
        await customer.flush(timeout=10)  # re-sent messages are acked (stored once)
        assert not customer.outbox

    # ---- and the chats continue, both directions, across B and C.
    for round_ in range(2):
        for customer in customers:
            await customer_says(customer, f"after failover {round_}")
        for customer in customers:
            assert customer.chat is not None
            await agent_says(customer.chat, f"still here {round_}")
    await _both_sides_caught_up(agent, customers, sent)

    # ---- the truth, from a fresh agent socket on C.
    gaps: dict[str, list[int]] = {}
    fresh = AgentClient(node_c.url, token=agent_token, gateway_key=key)
    await fresh.connect()
    try:
        for customer in customers:
            chat = customer.chat
            assert chat is not None
            history = await fresh.history(chat, 0)
            seqs = [m.seq for m in history]
            ids = [m.id for m in history]
            assert seqs == list(range(1, len(history) + 1)), f"{chat}: seqs {seqs}"
            assert len(ids) == len(set(ids)), f"{chat}: duplicated message ids"
            assert set(ids) == set(sent[chat]), (
                f"{chat}: lost {set(sent[chat]) - set(ids)}, unknown {set(ids) - set(sent[chat])}"
            )
            assert customer.acked <= set(ids) and agent_acked[chat] <= set(ids)
            for m in history:
                assert m.text == sent[chat][m.id]
            # Nobody's live view ever showed a message twice.
            assert len(customer.seen) == len(set(customer.seen)), f"{chat}: customer dups"
            agent_seen = agent.seen.get(chat, [])
            assert len(agent_seen) == len(set(agent_seen)), f"{chat}: agent duplicates"
            # Every customer saw every message of its chat (live or replayed on resume).
            missing = sorted(set(seqs) - set(customer.seen))
            if missing:
                gaps[f"customer of {chat[:8]}"] = missing
            missing = sorted(set(seqs) - set(agent_seen))
            if missing:
                gaps[f"agent in {chat[:8]}"] = missing
    finally:
        await fresh.aclose()
    print(
        f"multinode: {sum(len(v) for v in sent.values())} messages in {len(customers)} chats, "
        f"{unacked_at_kill} unacked at the kill and re-sent, live-view gaps: {gaps or 'none'}"
    )
    assert not gaps, f"live views missed messages: {gaps}"


async def _both_sides_caught_up(
    agent: TrackedAgent, customers: list[TrackedCustomer], sent: dict[str, dict[str, str]]
) -> None:
    """Wait until every customer's and the agent's live view reached the chat's last seq
    (every message sent so far is acked, so the chat holds exactly ``len(sent[chat])``)."""
    for customer in customers:
        chat = customer.chat
        assert chat is not None
        top = len(sent[chat])
        await eventually(lambda c=customer, t=top: c.last_seq >= t, f"customer of {chat}")
        await eventually(
            lambda ch=chat, t=top: max(agent.seen.get(ch, [0])) >= t, f"agent in {chat}"
        )
