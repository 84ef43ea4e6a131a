"""SIGKILL a real ``cipherdesk serve`` in the middle of an end-to-end chat (issue 13): the
delivery guarantees of inspect mode hold for ciphertext too -- every acked e2e message
survives, once, with its seq, and still opens at the agent's end after the restart."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import nacl.public

from crypto.e2e import DeviceCertificate, TenantSigningKey
from crypto.encoding import b64encode
from gateway.protocol import Ack
from gateway.sdk.e2e import E2EAgentClient, E2ECustomerClient
from tests.e2e.procs import Cluster, login, stream_then_kill

PASSWORD = "correct horse battery staple 42"


async def _e2e_setup(
    url: str, admin: str, agent: str, agent_id_email: str
) -> tuple[TenantSigningKey, str, nacl.public.PrivateKey]:
    """Over HTTP, as an admin and an agent would: the tenant switches to e2e with a key
    made here; the agent registers a device; the admin uploads its certificate."""
    signing = TenantSigningKey.generate()
    device = nacl.public.PrivateKey.generate()
    async with aiohttp.ClientSession() as http:
        admin_h = {"Authorization": f"Bearer {admin}"}
        agent_h = {"Authorization": f"Bearer {agent}"}
        body = {"mode": "e2e", "verify_key": signing.verify_key}
        async with http.put(f"{url}/api/e2e", json=body, headers=admin_h) as r:
            assert r.status == 200, await r.text()
        public_key = b64encode(bytes(device.public_key))
        async with http.post(
            f"{url}/api/me/e2e/devices", json={"public_key": public_key}, headers=agent_h
        ) as r:
            assert r.status == 201, await r.text()
            registered = (await r.json())["device"]
        now = int(time.time())
        signed = signing.certify(
            DeviceCertificate(
                tenant="demo",
                agent=registered["agent"],
                name=agent_id_email,
                role="agent",
                device=registered["id"],
                public_key=public_key,
                issued_at=now - 60,
                expires_at=now + 86_400,
            )
        )
        async with http.put(
            f"{url}/api/e2e/devices/{registered['id']}/certificate",
            json=signed.as_json(),
            headers=admin_h,
        ) as r:
            assert r.status == 200, await r.text()
    return signing, registered["id"], device


async def test_sigkill_mid_e2e_chat_loses_no_acked_message(tmp_path: Path) -> None:
    cluster = Cluster(
        tmp_path,
        store_url=f"sqlite:///{tmp_path / 'shared' / 'gw.db'}",
        config_toml='[ratelimit]\nlimits = {messages_per_chat = "10000/s", '
        'messages_per_customer = "10000/s"}\n',
    )
    (node,) = await cluster.start(1)
    try:
        admin_secret = cluster.add_agent("root@example.com", PASSWORD, role="admin")
        kim_secret = cluster.add_agent("kim@example.com", PASSWORD)
        admin = await login(node.url, "root@example.com", PASSWORD, admin_secret)
        token = await login(node.url, "kim@example.com", PASSWORD, kim_secret)
        signing, device_id, device = await _e2e_setup(node.url, admin, token, "Kim")

        def agent_end() -> E2EAgentClient:
            """Kim's console end on her certified device (before and after the kill)."""
            return E2EAgentClient(
                node.url,
                token=token,
                device=device,
                device_id=device_id,
                gateway_key=cluster.verify_key,
            )

        agent = agent_end()
        await agent.connect()
        customer = E2ECustomerClient(
            node.url,
            "demo",
            origin=cluster.public_url,
            tenant_key=signing.verify_key,
            gateway_key=cluster.verify_key,
        )
        await customer.connect()
        welcome = await customer.open()
        await agent.accept(welcome.chat)
        await agent.keys_ready(welcome.chat)

        acked_before_kill, _sent = await stream_then_kill(
            customer, node, lambda i: f"密文 {i}", count=300, min_acks=30
        )
        assert len(acked_before_kill) >= 30
        await agent.aclose()

        node.start()
        await node.wait_healthy()
        assert await customer.reconnect() is not None
        settled = await customer.flush(timeout=30)
        assert all(isinstance(s, Ack) for s in settled)
        assert not customer.outbox

        reader = agent_end()
        await reader.connect()
        await reader.keys_ready(welcome.chat)
        history = await reader.history(welcome.chat, 0)
        assert [m.seq for m in history] == list(range(1, len(history) + 1))
        texts = {m.id: reader.read(m).text for m in history}  # every one opens
        for msg_id, seq in acked_before_kill.items():
            assert texts[msg_id] == f"密文 {int(msg_id[2:])}", msg_id
            assert next(m.seq for m in history if m.id == msg_id) == seq
        assert len(texts) == len(history), "no message stored twice"
        await reader.aclose()
        await customer.aclose()
    finally:
        cluster.stop()
