"""Agent login over real HTTP: both factors, replay, recovery codes, lockout, expiry,
CSRF, bad input, and revocation closing an open agent websocket (4401)."""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import pytest
from nacl.public import PrivateKey

from gateway.sessions import COOKIE
from tests.gateway.helpers import (
    T0,
    FakeClock,
    bearer,
    login,
    make_agent,
    start_gateway,
    totp_code,
)


@pytest.fixture
async def gw(tmp_path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(
        tmp_path,
        clock=clock,
        auth={
            "free_failures": 2,
            "lock_after": 4,
            "lock_duration": 300.0,
            "idle_timeout": 600.0,
            "absolute_lifetime": 3600.0,
        },
    )
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, clock
    await runner.cleanup()


async def _post_login(http, base, email, password, otp):
    async with http.post(
        f"{base}/api/login", json={"email": email, "password": password, "otp": otp}
    ) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


async def test_login_needs_both_factors_and_hides_which_failed(gw):
    http, base, svc, clock = gw
    _, secret, pw = await make_agent(svc, "ann@example.com")
    good = totp_code(secret, clock.now)
    bad = "000000" if good != "000000" else "111111"

    s1, body_wrong_otp, _ = await _post_login(http, base, "ann@example.com", pw, bad)
    s2, body_wrong_pw, _ = await _post_login(http, base, "ann@example.com", pw + "x", good)
    s3, body_unknown, _ = await _post_login(http, base, "nobody@example.com", pw, good)
    assert (s1, s2, s3) == (401, 401, 401)
    assert body_wrong_otp == body_wrong_pw == body_unknown
    assert json.loads(body_wrong_otp)["error"]["code"] == "login_failed"

    clock.advance(30)  # let the progressive delay (2 free failures) pass
    async with http.post(
        f"{base}/api/login",
        json={"email": "ANN@Example.com", "password": pw, "otp": totp_code(secret, clock.now)},
    ) as resp:
        assert resp.status == 200
        body = await resp.json()
        cookie = resp.headers["Set-Cookie"]
    assert body["token"] and body["csrf"] and body["agent"]["email"] == "ann@example.com"
    # No hash and no TOTP secret leave the server (was: a check of a key that never exists).
    assert "password_hash" not in json.dumps(body) and secret not in json.dumps(body)
    assert not [k for k in body["agent"] if "secret" in k or "hash" in k], body["agent"]
    assert f"{COOKIE}=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/" in cookie and "Secure" not in cookie
    # audit: ok and failed, never a secret
    events = await svc.store.query_audit(action="login.failed")
    assert len(events) == 3
    dumped = json.dumps([e.details for e in await svc.store.query_audit(limit=100)])
    assert pw not in dumped and good not in dumped and body["token"] not in dumped


async def test_reused_totp_code_refused(gw):
    http, base, svc, clock = gw
    _, secret, pw = await make_agent(svc, "bob@example.com")
    code = totp_code(secret, clock.now)
    assert (await _post_login(http, base, "bob@example.com", pw, code))[0] == 200
    status, body, _ = await _post_login(http, base, "bob@example.com", pw, code)
    assert status == 401 and json.loads(body)["error"]["code"] == "login_failed"
    clock.advance(30)
    assert (await _post_login(http, base, "bob@example.com", pw, totp_code(secret, clock.now)))[
        0
    ] == 200


async def test_recovery_code_works_once(gw):
    http, base, svc, _clock = gw
    agent, _, pw = await make_agent(svc, "cid@example.com")
    codes = await svc.logins.regenerate_recovery_codes(agent, actor="test")
    assert (await _post_login(http, base, "cid@example.com", pw, codes[0].upper()))[0] == 200
    assert (await _post_login(http, base, "cid@example.com", pw, codes[0]))[0] == 401
    assert await svc.store.count_recovery_codes(agent.id) == 9


async def test_cli_created_agent_confirmed_by_first_login(gw):
    http, base, svc, clock = gw
    agent, secret, pw = await make_agent(svc, "new@example.com", confirmed=False)
    assert not agent.totp_confirmed
    await login(http, base, "new@example.com", pw, secret, clock.now)
    assert (await svc.store.get_agent(agent.id)).totp_confirmed


async def test_lockout_engages_and_lifts_with_clock(gw):
    http, base, svc, clock = gw
    agent, secret, pw = await make_agent(svc, "dan@example.com")
    # 2 free failures, then delays 1 s, 2 s; the 4th failure locks for 300 s.
    for _ in range(4):
        status, _, _ = await _post_login(http, base, "dan@example.com", "wrong password!", "123456")
        assert status == 401
        clock.advance(5)
    clock.advance(30)
    status, body, headers = await _post_login(
        http, base, "dan@example.com", pw, totp_code(secret, clock.now)
    )
    assert status == 429 and json.loads(body)["error"]["code"] == "rate_limited"
    assert int(headers["Retry-After"]) > 200
    locked = await svc.store.query_audit(action="login.locked")
    # The audit names the agent, never the tried e-mail address (issue 11.10).
    assert locked and locked[0].target == agent.id
    assert "dan@example.com" not in json.dumps(locked[0].details)
    clock.advance(300)
    assert (await _post_login(http, base, "dan@example.com", pw, totp_code(secret, clock.now)))[
        0
    ] == 200


async def test_progressive_delay_answers_retry_after(gw):
    http, base, svc, clock = gw
    await make_agent(svc, "eve@example.com")
    for _ in range(2):  # two free failures, then 1 s, 2 s, ...
        assert (await _post_login(http, base, "eve@example.com", "nope nope nope", "1"))[0] == 401
    status, _, headers = await _post_login(http, base, "eve@example.com", "x", "1")
    assert status == 429 and headers["Retry-After"] == "1"
    clock.advance(1)
    assert (await _post_login(http, base, "eve@example.com", "nope nope nope", "1"))[0] == 401
    status, _, headers = await _post_login(http, base, "eve@example.com", "x", "1")
    assert status == 429 and headers["Retry-After"] == "2"


async def test_unlock_by_admin_api_lifts_lock(gw):
    http, base, svc, clock = gw
    victim, vsecret, vpw = await make_agent(svc, "vic@example.com")
    _, asecret, apw = await make_agent(svc, "adm@example.com", role="admin")
    for _ in range(4):
        await _post_login(http, base, "vic@example.com", "wrong password!", "123456")
        clock.advance(5)
    token = await login(http, base, "adm@example.com", apw, asecret, clock.now)
    async with http.post(f"{base}/api/agents/{victim.id}/unlock", headers=bearer(token)) as r:
        assert r.status == 200 and (await r.json())["was_locked"] is True
    assert (await _post_login(http, base, "vic@example.com", vpw, totp_code(vsecret, clock.now)))[
        0
    ] == 200
    assert await svc.store.query_audit(action="login.unlocked")


async def test_login_rate_limit_per_account(tmp_path):
    runner, base, _svc = await start_gateway(
        tmp_path, ratelimit={"limits": {"login_per_account": "2/m"}}
    )
    try:
        async with aiohttp.ClientSession() as http:
            statuses = []
            for _ in range(3):
                status, _, headers = await _post_login(http, base, "x@example.com", "p", "1")
                statuses.append(status)
            assert statuses == [401, 401, 429]
            assert int(headers["Retry-After"]) >= 1
    finally:
        await runner.cleanup()


async def test_session_idle_and_absolute_expiry(gw):
    http, base, svc, clock = gw
    _, secret, pw = await make_agent(svc, "fay@example.com")
    token = await login(http, base, "fay@example.com", pw, secret, clock.now)
    async with http.get(f"{base}/api/me", headers=bearer(token)) as r:
        me = await r.json()
        assert r.status == 200 and me["agent"]["email"] == "fay@example.com"
        assert me["csrf"] and me["session"]["expires_at"] == clock.now + 600
    clock.advance(601)  # idle timeout 600 s
    async with http.get(f"{base}/api/me", headers=bearer(token)) as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == "unauthenticated"

    clock.advance(30)
    token = await login(http, base, "fay@example.com", pw, secret, clock.now)
    for _ in range(7):  # stay active: touch every 500 s, past the 3600 s absolute lifetime
        clock.advance(500)
        async with http.get(f"{base}/api/me", headers=bearer(token)) as r:
            if clock.now - (T0 + 631) >= 3600:
                assert r.status == 401
            else:
                assert r.status == 200


async def test_logout_revokes_session_and_cookie_auth(gw):
    http, base, svc, clock = gw
    _, secret, pw = await make_agent(svc, "gus@example.com")
    jar_http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with jar_http:
        async with jar_http.post(
            f"{base}/api/login",
            json={"email": "gus@example.com", "password": pw, "otp": totp_code(secret, clock.now)},
        ) as r:
            body = await r.json()
        async with jar_http.get(f"{base}/api/me") as r:  # cookie only
            assert r.status == 200
        # cookie POST without CSRF → 403 csrf
        async with jar_http.post(f"{base}/api/logout") as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "csrf"
        # with the token but from a foreign origin → 403
        async with jar_http.post(
            f"{base}/api/logout",
            headers={"X-CSRF-Token": body["csrf"], "Origin": "https://evil.example"},
        ) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "csrf"
        async with jar_http.post(f"{base}/api/logout", headers={"X-CSRF-Token": "x" * 43}) as r:
            assert r.status == 403
        async with jar_http.post(
            f"{base}/api/logout", headers={"X-CSRF-Token": body["csrf"], "Origin": base}
        ) as r:
            assert r.status == 200
        async with http.get(f"{base}/api/me", headers=bearer(body["token"])) as r:
            assert r.status == 401


async def test_bad_input_gets_json_errors(gw):
    http, base, _svc, _clock = gw
    url = f"{base}/api/login"
    cases = [
        (dict(data=b"{not json", headers={"Content-Type": "application/json"}), 400, "bad_request"),
        (dict(json={"email": "a@b.co", "password": 5, "otp": "1"}), 400, "bad_request"),
        (dict(json={"email": "a@b.co", "password": "x"}), 400, "bad_request"),
        (dict(json=["a"]), 400, "bad_request"),
        (
            dict(data="email=a", headers={"Content-Type": "application/x-www-form-urlencoded"}),
            415,
            "unsupported_media_type",
        ),
        (
            dict(
                data=b'{"email":"' + b"a" * 70_000 + b'"}',
                headers={"Content-Type": "application/json"},
            ),
            413,
            "too_large",
        ),
        (dict(json={"email": "a\u200b@b.co", "password": "x", "otp": "1"}), 401, "login_failed"),
    ]
    for kwargs, status, code in cases:
        async with http.post(url, **kwargs) as r:
            text = await r.text()
            assert r.status == status, (kwargs.get("json"), text)
            assert json.loads(text)["error"]["code"] == code
            assert "Traceback" not in text and 'File "' not in text
    async with http.post(url, json={"email": "a@b.co", "password": 5, "otp": "1"}) as r:
        assert (await r.json())["error"]["field"] == "password"
    async with http.post(url, json={"email": "a@b.co", "password": "x"}) as r:
        assert (await r.json())["error"]["field"] == "otp"
    async with http.get(f"{base}/api/me", headers=bearer("forged")) as r:
        assert r.status == 401
    async with http.get(f"{base}/api/nope") as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"


async def test_change_password_revokes_other_sessions(gw):
    http, base, svc, clock = gw
    _, secret, pw = await make_agent(svc, "hal@example.com")
    t1 = await login(http, base, "hal@example.com", pw, secret, clock.now)
    clock.advance(30)
    t2 = await login(http, base, "hal@example.com", pw, secret, clock.now)
    async with http.post(
        f"{base}/api/me/password", headers=bearer(t2), json={"current": pw, "new": "password"}
    ) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "weak_password"
    async with http.post(
        f"{base}/api/me/password",
        headers=bearer(t2),
        json={"current": "not it at all", "new": "a much better phrase 9"},
    ) as r:
        assert r.status == 403 and (await r.json())["error"]["code"] == "wrong_password"
    async with http.post(
        f"{base}/api/me/password",
        headers=bearer(t2),
        json={"current": pw, "new": "a much better phrase 9"},
    ) as r:
        assert r.status == 200 and (await r.json())["sessions_revoked"] == 1
    async with http.get(f"{base}/api/me", headers=bearer(t1)) as r:
        assert r.status == 401
    async with http.get(f"{base}/api/me", headers=bearer(t2)) as r:
        assert r.status == 200
    clock.advance(30)
    await login(http, base, "hal@example.com", "a much better phrase 9", secret, clock.now)


async def test_totp_enrollment_needs_confirmation(gw):
    http, base, svc, clock = gw
    _, old_secret, pw = await make_agent(svc, "ida@example.com")
    token = await login(http, base, "ida@example.com", pw, old_secret, clock.now)
    async with http.post(f"{base}/api/me/totp", headers=bearer(token)) as r:
        data = await r.json()
    assert data["otpauth_uri"].startswith("otpauth://totp/")
    assert data["qr_png"].startswith("data:image/png;base64,")
    new_secret = data["otpauth_uri"].split("secret=")[1].split("&")[0]
    # not active yet: the old secret still logs in, the new one does not
    clock.advance(30)
    assert (await _post_login(http, base, "ida@example.com", pw, totp_code(new_secret, clock.now)))[
        0
    ] == 401
    clock.advance(30)
    token = await login(http, base, "ida@example.com", pw, old_secret, clock.now)
    async with http.post(f"{base}/api/me/totp", headers=bearer(token)) as r:
        data = await r.json()
    new_secret = data["otpauth_uri"].split("secret=")[1].split("&")[0]
    async with http.post(
        f"{base}/api/me/totp/confirm",
        headers=bearer(token),
        json={"otp": "000000" if totp_code(new_secret, clock.now) != "000000" else "111111"},
    ) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_otp"
    async with http.post(
        f"{base}/api/me/totp/confirm",
        headers=bearer(token),
        json={"otp": totp_code(new_secret, clock.now), "enrollment": data["enrollment"]},
    ) as r:
        assert r.status == 200
    clock.advance(30)
    assert (await _post_login(http, base, "ida@example.com", pw, totp_code(old_secret, clock.now)))[
        0
    ] == 401
    clock.advance(30)
    await login(http, base, "ida@example.com", pw, new_secret, clock.now)


async def test_recovery_codes_endpoint(gw):
    http, base, svc, clock = gw
    _, secret, pw = await make_agent(svc, "jon@example.com")
    token = await login(http, base, "jon@example.com", pw, secret, clock.now)
    async with http.post(f"{base}/api/me/recovery-codes", headers=bearer(token)) as r:
        codes = (await r.json())["recovery_codes"]
    assert len(codes) == 10
    assert (await _post_login(http, base, "jon@example.com", pw, codes[3]))[0] == 200


async def test_revoke_sessions_closes_agent_websocket(gw):
    http, base, svc, clock = gw
    agent, secret, pw = await make_agent(svc, "kim@example.com")
    _, asecret, apw = await make_agent(svc, "boss@example.com", role="admin")
    token = await login(http, base, "kim@example.com", pw, secret, clock.now)
    admin = await login(http, base, "boss@example.com", apw, asecret, clock.now)
    ws = await http.ws_connect(f"{base}/ws/agent", headers=bearer(token))
    try:
        hello = await asyncio.wait_for(ws.receive(), 5)
        assert hello.type == aiohttp.WSMsgType.TEXT
        # finish the handshake: the agent session subscribes to its revocation topic
        # before it sends its first (sealed) frame, which we only wait for.
        client_pk = base64.b64encode(bytes(PrivateKey.generate().public_key)).decode()
        await ws.send_str(json.dumps({"t": "key", "client_pk": client_pk}))
        first = await asyncio.wait_for(ws.receive(), 5)
        assert first.type == aiohttp.WSMsgType.TEXT and json.loads(first.data)["t"] == "sealed"
        async with http.post(
            f"{base}/api/agents/{agent.id}/revoke-sessions", headers=bearer(admin)
        ) as r:
            assert r.status == 200 and (await r.json())["sessions_revoked"] == 1
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:  # sealed frames may still be in flight; the close frame follows
            msg = await asyncio.wait_for(ws.receive(), 15)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4401
        assert loop.time() - started < 10  # pushed by the revocation, not a timeout
    finally:
        await ws.close()
    async with http.get(f"{base}/api/me", headers=bearer(token)) as r:
        assert r.status == 401
    assert await svc.store.query_audit(action="sessions.revoked")


async def test_api_rate_limit_per_token_and_login_origin(tmp_path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(
        tmp_path, clock=clock, ratelimit={"limits": {"api_per_token": "3/m"}}
    )
    try:
        async with aiohttp.ClientSession() as http:
            _, secret, pw = await make_agent(svc, "lou@example.com")
            async with http.post(
                f"{base}/api/login",
                headers={"Origin": "https://evil.example"},
                json={
                    "email": "lou@example.com",
                    "password": pw,
                    "otp": totp_code(secret, clock.now),
                },
            ) as r:
                assert r.status == 403 and (await r.json())["error"]["code"] == "csrf"
            token = await login(http, base, "lou@example.com", pw, secret, clock.now)
            statuses = []
            for _ in range(4):
                async with http.get(f"{base}/api/me", headers=bearer(token)) as r:
                    statuses.append(r.status)
                    retry = r.headers.get("Retry-After")
            assert statuses == [200, 200, 200, 429] and int(retry) >= 1
    finally:
        await runner.cleanup()
