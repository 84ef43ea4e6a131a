"""Scoped API tokens (issue 20.4) over real HTTP: issued once and hashed at rest, scope
enforced on every route of the app, audited on every use, rate-limited, revocable,
expiring, and never valid for the console (cookie) or the agent websocket."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest

from auth.roles import InstallationPermission, Permission, Principal, Role
from auth.tokens import hash_token
from gateway.api_tokens import api_tokens
from gateway.app import create_app
from gateway.config import load_config
from tests.gateway.helpers import (
    DEFAULT_PASSWORD,
    FakeClock,
    bearer,
    login,
    make_agent,
    make_tenant,
    start_gateway,
)


def _token_routes() -> list[tuple[str, str, object]]:
    """(method, path, required permission) of every route that accepts API tokens."""
    app = create_app(load_config(None, environ={}, overrides={}))
    found = []
    for route in app.router.routes():
        handler = route.handler
        if getattr(handler, "accepts_api_tokens", False) and route.method != "HEAD":
            found.append((route.method, route.resource.canonical, handler.required_permission))
    return sorted(found, key=lambda r: (r[1], r[0]))


def _session_only_routes() -> list[tuple[str, str]]:
    app = create_app(load_config(None, environ={}, overrides={}))
    return sorted(
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if hasattr(r.handler, "accepts_api_tokens")
        and r.method != "HEAD"
        and not r.handler.accepts_api_tokens
    )


TOKEN_ROUTES = _token_routes()
TENANT_ROUTES = [r for r in TOKEN_ROUTES if isinstance(r[2], Permission)]
INSTALLATION_ROUTES = [r for r in TOKEN_ROUTES if isinstance(r[2], InstallationPermission)]
SESSION_ONLY = _session_only_routes()


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "999999", path)


@pytest.fixture
async def gw(tmp_path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock)
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, clock
    await runner.cleanup()


async def _mint(svc, owner, scope, *, days=30):
    principal = Principal(owner.id, owner.tenant_id, Role(owner.role))
    issued = await api_tokens(svc).create(
        owner, principal, "test", sorted(scope), days, ip="127.0.0.1"
    )
    return issued.secret


async def _call(http, base, method, path, token):
    body = {} if method in ("POST", "PUT", "PATCH") else None
    async with http.request(method, base + _concrete(path), headers=bearer(token), json=body) as r:
        # a success may be a file (the quality report's CSV); refusals are always JSON --
        # SCIM's own error documents on /scim/v2, whose only 403 is the scope refusal
        if r.content_type == "application/scim+json":
            scim = await r.json(content_type=None)
            return r.status, "forbidden" if r.status == 403 else scim.get("scimType")
        data = await r.json() if r.content_type == "application/json" else None
        code = data.get("error", {}).get("code") if isinstance(data, dict) else None
        return r.status, code


def test_the_route_table_is_covered() -> None:
    # the parametrisations below must not silently become empty
    assert len(TENANT_ROUTES) >= 15 and len(INSTALLATION_ROUTES) == 5
    assert ("GET", "/api/me") in SESSION_ONLY and ("POST", "/api/tokens") in SESSION_ONLY


@pytest.mark.parametrize(
    ("method", "path", "permission"), TENANT_ROUTES, ids=[f"{m} {p}" for m, p, _ in TENANT_ROUTES]
)
async def test_tenant_token_scope_is_enforced_on_route(gw, method, path, permission):
    http, base, svc, _clock = gw
    admin, _, _ = await make_agent(svc, "root@example.com", role="admin")
    without = await _mint(svc, admin, {p.value for p in Permission} - {permission.value})
    with_it = await _mint(svc, admin, {permission.value})
    assert await _call(http, base, method, path, without) == (403, "forbidden")
    status, code = await _call(http, base, method, path, with_it)
    # past authentication and scope (a route may still refuse for its own reasons, e.g. a
    # step-up no token can give: 403 reauth_required)
    assert status != 401 and code not in ("forbidden", "token_not_allowed"), (status, code)


@pytest.mark.parametrize(
    ("method", "path", "permission"),
    INSTALLATION_ROUTES,
    ids=[f"{m} {p}" for m, p, _ in INSTALLATION_ROUTES],
)
async def test_operator_token_scope_is_enforced_on_route(gw, method, path, permission):
    http, base, svc, _clock = gw
    creds = await svc.logins.create_operator("ops@example.com", DEFAULT_PASSWORD)
    ops = creds.agent
    without = await _mint(svc, ops, {p.value for p in InstallationPermission} - {permission.value})
    with_it = await _mint(svc, ops, {permission.value})
    assert await _call(http, base, method, path, without) == (403, "forbidden")
    status, code = await _call(http, base, method, path, with_it)
    # past authentication and scope (a route may still refuse for its own reasons, e.g. a
    # step-up no token can give: 403 reauth_required)
    assert status != 401 and code not in ("forbidden", "token_not_allowed"), (status, code)


async def test_session_only_routes_refuse_every_api_token(gw):
    http, base, svc, _clock = gw
    admin, _, _ = await make_agent(svc, "root@example.com", role="admin")
    token = await _mint(svc, admin, {p.value for p in Permission})
    for method, path in SESSION_ONLY:
        assert await _call(http, base, method, path, token) == (403, "token_not_allowed"), path


async def test_token_is_shown_once_hashed_at_rest_and_audited_on_every_use(gw, tmp_path):
    http, base, svc, clock = gw
    _, secret, pw = await make_agent(svc, "root@example.com", role="admin")
    session = await login(http, base, "root@example.com", pw, secret, clock.now)
    async with http.post(
        f"{base}/api/tokens",
        headers=bearer(session),
        json={
            "name": "nightly export 夜间导出",
            "permissions": ["audit_read"],
            "expires_in_days": 7,
        },
    ) as r:
        created = await r.json()
        assert r.status == 201, created
    token, record = created["token"], created["api_token"]
    assert token.startswith("cdt_") and len(token) == 47
    assert record["permissions"] == ["audit_read"] and record["state"] == "live"
    assert record["expires_at"] == pytest.approx(clock.now + 7 * 86400)
    stored = await svc.store.get_api_token(hash_token(token))
    assert stored is not None and stored.id == record["id"]
    # neither the token nor anything that contains it is on disk
    on_disk = await asyncio.to_thread(
        lambda: [db.read_bytes() for db in Path(tmp_path / "data").rglob("*.db*")]
    )
    assert on_disk and all(token.encode() not in blob for blob in on_disk)
    async with http.get(f"{base}/api/tokens", headers=bearer(session)) as r:
        listed = await r.json()
    assert token not in str(listed) and stored.token_hash not in str(listed)
    assert [t["id"] for t in listed["tokens"]] == [record["id"]]

    for _ in range(2):
        async with http.get(f"{base}/api/audit?action=api_token.used", headers=bearer(token)) as r:
            assert r.status == 200
    events = await svc.store.query_audit(
        tenant_id="demo",
        action="api_token.used",
        actor=None,
        since=None,
        until=None,
        before_id=None,
        limit=10,
    )
    assert len(events) == 2
    assert all(
        e.target == record["id"]
        and e.details["route"] == "/api/audit"
        and e.details["method"] == "GET"
        for e in events
    )
    assert all(token not in str(e.details) for e in events)
    assert (await svc.store.get_api_token(hash_token(token))).last_used_at == clock.now
    created_events = await svc.store.query_audit(
        tenant_id="demo",
        action="api_token.created",
        actor=None,
        since=None,
        until=None,
        before_id=None,
        limit=10,
    )
    assert [e.target for e in created_events] == [record["id"]]


async def test_revoked_expired_demoted_and_disabled_tokens_stop_at_once(gw):
    http, base, svc, clock = gw
    admin, _secret, _pw = await make_agent(svc, "root@example.com", role="admin")
    _, s2, pw2 = await make_agent(svc, "second@example.com", role="admin")
    boss = await login(http, base, "second@example.com", pw2, s2, clock.now)
    revoked = await _mint(svc, admin, {"audit_read"})
    short = await _mint(svc, admin, {"audit_read"}, days=1)
    keeper = await _mint(svc, admin, {"audit_read", "chat_handle"})

    async def status(tok, path="/api/audit"):
        return await _call(http, base, "GET", path, tok)

    assert (await status(revoked))[0] == 200
    tid = (await svc.store.get_api_token(hash_token(revoked))).id
    async with http.delete(f"{base}/api/tokens/{tid}", headers=bearer(boss)) as r:
        assert r.status == 200
    async with http.delete(f"{base}/api/tokens/{tid}", headers=bearer(boss)) as r:
        assert r.status == 404
    assert await status(revoked) == (401, "unauthenticated")

    clock.advance(86400)
    assert await status(short) == (401, "unauthenticated")
    assert (await status(keeper))[0] == 200
    # demoting the creator cuts the token down to the new role at once
    admin.role = "agent"
    await svc.store.update_agent(admin)
    assert await status(keeper) == (403, "forbidden")
    # disabling the creator kills it
    await svc.logins.set_disabled(admin, True, actor="test", ip="127.0.0.1")
    assert await status(keeper) == (401, "unauthenticated")


async def test_creation_rules(gw):
    http, base, svc, clock = gw
    await make_tenant(svc, "acme", ["https://acme.example"])
    _, secret, pw = await make_agent(svc, "root@example.com", role="admin")
    _, ss, spw = await make_agent(svc, "sup@example.com", role="supervisor")
    _, acs, acpw = await make_agent(svc, "root@acme.example", tenant="acme", role="admin")
    session = await login(http, base, "root@example.com", pw, secret, clock.now)
    sup = await login(http, base, "sup@example.com", spw, ss, clock.now)
    acme = await login(http, base, "root@acme.example", acpw, acs, clock.now)

    async def create(tok, **body):
        payload = {"name": "ci", "permissions": ["audit_read"], **body}
        async with http.post(f"{base}/api/tokens", headers=bearer(tok), json=payload) as r:
            data = await r.json()
            return r.status, data.get("error", {}).get("code"), data

    assert (await create(sup))[:2] == (403, "forbidden")
    assert (await create(session, permissions=["keys_rotate"]))[:2] == (400, "invalid_scope")
    assert (await create(session, permissions=["root"]))[:2] == (400, "invalid_scope")
    assert (await create(session, permissions=[]))[:2] == (400, "invalid_scope")
    assert (await create(session, expires_in_days=0))[:2] == (400, "invalid_lifetime")
    assert (await create(session, expires_in_days=366))[:2] == (400, "invalid_lifetime")
    assert (await create(session, name="a\x00b"))[:2] == (400, "invalid_name")
    assert (await create(session, name="   "))[:2] == (400, "invalid_name")
    status, _, data = await create(session)
    assert status == 201
    # an API token can never mint another one
    assert (await create(data["token"]))[:2] == (403, "token_not_allowed")
    # another tenant's admin neither sees nor revokes it
    async with http.get(f"{base}/api/tokens", headers=bearer(acme)) as r:
        assert (await r.json())["tokens"] == []
    async with http.delete(
        f"{base}/api/tokens/{data['api_token']['id']}", headers=bearer(acme)
    ) as r:
        assert r.status == 404
    # creating a credential needs a fresh step-up (the login counted for 5 minutes)
    clock.advance(svc.config.auth.reauth_window + 1)
    assert (await create(session))[:2] == (403, "reauth_required")


async def test_api_tokens_are_rate_limited_per_token(tmp_path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(
        tmp_path, clock=clock, ratelimit={"limits": {"api_per_token": "3/m"}}
    )
    try:
        admin, _, _ = await make_agent(svc, "root@example.com", role="admin")
        one = await _mint(svc, admin, {"audit_read"})
        other = await _mint(svc, admin, {"audit_read"})
        async with aiohttp.ClientSession() as http:
            got = [(await _call(http, base, "GET", "/api/audit", one))[0] for _ in range(4)]
            assert got == [200, 200, 200, 429]
            assert (await _call(http, base, "GET", "/api/audit", other))[0] == 200
    finally:
        await runner.cleanup()


async def test_api_token_is_no_console_credential(gw):
    http, base, svc, _clock = gw
    admin, _, _ = await make_agent(svc, "root@example.com", role="admin")
    token = await _mint(svc, admin, {p.value for p in Permission})
    # as the console's cookie it is just an unknown session
    async with http.get(f"{base}/api/audit", cookies={"cd_session": token}) as r:
        assert r.status == 401
    # the agent websocket refuses it with 4401
    ws = await http.ws_connect(f"{base}/ws/agent", headers=bearer(token))
    try:
        while True:
            msg = await asyncio.wait_for(ws.receive(), 5)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4401
    finally:
        await ws.close()


async def test_operator_token_cli_create_use_list_revoke(tmp_path):
    from tests.gateway.test_cli_admin import PASSWORD, cli

    data = tmp_path / "data"
    assert (await asyncio.to_thread(cli, data, "init")).returncode == 0
    out = await asyncio.to_thread(
        cli, data, "operator", "add", "ops@example.com", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert out.returncode == 0, out.stderr
    out = await asyncio.to_thread(
        cli,
        data,
        "operator",
        "token",
        "create",
        "ops@example.com",
        "--name",
        "backup bot",
        "--permission",
        "settings",
    )
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip().splitlines()[-1]
    assert token.startswith("cdt_")
    # a tenant account cannot own an installation token
    out = await asyncio.to_thread(
        cli,
        data,
        "operator",
        "token",
        "create",
        "nobody@example.com",
        "--name",
        "x",
        "--permission",
        "settings",
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr

    runner, base, _svc = await start_gateway(tmp_path)
    try:
        async with aiohttp.ClientSession() as http:
            assert (await _call(http, base, "GET", "/api/operator/settings", token))[0] == 200
            assert await _call(http, base, "GET", "/api/operator/tenants", token) == (200, None)
            assert await _call(http, base, "POST", "/api/operator/tenants", token) == (
                403,
                "forbidden",
            )
    finally:
        await runner.cleanup()
    out = await asyncio.to_thread(cli, data, "operator", "token", "list")
    assert "backup bot" in out.stdout and "live" in out.stdout and token not in out.stdout
    token_id = out.stdout.split()[0]
    out = await asyncio.to_thread(cli, data, "operator", "token", "revoke", token_id)
    assert out.returncode == 0, out.stderr
    out = await asyncio.to_thread(cli, data, "operator", "token", "list")
    assert "revoked" in out.stdout
