"""SIGKILL the gateway mid-conversation: every acked message survives (issue: gateway core).

A real ``cipherdesk serve`` process on the embedded SQLite store is killed with SIGKILL
while a customer streams messages without waiting for acks and an agent replies. After a
restart on the same data dir, the customer resumes (``key.resume`` + last_seq), re-sends
what was never acked, and the transcript holds every acked message exactly once, in
order, with its acked sequence number.
"""

from __future__ import annotations

from pathlib import Path

from gateway.protocol import Ack, Msg
from gateway.sdk.client import AgentClient, CustomerClient
from tests.e2e.procs import Cluster, login, stream_then_kill

PASSWORD = "correct horse battery staple 42"


async def test_sigkill_mid_conversation_loses_no_acked_message(tmp_path: Path) -> None:
    cluster = Cluster(
        tmp_path,
        store_url=f"sqlite:///{tmp_path / 'shared' / 'gw.db'}",
        # One loopback customer streams fast: lift the per-chat/customer message limits.
        config_toml='[ratelimit]\nlimits = {messages_per_chat = "10000/s", '
        'messages_per_customer = "10000/s"}\n',
    )
    (node,) = await cluster.start(1)
    try:
        secret = cluster.add_agent("kim@example.com", PASSWORD)
        token = await login(node.url, "kim@example.com", PASSWORD, secret)
        agent = AgentClient(node.url, token=token, gateway_key=cluster.verify_key)
        await agent.connect()
        customer = CustomerClient(
            node.url, "demo", origin=cluster.public_url, gateway_key=cluster.verify_key
        )
        await customer.connect()
        welcome = await customer.open()
        await agent.accept(welcome.chat)
        await agent.send_text(welcome.chat, "hi, how can I help?")

        acked_before_kill, sent = await stream_then_kill(
            customer, node, lambda i: f"line {i}", count=400, min_acks=40
        )
        assert len(acked_before_kill) >= 40
        await agent.aclose()

        node.start()
        await node.wait_healthy()
        welcome_again = await customer.reconnect()
        assert welcome_again is not None and welcome_again.chat == welcome.chat
        settled = await customer.flush(timeout=30)
        assert all(isinstance(s, Ack) for s in settled)
        assert not customer.outbox  # every unacked message was re-sent and stored

        # A fresh agent connection reads the transcript from the restarted gateway.
        token = await login(node.url, "kim@example.com", PASSWORD, secret)
        reader = AgentClient(node.url, token=token, gateway_key=cluster.verify_key)
        await reader.connect()
        history = await reader.history(welcome.chat, 0)
        by_id = {m.id: m for m in history if isinstance(m, Msg) and m.sender == "customer"}
        seqs = [m.seq for m in history]
        assert seqs == list(range(1, len(seqs) + 1)), "gap-free, strictly ordered"
        for msg_id, seq in acked_before_kill.items():
            assert msg_id in by_id, f"acked message {msg_id} lost"
            assert by_id[msg_id].seq == seq, "an acked message keeps its sequence number"
        customer_ids = [m.id for m in history if m.sender == "customer"]
        assert len(customer_ids) == len(set(customer_ids)), "no message stored twice"
        assert set(customer_ids) == set(sent[: len(customer_ids)]) | set(acked_before_kill)
        await reader.aclose()
        await customer.aclose()
    finally:
        cluster.stop()
