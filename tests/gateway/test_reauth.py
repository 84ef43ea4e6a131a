"""Credential changes need a fresh step-up re-authentication (issue 11.3).

Before: a bearer token alone could mint recovery codes and enrol a new TOTP secret, and
the agent's other sessions survived. Now every credential change needs password + second
factor proven on the session within 5 minutes (a login counts), revokes the agent's other
sessions (their sockets close 4401 "credentials changed") and is audited.
"""

from __future__ import annotations

import asyncio
import base64
import json

import aiohttp
import pytest
from nacl.public import PrivateKey

from tests.gateway.helpers import FakeClock, bearer, login, make_agent, start_gateway, totp_code

WINDOW = 300.0


@pytest.fixture
async def gw(tmp_path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(
        tmp_path, clock=clock, auth={"free_failures": 2, "lock_after": 4}
    )
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, clock
    await runner.cleanup()


async def _post(http, base, path, token, body=None):
    async with http.post(f"{base}{path}", headers=bearer(token), json=body) as r:
        return r.status, await r.json()


async def _agent_socket(http, base, token):
    ws = await http.ws_connect(f"{base}/ws/agent", headers=bearer(token))
    hello = await asyncio.wait_for(ws.receive(), 5)
    assert json.loads(hello.data)["t"] == "hello"
    client_pk = base64.b64encode(bytes(PrivateKey.generate().public_key)).decode()
    await ws.send_str(json.dumps({"t": "key", "client_pk": client_pk}))
    first = await asyncio.wait_for(ws.receive(), 5)
    assert json.loads(first.data)["t"] == "sealed"  # subscribed to its agent topic now
    return ws


async def _close_of(ws):
    while True:
        msg = await asyncio.wait_for(ws.receive(), 5)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return msg


CHANGES = [
    ("/api/me/recovery-codes", None),
    ("/api/me/totp", None),
    ("/api/me/totp/confirm", {"otp": "123456"}),
    ("/api/me/password", {"current": "x", "new": "another long passphrase 77"}),
]


@pytest.mark.parametrize(("path", "body"), CHANGES)
async def test_token_alone_cannot_change_credentials(gw, path, body):
    http, base, svc, clock = gw
    _, secret, pw = await make_agent(svc, "mfa@example.com")
    token = await login(http, base, "mfa@example.com", pw, secret, clock.now)
    clock.advance(WINDOW + 1)  # the login's proof is stale: only the token is left
    status, data = await _post(http, base, path, token, body)
    assert status == 403, data
    assert data["error"]["code"] == "reauth_required"
    assert data["error"]["reauth"] == "/api/me/reauth"
    assert (
        await svc.store.count_recovery_codes(
            (await svc.store.get_agent_by_email("mfa@example.com")).id
        )
        == 10
    )


async def test_admin_mfa_reset_of_someone_else_needs_step_up(gw):
    http, base, svc, clock = gw
    victim, _, _ = await make_agent(svc, "staff@example.com")
    _, asecret, apw = await make_agent(svc, "root@example.com", role="admin")
    admin = await login(http, base, "root@example.com", apw, asecret, clock.now)
    clock.advance(WINDOW + 1)
    status, data = await _post(http, base, f"/api/agents/{victim.id}/reset-mfa", admin)
    assert status == 403 and data["error"]["code"] == "reauth_required"
    clock.advance(30)
    status, _ = await _post(
        http, base, "/api/me/reauth", admin, {"password": apw, "otp": totp_code(asecret, clock.now)}
    )
    assert status == 200
    status, data = await _post(http, base, f"/api/agents/{victim.id}/reset-mfa", admin)
    assert status == 200 and "/invite#cdi_" in data["link"]
    assert "recovery_codes" not in data and "otpauth_uri" not in data  # the admin sees no secret


async def test_step_up_then_change_revokes_other_sessions_and_tells_them(gw):
    http, base, svc, clock = gw
    agent, secret, pw = await make_agent(svc, "own@example.com")
    other = await login(http, base, "own@example.com", pw, secret, clock.now)
    clock.advance(30)
    token = await login(http, base, "own@example.com", pw, secret, clock.now)
    ws = await _agent_socket(http, base, other)
    try:
        clock.advance(WINDOW + 1)
        # Wrong password, or right password with a wrong code: refused, counted.
        status, data = await _post(
            http, base, "/api/me/reauth", token, {"password": "not the password", "otp": "123456"}
        )
        assert status == 403 and data["error"]["code"] == "reauth_failed"
        status, data = await _post(
            http, base, "/api/me/reauth", token, {"password": pw, "otp": "000000"}
        )
        assert status == 403 and data["error"]["code"] == "reauth_failed"
        clock.advance(30)
        status, data = await _post(
            http,
            base,
            "/api/me/reauth",
            token,
            {"password": pw, "otp": totp_code(secret, clock.now)},
        )
        assert status == 200 and data["reauth_until"] == clock.now + WINDOW
        status, data = await _post(http, base, "/api/me/recovery-codes", token)
        assert status == 200 and len(data["recovery_codes"]) == 10
        closed = await _close_of(ws)
        assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 4401
        assert closed.extra == "credentials changed"
    finally:
        await ws.close()
    async with http.get(f"{base}/api/me", headers=bearer(other)) as r:
        assert r.status == 401
    async with http.get(f"{base}/api/me", headers=bearer(token)) as r:
        assert r.status == 200
    changed = await svc.store.query_audit(action="credentials.changed")
    assert changed and changed[0].target == agent.id
    assert changed[0].details["what"] == "recovery_codes"
    assert changed[0].details["sessions_revoked"] == 1
    assert [e.details["reason"] for e in await svc.store.query_audit(action="reauth.failed")] == [
        "wrong_otp",
        "wrong_password",
    ]
    # The step-up expires with its window.
    clock.advance(WINDOW)
    status, data = await _post(http, base, "/api/me/recovery-codes", token)
    assert status == 403 and data["error"]["code"] == "reauth_required"


async def test_totp_reenrolment_revokes_other_sessions(gw):
    http, base, svc, clock = gw
    _, secret, pw = await make_agent(svc, "tot@example.com")
    other = await login(http, base, "tot@example.com", pw, secret, clock.now)
    clock.advance(30)
    token = await login(http, base, "tot@example.com", pw, secret, clock.now)
    status, data = await _post(http, base, "/api/me/totp", token)
    assert status == 200
    new_secret = data["otpauth_uri"].split("secret=")[1].split("&")[0]
    status, _ = await _post(
        http,
        base,
        "/api/me/totp/confirm",
        token,
        {"otp": totp_code(new_secret, clock.now), "enrollment": data["enrollment"]},
    )
    assert status == 200
    async with http.get(f"{base}/api/me", headers=bearer(other)) as r:
        assert r.status == 401
    what = [e.details["what"] for e in await svc.store.query_audit(action="credentials.changed")]
    assert what == ["totp"]


async def test_step_up_failures_are_throttled_like_logins(gw):
    http, base, svc, clock = gw
    _, secret, pw = await make_agent(svc, "thr@example.com")
    token = await login(http, base, "thr@example.com", pw, secret, clock.now)
    codes = []
    for _ in range(3):
        _status, data = await _post(
            http, base, "/api/me/reauth", token, {"password": "guessing guessing", "otp": "123456"}
        )
        codes.append(data["error"]["code"])
    # 2 free failures, then the (account, address) pair must wait.
    assert codes == ["reauth_failed", "reauth_failed", "rate_limited"]
    assert data["error"]["retry_after"] >= 1


async def test_recovery_code_is_a_valid_second_factor_for_step_up(gw):
    """An agent who lost the authenticator re-authenticates with a recovery code (spent)
    to enrol a new one."""
    http, base, svc, clock = gw
    agent, secret, pw = await make_agent(svc, "lost@example.com")
    token = await login(http, base, "lost@example.com", pw, secret, clock.now)
    status, data = await _post(http, base, "/api/me/recovery-codes", token)
    code = data["recovery_codes"][0]
    clock.advance(WINDOW + 1)
    status, _ = await _post(http, base, "/api/me/reauth", token, {"password": pw, "otp": code})
    assert status == 200
    assert await svc.store.count_recovery_codes(agent.id) == 9
    status, data = await _post(http, base, "/api/me/reauth", token, {"password": pw, "otp": code})
    assert status == 403 and data["error"]["code"] == "reauth_failed"


async def test_single_sign_on_settings_need_step_up(gw):
    """Whom the tenant trusts to sign its agents in is every agent's credential: a session
    whose proof is stale can neither point single sign-on elsewhere nor turn it off."""
    http, base, svc, clock = gw
    _, asecret, apw = await make_agent(svc, "root@example.com", role="admin")
    admin = await login(http, base, "root@example.com", apw, asecret, clock.now)
    clock.advance(WINDOW + 1)
    body = {"issuer": "https://idp.example.com", "client_id": "x", "client_secret": "y"}
    async with http.put(f"{base}/api/oidc/settings", headers=bearer(admin), json=body) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (403, "reauth_required")
    async with http.delete(f"{base}/api/oidc/settings", headers=bearer(admin)) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (403, "reauth_required")
    assert await svc.store.query_audit(action="sso.removed") == []
    clock.advance(30)
    proof = {"password": apw, "otp": totp_code(asecret, clock.now)}
    assert (await _post(http, base, "/api/me/reauth", admin, proof))[0] == 200
    async with http.put(f"{base}/api/oidc/settings", headers=bearer(admin), json=body) as r:
        # past the step-up: now the operator's allow-list decides (nothing is allowed here)
        assert (r.status, (await r.json())["error"]["code"]) == (400, "issuer_not_allowed")
    async with http.delete(f"{base}/api/oidc/settings", headers=bearer(admin)) as r:
        assert r.status == 200
    assert len(await svc.store.query_audit(action="sso.removed")) == 1
