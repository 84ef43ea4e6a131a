"""The installation operator (issue 11.4): created only with the CLI, in no tenant, the
only role that may rotate the master key, create tenants or freeze any tenant.

Before: a tenant admin's EMERGENCY permission reached ``/api/emergency/rotate-keys`` and
rewrapped every other tenant's keys; there was no operator role at all.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from auth.roles import OPERATOR_SCOPE
from gateway.logins import CredentialError
from tests.gateway.helpers import (
    DEFAULT_PASSWORD,
    bearer,
    login,
    make_agent,
    make_tenant,
    start_gateway,
    totp_code,
)
from tests.gateway.test_cli_admin import PASSWORD, _secret, cli


async def test_cli_creates_an_operator_who_logs_in_and_runs_the_installation(tmp_path):
    data = tmp_path / "data"
    assert cli(data, "init").returncode == 0
    out = cli(data, "operator", "add", "Ops@Example.com", "--password-stdin", stdin=PASSWORD + "\n")
    assert out.returncode == 0, out.stderr
    assert PASSWORD not in out.stdout + out.stderr
    secret = _secret(out.stdout)
    listed = cli(data, "operator", "list")
    assert listed.returncode == 0 and "ops@example.com" in listed.stdout
    tenants = cli(data, "tenant", "list")
    assert OPERATOR_SCOPE not in tenants.stdout  # the placeholder is not a tenant

    runner, base, svc = await start_gateway(tmp_path)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{base}/api/login",
                json={
                    "email": "ops@example.com",
                    "password": PASSWORD,
                    "otp": totp_code(secret, time.time()),
                },
            ) as r:
                assert r.status == 200, await r.text()
                ops = (await r.json())["token"]
            async with http.get(f"{base}/api/me", headers=bearer(ops)) as r:
                me = await r.json()
            assert me["role"] == "operator" and me["tenant"] is None
            assert me["permissions"] == []
            assert set(me["installation_permissions"]) == {
                "keys_rotate",
                "tenant_create",
                "tenant_freeze",
                "settings",
            }
            async with http.post(
                f"{base}/api/operator/tenants",
                headers=bearer(ops),
                json={"id": "acme", "name": "ACME", "allowed_origins": ["https://ACME.example"]},
            ) as r:
                assert r.status == 201, await r.text()
                assert (await r.json())["tenant"]["allowed_origins"] == ["https://acme.example"]
            async with http.post(
                f"{base}/api/operator/tenants",
                headers=bearer(ops),
                json={"id": "acme", "name": "again"},
            ) as r:
                assert r.status == 409 and (await r.json())["error"]["code"] == "tenant_exists"
            async with http.post(
                f"{base}/api/operator/tenants",
                headers=bearer(ops),
                json={"id": "Bad Id!", "name": "x"},
            ) as r:
                assert r.status == 400 and (await r.json())["error"]["field"] == "id"
            async with http.get(f"{base}/api/operator/tenants", headers=bearer(ops)) as r:
                ids = [t["id"] for t in (await r.json())["tenants"]]
            assert "acme" in ids and OPERATOR_SCOPE not in ids
            async with http.get(f"{base}/api/operator/settings", headers=bearer(ops)) as r:
                settings = await r.json()
            assert settings["key_ids"] == list(svc.keyring.key_ids)
            assert settings["operators"] == 1 and settings["store"] == "sqlite"
    finally:
        await runner.cleanup()
    created = await _audit_after(tmp_path, "tenant.created")
    assert created and created[0]


async def _audit_after(tmp_path, action):
    runner, _base, svc = await start_gateway(tmp_path)
    try:
        return [e.actor for e in await svc.store.query_audit(action=action)]
    finally:
        await runner.cleanup()


@pytest.fixture
async def gw(tmp_path):
    runner, base, svc = await start_gateway(tmp_path)
    async with aiohttp.ClientSession() as http:
        yield http, base, svc
    await runner.cleanup()


async def _tokens(http, base, svc):
    await make_tenant(svc, "acme", ["https://acme.example"])
    creds = await svc.logins.create_operator("ops@example.com", DEFAULT_PASSWORD)
    _, asecret, apw = await make_agent(svc, "admin@demo.example", role="admin")
    now = time.time()
    ops = await login(http, base, "ops@example.com", DEFAULT_PASSWORD, creds.totp_secret, now)
    admin = await login(http, base, "admin@demo.example", apw, asecret, now)
    return ops, admin


INSTALLATION_ROUTES = [
    ("POST", "/api/emergency/rotate-keys", None),
    ("GET", "/api/operator/tenants", None),
    ("POST", "/api/operator/tenants", {"id": "evil", "name": "Evil"}),
    ("POST", "/api/operator/tenants/acme/freeze", {"frozen": True}),
    ("GET", "/api/operator/settings", None),
]


async def test_tenant_admin_gets_403_on_every_installation_action(gw):
    http, base, svc = gw
    _, admin = await _tokens(http, base, svc)
    ring = svc.keyring.key_ids
    for method, path, body in INSTALLATION_ROUTES:
        async with http.request(method, base + path, headers=bearer(admin), json=body) as r:
            data = await r.json()
            assert r.status == 403 and data["error"]["code"] == "forbidden", (path, data)
    assert svc.keyring.key_ids == ring
    assert await svc.store.get_tenant("evil") is None
    assert not (await svc.store.get_tenant("acme")).frozen


async def test_operator_freezes_any_tenant_but_has_no_tenant_powers(gw):
    http, base, svc = gw
    ops, _ = await _tokens(http, base, svc)
    async with http.post(
        f"{base}/api/operator/tenants/acme/freeze", headers=bearer(ops), json={"frozen": True}
    ) as r:
        assert r.status == 200
    assert (await svc.store.get_tenant("acme")).frozen
    events = await svc.store.query_audit(action="tenant.frozen")
    assert events and events[0].tenant_id == "acme"
    for path in (
        f"/api/operator/tenants/{OPERATOR_SCOPE}/freeze",
        "/api/operator/tenants/nope/freeze",
    ):
        async with http.post(base + path, headers=bearer(ops), json={"frozen": True}) as r:
            assert r.status == 404
    # Tenant-scoped endpoints: the operator holds none of their permissions.
    for method, path in (
        ("GET", "/api/agents"),
        ("GET", "/api/tenant"),
        ("GET", "/api/audit"),
        ("GET", "/api/flags"),
    ):
        async with http.request(method, base + path, headers=bearer(ops)) as r:
            assert r.status == 403, path
    async with http.post(
        f"{base}/api/agents",
        headers=bearer(ops),
        json={
            "email": "x@acme.example",
            "role": "admin",
            "password": DEFAULT_PASSWORD,
            "tenant": "acme",
        },
    ) as r:
        assert r.status == 403
    # No chat console either.
    ws = await http.ws_connect(f"{base}/ws/agent", headers=bearer(ops))
    try:
        while True:
            msg = await asyncio.wait_for(ws.receive(), 5)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4403
    finally:
        await ws.close()


async def test_no_api_or_agent_path_creates_an_operator(gw):
    http, base, svc = gw
    _, admin = await _tokens(http, base, svc)
    async with http.post(
        f"{base}/api/agents",
        headers=bearer(admin),
        json={"email": "sneaky@demo.example", "role": "operator", "password": DEFAULT_PASSWORD},
    ) as r:
        assert r.status == 400 and (await r.json())["error"]["field"] == "role"
    with pytest.raises(CredentialError) as info:
        await svc.logins.create_agent("sneaky@demo.example", "demo", "operator", DEFAULT_PASSWORD)
    assert info.value.code == "invalid_role"
    with pytest.raises(CredentialError) as info:
        await svc.logins.create_agent(
            "sneaky@demo.example", OPERATOR_SCOPE, "admin", DEFAULT_PASSWORD
        )
    assert info.value.code == "not_found"
    assert json.dumps([a.email for a in await svc.store.list_agents()]).count("sneaky") == 0
