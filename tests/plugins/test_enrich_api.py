"""``enrich`` reaches the agent: GET /api/chats/{id}/helpdesk answers the assigned agent
with the customer's open helpdesk tickets (Zendesk fake), bounded and link-checked; other
agents of the tenant are refused (issue 17, item 4)."""

from __future__ import annotations

import time

import aiohttp

from gateway.sdk.client import AgentClient, CustomerClient
from tests.gateway.helpers import bearer, login, make_agent, start_gateway
from tests.plugins.fakes import ZendeskServer


async def test_assigned_agent_sees_the_customers_open_tickets(tmp_path):
    zendesk = await ZendeskServer().start()
    tid = zendesk.add_ticket("mei@example.com", "open", subject="Refund for order 12")
    zendesk.add_ticket("mei@example.com", "solved", subject="Old")
    runner, base, svc = await start_gateway(tmp_path, plugins={"allow_private_targets": True})
    customer = CustomerClient(base, "demo", origin=base, gateway_key=svc.identity.verify_key_b64)
    agent = None
    try:
        await svc.plugins.configure(
            "demo",
            "zendesk",
            {"base_url": zendesk.url, "email": zendesk.email, "api_token": zendesk.token},
        )
        async with aiohttp.ClientSession() as http:
            tokens = {}
            for email in ("kim@example.com", "lee@example.com"):
                _, secret, pw = await make_agent(svc, email)
                tokens[email] = await login(http, base, email, pw, secret, time.time())
            agent = AgentClient(
                base, token=tokens["kim@example.com"], gateway_key=svc.identity.verify_key_b64
            )
            await agent.connect()
            await customer.connect()
            welcome = await customer.open(profile={"name": "Mei", "email": "mei@example.com"})
            await agent.accept(welcome.chat)
            url = f"{base}/api/chats/{welcome.chat}/helpdesk"
            async with http.get(url, headers=bearer(tokens["kim@example.com"])) as r:
                assert r.status == 200, await r.text()
                data = await r.json()
            assert data["helpdesk"] == [
                {
                    "plugin": "zendesk",
                    "open_tickets": [
                        {
                            "id": str(tid),
                            "subject": "Refund for order 12",
                            "status": "open",
                            "url": f"{zendesk.url}/agent/tickets/{tid}",
                        }
                    ],
                }
            ]
            async with http.get(url, headers=bearer(tokens["lee@example.com"])) as r:
                assert r.status == 403  # not this agent's chat
            async with http.get(
                f"{base}/api/chats/nope/helpdesk", headers=bearer(tokens["kim@example.com"])
            ) as r:
                assert r.status == 404
    finally:
        if agent is not None:
            await agent.aclose()
        await customer.aclose()
        await runner.cleanup()
        await zendesk.close()
