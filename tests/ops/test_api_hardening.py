"""Regression tests for what schemathesis found (tests/ops/test_api_fuzz.py).

Each failed on the code before the fix: the gateway answered 200 and silently picked one
reading of an ambiguous or invalid query.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.gateway.helpers import FakeClock, bearer, login, make_agent, start_gateway


@pytest.fixture
async def admin_api(tmp_path: Path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock)
    _agent, secret, password = await make_agent(svc, "ana@example.com", role="admin")
    async with aiohttp.ClientSession() as http:
        token = await login(http, base, "ana@example.com", password, secret, clock())
        yield http, base, bearer(token)
    await runner.cleanup()


@pytest.mark.parametrize(
    "query",
    [
        "/api/plugins/outbox?plugin=a&plugin=b",
        "/api/audit?action=x&action=y",
        "/api/plugins/dead?limit=1&limit=2",
    ],
)
async def test_a_repeated_query_parameter_is_refused(admin_api, query: str) -> None:
    http, base, headers = admin_api
    async with http.get(base + query, headers=headers) as resp:
        body = await resp.json()
        assert resp.status == 400, body
        assert body["error"]["code"] == "bad_request"
        assert body["error"]["field"] == query.split("?")[1].split("=")[0]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/flags?all=247", "all"),
        ("/api/plugins?health=maybe", "health"),
    ],
)
async def test_an_unknown_switch_value_is_refused(admin_api, path: str, field: str) -> None:
    http, base, headers = admin_api
    async with http.get(base + path, headers=headers) as resp:
        body = await resp.json()
        assert resp.status == 400, body
        assert body["error"]["field"] == field


@pytest.mark.parametrize(
    "path",
    [
        "/api/flags?all=1",
        "/api/flags?all=",
        "/api/flags",
        "/api/plugins?health=0",
        "/api/plugins/outbox?plugin=x",
    ],
)
async def test_documented_values_still_work(admin_api, path: str) -> None:
    http, base, headers = admin_api
    async with http.get(base + path, headers=headers) as resp:
        assert resp.status == 200, await resp.text()


async def test_an_audit_cursor_beyond_64_bits_is_a_400_not_a_500(admin_api) -> None:
    http, base, headers = admin_api
    huge = "299595444469356221970097613786054656"
    async with http.get(f"{base}/api/audit?before_id={huge}", headers=headers) as resp:
        body = await resp.json()
        assert resp.status == 400, body
        assert body["error"]["field"] == "before_id"
    async with http.get(f"{base}/api/audit?before_id={2**63 - 1}", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
