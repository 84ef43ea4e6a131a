"""``POLICY_MANAGE`` is enforced: the message policy (PII actions and masks, keywords, link
domains, keyword lists) can only be changed by a principal holding it. Before, it was
declared but never checked: an API token scoped to ``tenant_manage`` (origins, identity
secrets) could switch PII masking off or replace the tenant's keyword lists."""

from __future__ import annotations

import aiohttp
import pytest

from auth.roles import Permission, Principal, Role
from gateway.api_tokens import api_tokens
from tests.gateway.helpers import FakeClock, bearer, make_agent, start_gateway


@pytest.fixture
async def gw(tmp_path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock)
    admin, _, _ = await make_agent(svc, "boss@example.com", role="admin")
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, admin
    await runner.cleanup()


async def _mint(svc, owner, scope: set[Permission]) -> str:
    principal = Principal(owner.id, owner.tenant_id, Role(owner.role))
    issued = await api_tokens(svc).create(
        owner, principal, "scoped", sorted(scope), 30, ip="127.0.0.1"
    )
    return issued.secret


async def _call(http, method, url, token, body=None):
    async with http.request(method, url, headers=bearer(token), json=body) as r:
        data = await r.json(content_type=None)
        return r.status, (data.get("error") or {}).get("code")


POLICY_OFF = {"policy": {"actions": {"card": {"customer": "allow", "agent": "allow"}}}}
LIST = {"text": "refund scam\tfraud\tflag\n"}


async def test_tenant_manage_alone_cannot_change_the_policy(gw):
    http, base, svc, admin = gw
    token = await _mint(svc, admin, {Permission.TENANT_MANAGE})
    assert await _call(http, "PATCH", f"{base}/api/tenant", token, POLICY_OFF) == (403, "forbidden")
    assert await _call(
        http, "PATCH", f"{base}/api/tenant", token, {"allowed_link_domains": ["evil.example"]}
    ) == (403, "forbidden")
    assert await _call(http, "PUT", f"{base}/api/policy/keyword-lists/scams", token, LIST) == (
        403,
        "forbidden",
    )
    assert await _call(http, "GET", f"{base}/api/policy/keyword-lists", token) == (403, "forbidden")
    # the rest of the tenant settings stay manageable with tenant_manage
    assert (await _call(http, "PATCH", f"{base}/api/tenant", token, {"name": "Demo Ltd"}))[0] == 200
    tenant = await svc.store.get_tenant("demo")
    assert "policy" not in tenant.settings and tenant.name == "Demo Ltd"
    assert await svc.store.list_keyword_lists("demo") == []


async def test_policy_manage_changes_the_policy(gw):
    http, base, svc, admin = gw
    token = await _mint(svc, admin, {Permission.TENANT_MANAGE, Permission.POLICY_MANAGE})
    assert (await _call(http, "PATCH", f"{base}/api/tenant", token, POLICY_OFF))[0] == 200
    assert (await _call(http, "PUT", f"{base}/api/policy/keyword-lists/scams", token, LIST))[
        0
    ] == 200
    tenant = await svc.store.get_tenant("demo")
    assert tenant.settings["policy"] == POLICY_OFF["policy"]
    assert [k.name for k in await svc.store.list_keyword_lists("demo")] == ["scams"]
