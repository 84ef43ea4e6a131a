"""Agents' display names through the tenant's policy (admin API and invites; SCIM and
single sign-on are in their own tests): customers see the name when the agent joins and
plugins receive it with every message, so a card number in it is refused (400
``policy_blocked``, nothing written) and a phone masked -- while the person's own name,
which the ``name`` detector would mask in free text, is kept."""

from __future__ import annotations

import aiohttp
import pytest

from tests.gateway.helpers import bearer, login, make_agent, start_gateway

CARD_NAME = "Amy 4111 1111 1111 1111"


@pytest.fixture
async def admin(tmp_path):
    runner, base, svc = await start_gateway(tmp_path)
    _, secret, password = await make_agent(svc, "root@example.com", role="admin")
    async with aiohttp.ClientSession() as http:
        token = await login(http, base, "root@example.com", password, secret, svc.clock())
        yield http, base, svc, bearer(token)
    await runner.cleanup()


async def _call(http, base, method, path, headers, body):
    async with http.request(method, base + path, headers=headers, json=body) as r:
        return r.status, await r.json()


async def test_admin_created_and_renamed_agents(admin) -> None:
    http, base, svc, headers = admin
    body = {"email": "amy@example.com", "role": "agent", "password": "a long passphrase 41 x"}
    status, answer = await _call(
        http, base, "POST", "/api/agents", headers, {**body, "display_name": CARD_NAME}
    )
    assert (status, answer["error"]["code"], answer["error"]["field"]) == (
        400,
        "policy_blocked",
        "display_name",
    )
    assert "4111" not in str(answer)
    assert await svc.store.get_agent_by_email("amy@example.com") is None

    status, answer = await _call(
        http, base, "POST", "/api/agents", headers, {**body, "display_name": "Mr. John Smith"}
    )
    assert (status, answer["agent"]["display_name"]) == (201, "Mr. John Smith")
    path = f"/api/agents/{answer['agent']['id']}"
    status, answer = await _call(
        http, base, "PATCH", path, headers, {"display_name": "John 13800138000"}
    )
    assert (status, answer["agent"]["display_name"]) == (200, "John 138****8000")
    status, answer = await _call(
        http, base, "PATCH", path, headers, {"display_name": CARD_NAME, "disabled": True}
    )
    assert (status, answer["error"]["code"]) == (400, "policy_blocked")
    agent = await svc.store.get_agent_by_email("amy@example.com")
    assert agent is not None and agent.display_name == "John 138****8000"
    assert not agent.disabled  # a refused name changes nothing at all


async def test_invited_agents(admin) -> None:
    http, base, svc, headers = admin
    body = {"email": "bo@example.com", "role": "agent", "display_name": CARD_NAME}
    status, answer = await _call(http, base, "POST", "/api/invites", headers, body)
    assert (status, answer["error"]["code"]) == (400, "policy_blocked")
    assert await svc.store.list_invites("demo") == []
    body["display_name"] = "张伟先生"
    status, answer = await _call(http, base, "POST", "/api/invites", headers, body)
    assert status == 201, answer
    [invite] = await svc.store.list_invites("demo")
    assert invite.display_name == "张伟先生"
