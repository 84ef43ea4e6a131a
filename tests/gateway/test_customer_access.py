"""A signed-in customer downloads their own chats from the widget (issue 15.2) over real
HTTP on SQLite and PostgreSQL: the fresh identity token is the only proof (single use),
only the tenant's allowed origins may ask (CORS answered for them alone), the answer is
the customer's chats and nobody else's, masked for the export audience, audited."""

from __future__ import annotations

import uuid
from pathlib import Path

import aiohttp
import pytest

from auth.identity import sign_identity
from auth.roles import Principal, Role
from gateway.services import Services
from tests.gateway.helpers import FakeClock, bearer, login, make_agent, start_gateway

SECRET = "shop-identity-secret-" + "x" * 24
ORIGIN = "https://shop.example"
CARD = "4111 1111 1111 1111"


@pytest.fixture
async def gw(service_store_url: str, tmp_path: Path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock, store={"url": service_store_url})
    async with aiohttp.ClientSession() as http:
        email = "root@example.com"
        _, secret, pw = await make_agent(svc, email, role="admin")
        admin = bearer(await login(http, base, email, pw, secret, clock.now))
        async with http.patch(
            f"{base}/api/tenant",
            json={
                "identity_mode": "optional",
                "identity_secrets": [SECRET],
                "allowed_origins": [ORIGIN],
            },
            headers=admin,
        ) as r:
            assert r.status == 200, await r.text()
        yield http, base, svc, clock
    await runner.cleanup()


def _token(clock: FakeClock, sub: str) -> str:
    claims = {"sub": sub, "exp": int(clock.now) + 60, "nonce": uuid.uuid4().hex}
    return sign_identity(SECRET, claims)


async def _chat(svc: Services, clock: FakeClock, sub: str, text: str) -> str:
    agent, _, _ = await make_agent(svc, f"a-{uuid.uuid4().hex[:6]}@example.com")
    who = Principal(agent_id=agent.id, tenant_id="demo", role=Role.AGENT)
    opened = await svc.chats.open_chat("demo", identity_token=_token(clock, sub))
    await svc.chats.accept(who, opened.chat.id)
    await svc.chats.post_customer_message("demo", opened.chat.id, "m1", text)
    await svc.chats.post_agent_message(who, opened.chat.id, "a1", "thanks, noted")
    await svc.chats.close(opened.chat.id, "demo", by="agent", principal=who)
    return opened.chat.id


async def _export(http, base, token: str, origin: str | None = ORIGIN, tenant: str = "demo"):
    headers = {"Origin": origin} if origin else {}
    async with http.post(
        f"{base}/api/public/export/{tenant}", json={"identity": token}, headers=headers
    ) as r:
        return r.status, dict(r.headers), await r.json()


async def test_the_customer_gets_their_own_chats_once_per_token(gw) -> None:
    http, base, svc, clock = gw
    mine = await _chat(svc, clock, "u-1", f"my card is {CARD}")
    await _chat(svc, clock, "u-2", "someone else's question")
    token = _token(clock, "u-1")
    status, headers, body = await _export(http, base, token)
    assert status == 200, body
    assert headers["Access-Control-Allow-Origin"] == ORIGIN and headers["Vary"] == "Origin"
    assert headers["Cache-Control"] == "no-store"
    assert [c["id"] for c in body["chats"]] == [mine]
    texts = [m["text"] for m in body["chats"][0]["messages"]]
    assert texts[0] == "my card is **** **** **** 1111" and texts[1] == "thanks, noted"
    assert CARD not in str(body) and "someone else" not in str(body)
    audit = await svc.store.query_audit(action="customer.exported", limit=5)
    assert audit[0].actor == "customer" and audit[0].details["chats"] == 1

    # the same token again: refused (single use), with CORS so the widget can read why
    status, headers, body = await _export(http, base, token)
    assert (status, body["error"]["code"]) == (401, "identity_replayed")
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    forged = sign_identity("another-secret-" + "y" * 24, {"sub": "u-1", "exp": 2**40, "nonce": "n"})
    status, _, body = await _export(http, base, forged)
    assert (status, body["error"]["code"]) == (401, "identity_invalid")


async def test_only_the_tenants_sites_may_ask(gw) -> None:
    http, base, _svc, clock = gw
    for origin in ("https://evil.example", None):
        status, headers, body = await _export(http, base, _token(clock, "u-1"), origin)
        assert (status, body["error"]["code"]) == (403, "forbidden")
        assert "Access-Control-Allow-Origin" not in headers
    status, _, body = await _export(http, base, _token(clock, "u-1"), tenant="nope")
    assert (status, body["error"]["code"]) == (404, "not_found")
    async with http.options(
        f"{base}/api/public/export/demo",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    ) as r:
        assert r.status == 204
        assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert r.headers["Access-Control-Allow-Headers"] == "Content-Type"
    async with http.options(
        f"{base}/api/public/export/demo", headers={"Origin": "https://evil.example"}
    ) as r:
        assert r.status == 403


async def test_a_tenant_without_signed_customers_refuses(gw) -> None:
    http, base, svc, clock = gw
    tenant = await svc.store.get_tenant("demo")
    assert tenant is not None
    tenant.identity_mode = "off"
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate("demo")
    status, _, body = await _export(http, base, _token(clock, "u-1"))
    assert (status, body["error"]["code"]) == (403, "identity_off")
