"""Issue 16.9: a password chosen by an admin must be replaced by the agent at first use.

The admin knows that password, so until the agent picks their own every API call but
``/api/me``, ``/api/me/password`` and ``/api/logout`` is refused with
``password_change_required``.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest

from tests.gateway.helpers import FakeClock, bearer, login, make_agent, start_gateway

ADMIN_SET = "a long enough passphrase 1"
OWN = "violet harbour lantern 47 quietly"


@pytest.fixture
async def gw(tmp_path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock)
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, clock
    await runner.cleanup()


async def test_admin_chosen_password_forces_a_change_before_any_work(gw):
    http, base, svc, clock = gw
    _, secret, pw = await make_agent(svc, "admin@example.com", role="admin")
    admin = await login(http, base, "admin@example.com", pw, secret, clock.now)
    async with http.post(
        f"{base}/api/agents",
        headers=bearer(admin),
        json={"email": "hire@example.com", "role": "agent", "password": ADMIN_SET},
    ) as r:
        assert r.status == 201, await r.text()
        created = await r.json()
    totp = parse_qs(urlparse(created["otpauth_uri"]).query)["secret"][0]
    assert await svc.store.password_reset_forced(created["agent"]["id"])

    token = await login(http, base, "hire@example.com", ADMIN_SET, totp, clock.now)
    h = bearer(token)
    async with http.get(f"{base}/api/me", headers=h) as r:
        assert r.status == 200 and (await r.json())["password_change_required"] is True
    async with http.get(f"{base}/api/canned", headers=h) as r:
        assert r.status == 403
        assert (await r.json())["error"]["code"] == "password_change_required"
    async with http.post(
        f"{base}/api/me/password", headers=h, json={"current": ADMIN_SET, "new": OWN}
    ) as r:
        assert r.status == 200, await r.text()
    async with http.get(f"{base}/api/me", headers=h) as r:
        assert (await r.json())["password_change_required"] is False
    async with http.get(f"{base}/api/canned", headers=h) as r:
        assert r.status == 200, await r.text()
