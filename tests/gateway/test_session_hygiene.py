"""Session and secret hygiene (issues 11.7 and 11.13).

* an agent socket is closed 4401 when its session expires or is revoked even if the
  agent never speaks again (watchdog with the injected clock, plus a store re-read that
  catches a revocation without any bus event);
* an agent socket with no credentials gets 4401 with or without ``Origin``
  (docs/PROTOCOL.md), a cookie from a foreign origin still 4403;
* the CSRF secret is derived from the current master key on every use, so a rotation
  really rotates it;
* the data directory is 0700 and the key files 0600.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat

import aiohttp
import pytest
from nacl.public import PrivateKey

from gateway import keyrotation
from gateway.sessions import COOKIE
from gateway.ws import agent as ws_agent
from tests.gateway.helpers import (
    FakeClock,
    bearer,
    login,
    make_agent,
    start_gateway,
    totp_code,
)

IDLE = 600.0


@pytest.fixture
async def gw(tmp_path, monkeypatch):
    # The watchdog sleeps at most this long in real time between store re-reads; the
    # fake clock decides when the session is over.
    monkeypatch.setattr(ws_agent, "SESSION_POLL", 0.05)
    clock = FakeClock()
    runner, base, svc = await start_gateway(
        tmp_path, clock=clock, auth={"idle_timeout": IDLE, "absolute_lifetime": 3600.0}
    )
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, clock
    await runner.cleanup()


async def _agent_socket(http, base, token):
    ws = await http.ws_connect(f"{base}/ws/agent", headers=bearer(token))
    hello = await asyncio.wait_for(ws.receive(), 5)
    assert json.loads(hello.data)["t"] == "hello"
    client_pk = base64.b64encode(bytes(PrivateKey.generate().public_key)).decode()
    await ws.send_str(json.dumps({"t": "key", "client_pk": client_pk}))
    first = await asyncio.wait_for(ws.receive(), 5)
    assert json.loads(first.data)["t"] == "sealed"
    return ws


async def _close_of(ws, wait=5.0):
    while True:
        msg = await asyncio.wait_for(ws.receive(), wait)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return msg


async def test_silent_socket_closed_when_the_session_idles_out(gw):
    http, base, svc, clock = gw
    _, secret, pw = await make_agent(svc, "idle@example.com")
    token = await login(http, base, "idle@example.com", pw, secret, clock.now)
    ws = await _agent_socket(http, base, token)
    try:
        clock.advance(IDLE + 1)  # the agent never sends another frame
        msg = await _close_of(ws)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4401
        assert msg.extra == "session expired"
    finally:
        await ws.close()


async def test_silent_socket_closed_on_revocation_without_a_bus_event(gw):
    """Revoked in the store by another node whose bus event never arrived: the
    watchdog's re-read still closes the socket."""
    http, base, svc, clock = gw
    agent, secret, pw = await make_agent(svc, "rev@example.com")
    token = await login(http, base, "rev@example.com", pw, secret, clock.now)
    ws = await _agent_socket(http, base, token)
    try:
        await svc.store.revoke_agent_sessions(agent.id, clock.now)  # no bus publish
        msg = await _close_of(ws)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4401
    finally:
        await ws.close()


async def test_active_session_is_not_closed_by_the_watchdog(gw):
    http, base, svc, clock = gw
    _, secret, pw = await make_agent(svc, "busy@example.com")
    token = await login(http, base, "busy@example.com", pw, secret, clock.now)
    ws = await _agent_socket(http, base, token)
    try:
        for _ in range(3):
            clock.advance(IDLE / 2)
            async with http.get(f"{base}/api/me", headers=bearer(token)) as r:
                assert r.status == 200  # use keeps the session alive (touch)
            await asyncio.sleep(0.15)  # several watchdog rounds at SESSION_POLL
        assert not ws.closed
    finally:
        await ws.close()


async def test_no_credentials_is_4401_with_or_without_origin(gw):
    http, base, _svc, _clock = gw
    for headers in ({}, {"Origin": "https://evil.example"}):
        ws = await http.ws_connect(f"{base}/ws/agent", headers=headers)
        msg = await _close_of(ws)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4401, headers
        await ws.close()


async def test_cookie_from_a_foreign_origin_is_still_4403(gw):
    http, base, svc, clock = gw
    _, secret, pw = await make_agent(svc, "csw@example.com")
    token = await login(http, base, "csw@example.com", pw, secret, clock.now)
    ws = await http.ws_connect(
        f"{base}/ws/agent",
        headers={"Origin": "https://evil.example", "Cookie": f"{COOKIE}={token}"},
    )
    msg = await _close_of(ws)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4403
    await ws.close()


async def test_master_key_rotation_rotates_the_csrf_secret(gw):
    """Old code cached the secret in an untyped ``Services.extras`` slot at first use: the
    old token kept working after a rotation. (``Services`` now has typed fields only and no
    place to cache it; the checks below are what matter.)"""
    _, base, svc, clock = gw
    _, secret, pw = await make_agent(svc, "csrf@example.com")
    jar = aiohttp.CookieJar(unsafe=True)  # keep the cookie for 127.0.0.1
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.post(
            f"{base}/api/login",
            json={"email": "csrf@example.com", "password": pw, "otp": totp_code(secret, clock.now)},
        ) as r:
            assert r.status == 200
            before = (await r.json())["csrf"]

        async def probe(csrf: str) -> tuple[int, str]:
            # A cookie-authenticated POST: CSRF is checked before the (empty) body, so
            # 400 bad_request means the token passed and 403 csrf means it did not.
            async with http.post(
                f"{base}/api/me/reauth", json={}, headers={"X-CSRF-Token": csrf}
            ) as resp:
                return resp.status, (await resp.json())["error"]["code"]

        assert await probe(before) == (400, "bad_request")
        await keyrotation.rotate(svc, actor="test")
        async with http.get(f"{base}/api/me") as r:
            after = (await r.json())["csrf"]
        assert after != before
        assert await probe(before) == (403, "csrf")
        assert await probe(after) == (400, "bad_request")
    assert not hasattr(svc, "extras")


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_data_dir_is_private_and_key_files_owner_only(tmp_path):
    runner, _base, svc = await start_gateway(tmp_path)
    try:
        data = svc.config.data_dir
        assert _mode(data) == 0o700
        keys = [p for p in data.iterdir() if p.is_file() and p.suffix == ".key"]
        assert keys, list(data.iterdir())
        for path in keys:
            assert _mode(path) == 0o600, path
    finally:
        await runner.cleanup()


async def test_existing_loose_data_dir_is_tightened(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    runner, _base, _svc = await start_gateway(tmp_path)
    try:
        assert _mode(data) == 0o700
    finally:
        await runner.cleanup()
