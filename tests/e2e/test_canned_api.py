"""Shared canned responses over real HTTP: validated, policy-checked, tenant-scoped."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from gateway.store.base import Tenant
from tests.e2e.conftest import running_gateway
from tests.gateway.helpers import bearer


@pytest.fixture
async def gw(tmp_path: Path):
    async with running_gateway(tmp_path) as gateway, aiohttp.ClientSession() as http:
        await gateway.svc.store.create_tenant(Tenant(id="other", name="Other"))
        for email, role, tenant in [
            ("root@example.com", "admin", "demo"),
            ("ana@example.com", "agent", "demo"),
            ("eve@example.com", "admin", "other"),
        ]:
            await gateway.login(email, role=role, tenant=tenant)
        yield http, gateway.base, gateway.svc, gateway.tokens


async def _put(http, base, token, responses):
    async with http.put(
        base + "/api/canned", json={"responses": responses}, headers=bearer(token)
    ) as resp:
        return resp.status, await resp.json()


async def _get(http, base, token):
    async with http.get(base + "/api/canned", headers=bearer(token)) as resp:
        return resp.status, await resp.json()


async def test_admin_saves_agents_read_other_tenants_do_not_see(gw):
    http, base, svc, tokens = gw
    refund = {"shortcut": "/refund", "text": "Hi {customer_name}, your refund is on its way."}
    billing = {"shortcut": "/refund", "text": "Billing refunds take 3 days.", "queue": "billing"}
    status, body = await _put(http, base, tokens["root@example.com"], [refund, billing])
    assert status == 200 and body["responses"] == [refund, billing]
    assert body["variables"] == ["customer_name", "agent_name"]
    assert await _get(http, base, tokens["ana@example.com"]) == (200, body)
    status, other = await _get(http, base, tokens["eve@example.com"])
    assert status == 200 and other["responses"] == []
    # Agents may read but not write.
    status, err = await _put(http, base, tokens["ana@example.com"], [])
    assert status == 403 and err["error"]["code"] == "forbidden"
    audit = await svc.store.query_audit(tenant_id="demo", action="canned.updated")
    assert len(audit) == 1 and audit[0].details == {"count": 2}
    assert "refund is on its way" not in str(audit[0].details)


@pytest.mark.parametrize(
    ("responses", "code", "index"),
    [
        (
            [
                {"shortcut": "/ok", "text": "fine"},
                {"shortcut": "/card", "text": "Use card 4111 1111 1111 1111"},
            ],
            "canned_blocked",
            1,
        ),
        (
            [{"shortcut": "/a", "text": "x"}, {"shortcut": "/a", "text": "y"}],
            "duplicate_shortcut",
            1,
        ),
        ([{"shortcut": "/v", "text": "Dear {customer_email}"}], "unknown_variable", 0),
        ([{"shortcut": "refund", "text": "no slash"}], "bad_request", None),
        ([{"shortcut": "/x", "text": ""}], "bad_request", None),
        ([{"shortcut": "/x", "text": "t", "queue": "bad queue"}], "bad_request", None),
        ([{"shortcut": "/x", "text": "t", "extra": 1}], "bad_request", None),
        ([{"shortcut": f"/s{i}", "text": "t"} for i in range(201)], "bad_request", None),
    ],
)
async def test_invalid_lists_are_refused_and_nothing_is_saved(gw, responses, code, index):
    http, base, _svc, tokens = gw
    status, err = await _put(http, base, tokens["root@example.com"], responses)
    assert status == 400 and err["error"]["code"] == code
    if index is not None:
        assert err["error"]["index"] == index
    if code == "canned_blocked":
        assert err["error"]["kinds"] == ["card"]
        assert "4111" not in err["error"]["message"]
    assert (await _get(http, base, tokens["ana@example.com"]))[1]["responses"] == []
