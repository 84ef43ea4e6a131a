"""Creating agents: no cross-tenant oracle, no guessable passwords (issue 11.12)."""

from __future__ import annotations

import aiohttp
import pytest

from tests.gateway.helpers import FakeClock, bearer, login, make_agent, make_tenant, start_gateway

STRONG = "lantern orbit marble quietly 7"


@pytest.fixture
async def gw(tmp_path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock)
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, clock
    await runner.cleanup()


async def _admin(http, base, svc, clock, email, tenant):
    _, secret, pw = await make_agent(svc, email, tenant=tenant, role="admin")
    return await login(http, base, email, pw, secret, clock.now)


async def _create(http, base, token, email, password=STRONG):
    async with http.post(
        f"{base}/api/agents",
        headers=bearer(token),
        json={"email": email, "role": "agent", "password": password},
    ) as r:
        return r.status, await r.json()


async def test_taken_address_answers_the_same_for_any_tenant_and_costs_the_same(gw):
    """Old code answered a taken address before hashing (fast) and said it "already
    exists"; a free one cost an argon2 hash. The timing told a tenant admin which
    addresses other tenants use."""
    http, base, svc, clock = gw
    await make_tenant(svc, "acme")
    foreign, _, _ = await make_agent(svc, "someone@acme.example", tenant="acme")
    token = await _admin(http, base, svc, clock, "boss@demo.example", "demo")
    await make_agent(svc, "mine@demo.example", tenant="demo")

    hashed: list[str] = []
    real_hash = svc.logins._hash

    async def counting_hash(password: str) -> str:
        hashed.append("x")
        return await real_hash(password)

    svc.logins._hash = counting_hash
    own = await _create(http, base, token, "mine@demo.example")
    other = await _create(http, base, token, "someone@acme.example")
    free = await _create(http, base, token, "brand-new@demo.example")
    assert own == other  # byte-for-byte the same answer
    assert own[0] == 409 and own[1]["error"]["code"] == "email_taken"
    message = own[1]["error"]["message"].lower()
    assert "exist" not in message and "tenant" not in message and "acme" not in message
    assert free[0] == 201
    assert len(hashed) == 3  # every path did the same argon2 work
    # The operator sees the cross-tenant conflict (installation-level audit, no address).
    conflicts = await svc.store.query_audit(action="agent.email_conflict")
    assert len(conflicts) == 1 and conflicts[0].tenant_id is None
    assert conflicts[0].target == foreign.id
    assert "someone@acme.example" not in str(conflicts[0].details)
    # The requesting tenant's own audit says only that it was refused.
    refused = await svc.store.query_audit(tenant_id="demo", action="agent.create_refused")
    assert len(refused) == 2 and all(e.target is None for e in refused)


@pytest.mark.parametrize("password", ["abcdefghijkl", "pwpol1pwpol1"])
async def test_guessable_passwords_refused_with_a_clear_code(gw, password):
    """Both were accepted before (12+ characters, not on the common-password list)."""
    http, base, svc, clock = gw
    token = await _admin(http, base, svc, clock, "admin@demo.example", "demo")
    status, body = await _create(http, base, token, "new.agent@demo.example", password)
    assert status == 400
    error = body["error"]
    assert error["code"] == "weak_password" and error["reason"] == "guessable"
    assert password not in error["message"]
    assert await svc.store.get_agent_by_email("new.agent@demo.example") is None


async def test_own_name_in_the_password_is_guessable(gw):
    http, base, svc, clock = gw
    token = await _admin(http, base, svc, clock, "admin@demo.example", "demo")
    async with http.post(
        f"{base}/api/agents",
        headers=bearer(token),
        json={
            "email": "wxm@demo.example",
            "role": "agent",
            "display_name": "Wang Xiaoming",
            "password": "wangxiaoming2024",
        },
    ) as r:
        body = await r.json()
    assert r.status == 400 and body["error"]["reason"] == "guessable"
