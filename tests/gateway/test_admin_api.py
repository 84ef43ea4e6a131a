"""Admin API over real HTTP: roles, tenant isolation on every endpoint, audit, tenant
settings, policy test, flags, erase, emergency freeze."""

from __future__ import annotations

import json

import aiohttp
import pytest

from crypto.envelope import new_data_key
from gateway.store.base import Chat, PolicyFlag
from tests.gateway.helpers import (
    FakeClock,
    bearer,
    login,
    make_agent,
    make_tenant,
    start_gateway,
)

SECRET_32 = "s" * 16 + "e" * 16 + "cret-tail"


@pytest.fixture
async def gw(tmp_path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock)
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, clock
    await runner.cleanup()


async def _token(http, base, svc, clock, email, *, tenant="demo", role="agent"):
    agent, secret, pw = await make_agent(svc, email, tenant=tenant, role=role)
    return agent, await login(http, base, email, pw, secret, clock.now)


async def _demo_chat_and_flag(svc, clock):
    chat = Chat(id="chat-demo-1", tenant_id="demo", state="closed", created_at=clock.now)
    await svc.store.create_chat(chat, svc.keyring.wrap(new_data_key()))
    flag_id = await svc.store.add_flag(
        PolicyFlag(
            chat_id=chat.id,
            tenant_id="demo",
            seq=1,
            kinds=["card"],
            original_sealed=b"x" * 40,
            created_at=clock.now,
        )
    )
    return chat, flag_id


async def test_cross_tenant_refused_on_every_admin_endpoint(gw):
    http, base, svc, clock = gw
    await make_tenant(svc, "acme", ["https://acme.example"])
    demo_agent, _ = await _token(http, base, svc, clock, "demo.agent@example.com")
    _, acme_admin = await _token(
        http, base, svc, clock, "root@acme.example", tenant="acme", role="admin"
    )
    chat, flag_id = await _demo_chat_and_flag(svc, clock)
    h = bearer(acme_admin)
    did = demo_agent.id
    # A resource of another tenant answers like a missing one (404 not_found); acting in
    # another tenant without naming one of its resources is a role refusal (403).
    NOT_FOUND, FORBIDDEN = (404, "not_found"), (403, "forbidden")
    refusals = [
        ("PATCH", f"/api/agents/{did}", {"role": "admin"}, NOT_FOUND),
        ("POST", f"/api/agents/{did}/unlock", None, NOT_FOUND),
        ("POST", f"/api/agents/{did}/revoke-sessions", None, NOT_FOUND),
        ("POST", f"/api/agents/{did}/reset-mfa", None, NOT_FOUND),
        (
            "POST",
            "/api/agents",
            {
                "email": "mole@example.com",
                "role": "admin",
                "password": "a long enough passphrase 1",
                "tenant": "demo",
            },
            FORBIDDEN,
        ),
        (
            "POST",
            "/api/policy/test",
            {"text": "hi", "direction": "customer", "tenant": "demo"},
            FORBIDDEN,
        ),
        ("GET", f"/api/flags/{flag_id}/original", None, NOT_FOUND),
        ("POST", f"/api/chats/{chat.id}/erase", None, NOT_FOUND),
    ]
    for method, path, body, expected in refusals:
        async with http.request(method, base + path, json=body, headers=h) as r:
            text = await r.text()
            got = (r.status, json.loads(text)["error"]["code"])
            assert got == expected, (method, path, text)
    # nothing changed in tenant demo
    fresh = await svc.store.get_agent(did)
    assert fresh.role == "agent" and fresh.totp_confirmed
    assert await svc.store.get_agent_by_email("mole@example.com") is None
    assert await svc.store.get_chat_key(chat.id) is not None
    async with http.get(f"{base}/api/agents", headers=h) as r:
        emails = [a["email"] for a in (await r.json())["agents"]]
        assert emails == ["root@acme.example"]
    async with http.get(f"{base}/api/audit", headers=h) as r:
        events = (await r.json())["events"]
        assert events and all(e["tenant"] == "acme" for e in events)
    async with http.get(f"{base}/api/tenant", headers=h) as r:
        assert (await r.json())["tenant"]["id"] == "acme"
    async with http.get(f"{base}/api/flags", headers=h) as r:
        assert (await r.json())["flags"] == []
    async with http.post(f"{base}/api/emergency/freeze", headers=h, json={"frozen": True}) as r:
        assert r.status == 200
    assert (await svc.store.get_tenant("acme")).frozen
    assert not (await svc.store.get_tenant("demo")).frozen


async def test_roles_are_enforced(gw):
    http, base, svc, clock = gw
    _, agent = await _token(http, base, svc, clock, "plain@example.com")
    _, sup = await _token(http, base, svc, clock, "sup@example.com", role="supervisor")
    for token in (agent, sup):
        for method, path, body in [
            ("GET", "/api/agents", None),
            ("GET", "/api/audit", None),
            ("GET", "/api/tenant", None),
            ("PATCH", "/api/tenant", {"name": "x"}),
            ("POST", "/api/emergency/freeze", {"frozen": True}),
        ]:
            async with http.request(method, base + path, json=body, headers=bearer(token)) as r:
                assert r.status == 403, (path, await r.text())
                assert (await r.json())["error"]["code"] == "forbidden"
    async with http.get(f"{base}/api/flags", headers=bearer(agent)) as r:
        assert r.status == 403
    async with http.get(f"{base}/api/flags", headers=bearer(sup)) as r:
        assert r.status == 200
    async with http.get(f"{base}/api/agents") as r:
        assert r.status == 401


async def test_flags_come_a_page_at_a_time_newest_first(gw):
    """Customers make flags, so a tenant may hold millions: never all in one answer."""
    http, base, svc, clock = gw
    _, sup = await _token(http, base, svc, clock, "sup@example.com", role="supervisor")
    opened = await svc.chats.open_chat("demo")
    ids = [
        await svc.store.add_flag(PolicyFlag(opened.chat.id, "demo", seq, ["card"], b"o", 1.0))
        for seq in range(1, 6)
    ]
    pages, query = [], "?limit=2"
    while query is not None:
        async with http.get(f"{base}/api/flags{query}", headers=bearer(sup)) as r:
            assert r.status == 200
            body = await r.json()
        pages.append([f["id"] for f in body["flags"]])
        after = body["next_before"]
        query = None if after is None else f"?limit=2&before={after}"
    assert pages == [[ids[4], ids[3]], [ids[2], ids[1]], [ids[0]]]
    async with http.get(f"{base}/api/flags", headers=bearer(sup)) as r:
        body = await r.json()
        assert (len(body["flags"]), body["next_before"]) == (5, None)  # one page of 100
    for query, field in (("limit=0", "limit"), ("limit=501", "limit"), ("before=x", "before")):
        async with http.get(f"{base}/api/flags?{query}", headers=bearer(sup)) as r:
            assert r.status == 400
            error = (await r.json())["error"]
            assert (error["code"], error["field"]) == ("bad_request", field)


async def test_policy_test_supervisor_yes_agent_no(gw):
    http, base, svc, clock = gw
    _, agent = await _token(http, base, svc, clock, "plain@example.com")
    _, sup = await _token(http, base, svc, clock, "sup@example.com", role="supervisor")
    body = {"text": "my card is 4111 1111 1111 1111", "direction": "customer"}
    async with http.post(f"{base}/api/policy/test", json=body, headers=bearer(sup)) as r:
        assert r.status == 200, await r.text()
        data = await r.json()
        assert data["action"] in ("mask", "flag", "block")
        assert "4111 1111 1111 1111" not in (data["text"] or "")
        assert any(f["kind"] for f in data["findings"])
    async with http.post(f"{base}/api/policy/test", json=body, headers=bearer(agent)) as r:
        assert r.status == 403
    async with http.post(
        f"{base}/api/policy/test", headers=bearer(sup), json={"text": "x", "direction": "sideways"}
    ) as r:
        assert r.status == 400 and (await r.json())["error"]["field"] == "direction"


async def test_agent_management_flow(gw):
    http, base, svc, clock = gw
    admin_agent, admin = await _token(http, base, svc, clock, "admin@example.com", role="admin")
    h = bearer(admin)
    async with http.post(
        f"{base}/api/agents",
        headers=h,
        json={
            "email": "New.Hire@Example.com",
            "role": "agent",
            "password": "a long enough passphrase 1",
            "display_name": "New Hire",
        },
    ) as r:
        assert r.status == 201, await r.text()
        created = await r.json()
    assert created["agent"]["email"] == "new.hire@example.com"
    assert created["otpauth_uri"].startswith("otpauth://")
    assert len(created["recovery_codes"]) == 10
    assert "password_hash" not in created["agent"]
    nid = created["agent"]["id"]
    async with http.post(
        f"{base}/api/agents",
        headers=h,
        json={
            "email": "new.hire@example.com",
            "role": "agent",
            "password": "a long enough passphrase 1",
        },
    ) as r:
        assert r.status == 409 and (await r.json())["error"]["code"] == "email_taken"
    async with http.post(
        f"{base}/api/agents",
        headers=h,
        json={"email": "x@example.com", "role": "agent", "password": "password1"},
    ) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "weak_password"
    async with http.patch(f"{base}/api/agents/{nid}", headers=h, json={"role": "supervisor"}) as r:
        assert r.status == 200 and (await r.json())["agent"]["role"] == "supervisor"
    changed = await svc.store.query_audit(action="role.changed")
    assert changed[0].details == {"old_role": "agent", "new_role": "supervisor"}
    async with http.patch(f"{base}/api/agents/{nid}", headers=h, json={"disabled": True}) as r:
        assert r.status == 200 and (await r.json())["agent"]["disabled"] is True
    async with http.patch(
        f"{base}/api/agents/{admin_agent.id}", headers=h, json={"role": "agent"}
    ) as r:
        assert r.status == 409 and (await r.json())["error"]["code"] == "last_admin"
    async with http.patch(f"{base}/api/agents/{nid}", headers=h, json={"role": "god"}) as r:
        assert r.status == 400
    async with http.patch(f"{base}/api/agents/nope", headers=h, json={}) as r:
        assert r.status == 404
    async with http.post(f"{base}/api/agents/{nid}/reset-mfa", headers=h) as r:
        assert r.status == 200 and (await r.json())["agent"]["totp_confirmed"] is False
    async with http.get(f"{base}/api/audit?action=mfa.reset&limit=5", headers=h) as r:
        events = (await r.json())["events"]
        assert len(events) == 1 and events[0]["target"] == nid
    async with http.get(f"{base}/api/audit?limit=0", headers=h) as r:
        assert r.status == 400 and (await r.json())["error"]["field"] == "limit"
    async with http.get(f"{base}/api/audit?since=abc", headers=h) as r:
        assert r.status == 400
    async with http.get(f"{base}/api/audit?limit=2", headers=h) as r:
        page = await r.json()
    async with http.get(
        f"{base}/api/audit?limit=2&before_id={page['next_before_id']}", headers=h
    ) as r:
        page2 = await r.json()
    assert page2["events"][0]["id"] < page["events"][-1]["id"]


async def test_tenant_settings_never_return_secrets(gw):
    http, base, svc, clock = gw
    _, admin = await _token(http, base, svc, clock, "admin@example.com", role="admin")
    h = bearer(admin)
    async with http.patch(
        f"{base}/api/tenant",
        headers=h,
        json={
            "allowed_origins": ["https://Shop.Example.com/"],
            "identity_mode": "enforced",
            "identity_secrets": [SECRET_32],
        },
    ) as r:
        text = await r.text()
        assert r.status == 200, text
    assert SECRET_32 not in text
    tenant = json.loads(text)["tenant"]
    assert tenant["allowed_origins"] == ["https://shop.example.com"]
    assert len(tenant["identity_secrets"][0]["fingerprint"]) == 16
    stored = await svc.store.get_tenant("demo")
    assert svc.tenants.identity_secrets(stored) == [SECRET_32]
    async with http.patch(
        f"{base}/api/tenant", headers=h, json={"identity_secrets": ["short"]}
    ) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_secret"
    async with http.patch(
        f"{base}/api/tenant", headers=h, json={"allowed_origins": ["javascript:alert(1)"]}
    ) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_origin"
    async with http.patch(f"{base}/api/tenant", headers=h, json={"bogus": 1}) as r:
        assert r.status == 400 and (await r.json())["error"]["field"] == "bogus"
    audit = json.dumps([e.details for e in await svc.store.query_audit(limit=200)])
    assert SECRET_32 not in audit


async def test_erase_and_flags_in_own_tenant(gw):
    http, base, svc, clock = gw
    _, admin = await _token(http, base, svc, clock, "admin@example.com", role="admin")
    chat, flag_id = await _demo_chat_and_flag(svc, clock)
    async with http.get(f"{base}/api/flags", headers=bearer(admin)) as r:
        assert [f["id"] for f in (await r.json())["flags"]] == [flag_id]
    async with http.get(f"{base}/api/flags/abc/original", headers=bearer(admin)) as r:
        assert r.status == 404
    async with http.post(f"{base}/api/chats/{chat.id}/erase", headers=bearer(admin)) as r:
        assert r.status == 200 and (await r.json())["erased"] is True
    assert await svc.store.get_chat_key(chat.id) is None
    async with http.post(f"{base}/api/chats/missing/erase", headers=bearer(admin)) as r:
        assert r.status == 404
