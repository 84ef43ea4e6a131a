"""Issue 11, finding 10: a chat's queue is one the tenant configured (``default`` plus
``settings.queues`` set through the admin API), never a name the customer made up."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.sdk.client import AgentClient, CustomerClient, ServerError
from tests.gateway.helpers import bearer, login, make_agent, start_gateway


async def test_unknown_queues_are_refused_until_the_admin_configures_them(tmp_path) -> None:
    runner, base, svc = await start_gateway(tmp_path)
    try:
        client = CustomerClient(base, "demo", origin=base, gateway_key=svc.identity.verify_key_b64)
        await client.connect()
        with pytest.raises(ServerError) as err:
            await client.open(queue="vip")
        assert err.value.code == "unknown_queue"
        assert await svc.store.list_chats("demo", states=("queued", "active")) == []

        _agent, secret, password = await make_agent(svc, "boss@example.com", role="admin")
        async with aiohttp.ClientSession() as http:
            token = await login(http, base, "boss@example.com", password, secret, svc.clock())
            async with http.patch(
                f"{base}/api/tenant",
                headers=bearer(token),
                json={"queues": ["vip", "billing", "vip"]},
            ) as r:
                body = await r.json()
                assert r.status == 200, body
                assert body["tenant"]["settings"]["queues"] == ["billing", "vip"]
            async with http.patch(
                f"{base}/api/tenant", headers=bearer(token), json={"queues": ["bad queue!"]}
            ) as r:
                assert r.status == 400 and (await r.json())["error"]["field"] == "queues"
            svc.tenants.invalidate("demo")
            welcome = await client.open(queue="vip")
            chat = await svc.store.get_chat(welcome.chat)
            assert chat is not None and chat.queue == "vip"

            agent = AgentClient(base, token=token, gateway_key=svc.identity.verify_key_b64)
            await agent.connect()
            await agent.accept(welcome.chat)
            with pytest.raises(ServerError) as err:
                await agent.transfer(welcome.chat, to_queue="nowhere")
            assert err.value.code == "unknown_queue"
            await agent.transfer(welcome.chat, to_queue="billing")
            chat = await svc.store.get_chat(welcome.chat)
            assert chat is not None and chat.queue == "billing" and chat.state == "queued"
            await agent.aclose()
        await client.aclose()
    finally:
        await runner.cleanup()
