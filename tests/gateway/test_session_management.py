"""Session management (issue 20.5) over real HTTP and websockets: an agent lists and ends
their own sessions (live sockets close 4401); admins see last logins and dormant accounts;
the tenant's "disable after N days dormant" rule is enforced at login and by the sweep."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import pytest
from nacl.public import PrivateKey

from gateway.governance.dormancy import DormancySweep
from tests.gateway.helpers import FakeClock, bearer, make_agent, start_gateway, totp_code

DAY = 86400.0
CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/120.0 Safari/537.36"
)
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"


@pytest.fixture
async def gw(tmp_path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock)
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, clock
    await runner.cleanup()


async def _login(http, base, email, pw, secret, clock, ua=CHROME_WIN):
    async with http.post(
        f"{base}/api/login",
        headers={"User-Agent": ua},
        json={"email": email, "password": pw, "otp": totp_code(secret, clock.now)},
    ) as r:
        body = await r.json()
        return r.status, body.get("token")


async def _sessions(http, base, token):
    async with http.get(f"{base}/api/me/sessions", headers=bearer(token)) as r:
        assert r.status == 200
        return (await r.json())["sessions"]


async def test_agent_ends_another_of_their_sessions_and_its_socket_closes_4401(gw):
    http, base, svc, clock = gw
    _, secret, pw = await make_agent(svc, "kim@example.com")
    _, osecret, opw = await make_agent(svc, "other@example.com")
    _, laptop = await _login(http, base, "kim@example.com", pw, secret, clock)
    clock.advance(31)  # next TOTP step
    _, phone = await _login(http, base, "kim@example.com", pw, secret, clock, ua=FIREFOX_LINUX)
    _, other = await _login(http, base, "other@example.com", opw, osecret, clock)

    listed = await _sessions(http, base, laptop)
    assert len(listed) == 2
    mine = next(s for s in listed if s["current"])
    theirs = next(s for s in listed if not s["current"])
    assert mine["device"] == "Chrome / Windows" and theirs["device"] == "Firefox / Linux"
    assert mine["place"] == "127.0.0.0/24" and theirs["created_at"] == clock.now
    assert laptop not in json.dumps(listed) and phone not in json.dumps(listed)

    ws = await http.ws_connect(f"{base}/ws/agent", headers=bearer(phone))
    try:
        assert (await asyncio.wait_for(ws.receive(), 5)).type == aiohttp.WSMsgType.TEXT
        client_pk = base64.b64encode(bytes(PrivateKey.generate().public_key)).decode()
        await ws.send_str(json.dumps({"t": "key", "client_pk": client_pk}))
        first = await asyncio.wait_for(ws.receive(), 5)
        assert json.loads(first.data)["t"] == "sealed"
        # another agent cannot end it (looks missing), and nobody ends their current one
        async with http.delete(
            f"{base}/api/me/sessions/{theirs['id']}", headers=bearer(other)
        ) as r:
            assert r.status == 404
        async with http.delete(f"{base}/api/me/sessions/{mine['id']}", headers=bearer(laptop)) as r:
            assert r.status == 409 and (await r.json())["error"]["code"] == "current_session"
        async with http.delete(
            f"{base}/api/me/sessions/{theirs['id']}", headers=bearer(laptop)
        ) as r:
            assert r.status == 200
        while True:
            msg = await asyncio.wait_for(ws.receive(), 5)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4401
    finally:
        await ws.close()
    async with http.get(f"{base}/api/me", headers=bearer(phone)) as r:
        assert r.status == 401
    assert [s["current"] for s in await _sessions(http, base, laptop)] == [True]
    async with http.delete(f"{base}/api/me/sessions/{theirs['id']}", headers=bearer(laptop)) as r:
        assert r.status == 404
    events = await svc.store.query_audit(
        tenant_id="demo",
        action="session.revoked",
        actor=None,
        since=None,
        until=None,
        before_id=None,
        limit=5,
    )
    assert [e.details["handle"] for e in events] == [theirs["id"]]


def _sweep(svc) -> DormancySweep:
    return next(w for w in svc.workers if isinstance(w, DormancySweep))


async def test_dormant_accounts_are_disabled_at_login_and_by_the_sweep(gw):
    http, base, svc, clock = gw
    admin, asecret, apw = await make_agent(svc, "boss@example.com", role="admin")
    active, secret, pw = await make_agent(svc, "busy@example.com")
    idle, isecret, ipw = await make_agent(svc, "idle@example.com")
    never, _, _ = await make_agent(svc, "never@example.com", role="supervisor")
    _, boss = await _login(http, base, "boss@example.com", apw, asecret, clock)
    async with http.put(
        f"{base}/api/tenant/dormancy", headers=bearer(boss), json={"disable_after_days": 3}
    ) as r:
        assert r.status == 400  # below the minimum of 7 days
    async with http.put(
        f"{base}/api/tenant/dormancy", headers=bearer(boss), json={"disable_after_days": 30}
    ) as r:
        assert r.status == 200
    await _login(http, base, "idle@example.com", ipw, isecret, clock)

    clock.advance(20 * DAY)
    assert (await _login(http, base, "busy@example.com", pw, secret, clock))[0] == 200
    assert await _sweep(svc).run_once() == 0

    clock.advance(11 * DAY)  # idle: 31 days since login; never: 31 days since creation
    status, _ = await _login(http, base, "idle@example.com", ipw, isecret, clock)
    assert status == 401
    assert (await svc.store.get_agent(idle.id)).disabled
    # the sweep disables the one who never logged in; the last admin is spared
    assert await _sweep(svc).run_once() == 1
    assert (await svc.store.get_agent(never.id)).disabled
    assert not (await svc.store.get_agent(active.id)).disabled
    assert not (await svc.store.get_agent(admin.id)).disabled
    disabled = await svc.store.query_audit(
        tenant_id="demo",
        action="agent.disabled",
        actor="system",
        since=None,
        until=None,
        before_id=None,
        limit=10,
    )
    assert sorted(e.target for e in disabled) == sorted([idle.id, never.id])
    assert all(e.details["reason"] == "dormant" for e in disabled)

    clock.advance(31)
    status, boss = await _login(http, base, "boss@example.com", apw, asecret, clock)
    assert status == 200  # the last enabled admin still gets in
    async with http.get(f"{base}/api/agents/activity", headers=bearer(boss)) as r:
        data = await r.json()
    assert data["dormant_disable_days"] == 30
    rows = {a["email"]: a for a in data["agents"]}
    assert rows["busy@example.com"]["idle_days"] == 11
    assert rows["busy@example.com"]["last_login_at"] == pytest.approx(clock.now - 11 * DAY - 31)
    assert rows["never@example.com"]["last_login_at"] is None
    assert rows["never@example.com"]["disabled"] and rows["never@example.com"]["dormant"]
    assert not rows["boss@example.com"]["dormant"]  # just logged in

    # clearing the rule stops it
    async with http.put(
        f"{base}/api/tenant/dormancy", headers=bearer(boss), json={"disable_after_days": None}
    ) as r:
        assert r.status == 200
    clock.advance(400 * DAY)
    assert await _sweep(svc).run_once() == 0
