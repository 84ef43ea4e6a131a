"""Passkeys over real HTTP (issue 20.1), on SQLite and PostgreSQL, with a software
authenticator that makes real P-256 signatures (tests/softauthn.py): registration behind
a fresh step-up, login by passkey alone, and every forgery refused — another origin
(phishing), another RP id, no user verification, a replayed or expired challenge, a
counter that did not grow; the tenant's "phishing-resistant MFA" rule over HTTP and the
console socket; an admin's MFA reset ending the passkeys."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.services import Services
from tests.gateway.helpers import FakeClock, bearer, login, make_agent, start_gateway
from tests.softauthn import SoftAuthenticator


@pytest.fixture
async def gw(service_store_url: str, tmp_path: Path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock, store={"url": service_store_url})
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, clock
    await runner.cleanup()


def _origin(svc: Services) -> str:
    return f"http://localhost:{svc.config.server.port}"


async def _staff(http, base, svc: Services, clock, role: str = "admin"):
    email = f"{role}-{uuid.uuid4().hex[:6]}@example.com"
    agent, secret, pw = await make_agent(svc, email, role=role)
    return agent, bearer(await login(http, base, email, pw, secret, clock.now))


async def _post(http, url: str, headers: dict[str, str] | None = None, **body: Any):
    async with http.post(url, json=body, headers=headers or {}) as r:
        return r.status, await r.json()


async def _register(
    http, base, headers, device: SoftAuthenticator, name: str = "Laptop", **create: Any
):
    status, started = await _post(http, f"{base}/api/me/passkeys/options", headers)
    assert status == 200, started
    credential = device.create(started["options"], **create)
    return await _post(
        http,
        f"{base}/api/me/passkeys",
        headers,
        challenge_id=started["challenge_id"],
        credential=credential,
        name=name,
    )


async def _passkey_login(http, base, device: SoftAuthenticator, **get: Any):
    status, started = await _post(http, f"{base}/api/login/passkey/options")
    assert status == 200, started
    assert started["options"]["userVerification"] == "required"
    credential = device.get(started["options"], **get)
    return await _post(
        http,
        f"{base}/api/login/passkey",
        challenge_id=started["challenge_id"],
        credential=credential,
    )


async def _audit(svc: Services, action: str) -> list[dict[str, Any]]:
    rows = await svc.store.query_audit(action=action, limit=100)
    return [dict(r.details) for r in rows]


async def test_register_then_log_in_with_the_passkey_alone(gw) -> None:
    http, base, svc, clock = gw
    agent, headers = await _staff(http, base, svc, clock)
    device = SoftAuthenticator(origin=_origin(svc))
    status, body = await _register(http, base, headers, device)
    assert status == 201, body
    assert body["passkey"]["name"] == "Laptop" and body["passkey"]["transports"] == ["internal"]
    async with http.get(f"{base}/api/me/passkeys", headers=headers) as r:
        listed = (await r.json())["passkeys"]
    assert [p["id"] for p in listed] == [body["passkey"]["id"]]
    assert "public_key" not in listed[0]
    async with http.get(f"{base}/api/agents", headers=headers) as r:  # the admin's view
        counts = {a["id"]: a["passkeys"] for a in (await r.json())["agents"]}
    assert counts[agent.id] == 1 and set(counts.values()) <= {0, 1}

    status, session = await _passkey_login(http, base, device)
    assert status == 200, session
    assert session["agent"]["id"] == agent.id
    async with http.get(f"{base}/api/me", headers=bearer(session["token"])) as r:
        me = await r.json()
    assert me["session_factor"] == "passkey" and me["passkey_gate"] is None
    assert (await svc.store.get_passkey(body["passkey"]["id"])).sign_count == 1
    assert {"factor": "passkey"}.items() <= (await _audit(svc, "login.ok"))[0].items()
    assert len(await _audit(svc, "passkey.added")) == 1

    # the same key registered twice is refused; removing needs a fresh step-up
    status, again = await _register(http, base, headers, device)
    assert (status, again["error"]["code"]) == (409, "passkey_exists")
    clock.advance(svc.config.auth.reauth_window + 1)
    async with http.delete(f"{base}/api/me/passkeys/{listed[0]['id']}", headers=headers) as r:
        assert r.status == 403 and (await r.json())["error"]["code"] == "reauth_required"


@pytest.mark.parametrize(
    "forgery",
    [
        {"origin": "https://support.examp1e.com"},  # a phishing page relaying the ceremony
        {"rp_id": "evil.example"},
        {"uv": False},
    ],
    ids=["foreign-origin", "foreign-rp-id", "no-user-verification"],
)
async def test_forged_logins_are_refused(gw, forgery: dict[str, Any]) -> None:
    http, base, svc, clock = gw
    _, headers = await _staff(http, base, svc, clock)
    device = SoftAuthenticator(origin=_origin(svc))
    assert (await _register(http, base, headers, device))[0] == 201
    status, body = await _passkey_login(http, base, device, **forgery)
    assert (status, body["error"]["code"]) == (401, "login_failed")
    failed = await _audit(svc, "login.failed")
    assert failed and failed[0]["reason"] == "passkey_invalid"
    assert failed[0]["factor"] == "passkey"
    # the real page still works
    assert (await _passkey_login(http, base, device))[0] == 200


async def test_a_passkey_name_is_screened_by_the_policy(gw) -> None:
    """The label is shown to admins and kept in the audit log: a phone number typed as a
    device name is masked like any staff text; a card number is refused, naming the field."""
    http, base, svc, clock = gw
    _agent, headers = await _staff(http, base, svc, clock)
    device = SoftAuthenticator(origin=_origin(svc))
    status, body = await _register(http, base, headers, device, name="Phone 13800138000")
    assert status == 201, body
    assert "13800138000" not in body["passkey"]["name"]
    assert body["passkey"]["name"].startswith("Phone 138")
    status, body = await _register(http, base, headers, device, name="card 4111111111111111")
    assert status == 400, body
    assert body["error"]["code"] == "policy_blocked" and body["error"]["field"] == "name"


async def test_challenges_are_single_use_short_lived_and_counters_must_grow(gw) -> None:
    http, base, svc, clock = gw
    _, headers = await _staff(http, base, svc, clock)
    device = SoftAuthenticator(origin=_origin(svc))
    assert (await _register(http, base, headers, device))[0] == 201

    _, started = await _post(http, f"{base}/api/login/passkey/options")
    answer = device.get(started["options"])
    url = f"{base}/api/login/passkey"
    assert (await _post(http, url, challenge_id=started["challenge_id"], credential=answer))[
        0
    ] == 200
    replay = await _post(http, url, challenge_id=started["challenge_id"], credential=answer)
    assert replay[0] == 401  # the challenge was taken by the first answer

    _, started = await _post(http, f"{base}/api/login/passkey/options")
    clock.advance(121)
    late = device.get(started["options"])
    assert (await _post(http, url, challenge_id=started["challenge_id"], credential=late))[0] == 401

    # a cloned authenticator shows up as a counter that did not move past the stored one
    (stored,) = await svc.store.list_passkeys((await svc.store.list_agents("demo"))[-1].id)
    assert stored.sign_count == 1
    device.counter = stored.sign_count
    status, _ = await _passkey_login(http, base, device, counter_step=0)
    assert status == 401
    reasons = [d["reason"] for d in await _audit(svc, "login.failed")]
    assert reasons.count("challenge_expired") == 2 and "passkey_invalid" in reasons


async def test_registration_refusals(gw) -> None:
    http, base, svc, clock = gw
    _, headers = await _staff(http, base, svc, clock)
    device = SoftAuthenticator(origin=_origin(svc))
    status, body = await _register(http, base, headers, device, origin="https://evil.example")
    assert (status, body["error"]["code"]) == (400, "passkey_invalid")
    status, body = await _register(http, base, headers, SoftAuthenticator(_origin(svc)), uv=False)
    assert (status, body["error"]["code"]) == (400, "passkey_invalid")
    _, started = await _post(http, f"{base}/api/me/passkeys/options", headers)
    credential = device.create(started["options"])
    first = await _post(
        http,
        f"{base}/api/me/passkeys",
        headers,
        challenge_id=started["challenge_id"],
        credential=credential,
    )
    assert first[0] == 201
    second = await _post(
        http,
        f"{base}/api/me/passkeys",
        headers,
        challenge_id=started["challenge_id"],
        credential=credential,
    )
    assert (second[0], second[1]["error"]["code"]) == (400, "challenge_expired")
    bad = await _post(
        http, f"{base}/api/me/passkeys", headers, challenge_id="wac_nope1234", credential={}
    )
    assert bad[0] == 400
    clock.advance(svc.config.auth.reauth_window + 1)
    status, body = await _post(http, f"{base}/api/me/passkeys/options", headers)
    assert (status, body["error"]["code"]) == (403, "reauth_required")


async def test_the_tenant_rule_admits_only_passkey_sessions_of_covered_roles(gw) -> None:
    http, base, svc, clock = gw
    _, admin = await _staff(http, base, svc, clock)
    async with http.put(
        f"{base}/api/governance/settings", json={"phishing_resistant_mfa": "staff"}, headers=admin
    ) as r:
        body = await r.json()
        assert r.status == 200 and body["settings"]["phishing_resistant_mfa"] == "staff"
    svc.tenants.invalidate("demo")

    _, sup = await _staff(http, base, svc, clock, role="supervisor")
    async with http.get(f"{base}/api/me", headers=sup) as r:
        assert (await r.json())["passkey_gate"] == "passkey_enrollment_required"
    async with http.get(f"{base}/api/history/chats", headers=sup) as r:
        assert r.status == 403
        assert (await r.json())["error"]["code"] == "passkey_enrollment_required"
    async with http.ws_connect(f"{base}/ws/agent", headers=sup) as ws:
        refused = await ws.receive_json()
        assert refused == {
            "t": "error",
            "code": "4403",
            "message": "passkey enrollment required",
        }
        closed = await ws.receive()
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 4403

    device = SoftAuthenticator(origin=_origin(svc))
    assert (await _register(http, base, sup, device))[0] == 201  # enrolment is allowed
    async with http.get(f"{base}/api/history/chats", headers=sup) as r:
        assert (await r.json())["error"]["code"] == "passkey_required"
    status, session = await _passkey_login(http, base, device)
    assert status == 200
    async with http.get(f"{base}/api/history/chats", headers=bearer(session["token"])) as r:
        assert r.status == 200

    _, plain_agent = await _staff(http, base, svc, clock, role="agent")  # not covered
    async with http.get(f"{base}/api/history/chats", headers=plain_agent) as r:
        assert r.status == 200


async def test_an_mfa_reset_ends_the_passkeys(gw) -> None:
    http, base, svc, clock = gw
    agent, headers = await _staff(http, base, svc, clock, role="supervisor")
    device = SoftAuthenticator(origin=_origin(svc))
    assert (await _register(http, base, headers, device))[0] == 201
    await svc.logins.reset_mfa(agent, actor="test")
    assert await svc.store.list_passkeys(agent.id) == []
    assert (await _passkey_login(http, base, device))[0] == 401
    assert (await _audit(svc, "mfa.reset"))[0]["passkeys_removed"] == 1
