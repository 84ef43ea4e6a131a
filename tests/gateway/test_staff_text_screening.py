"""Staff-entered free text goes through the tenant's policy before it is stored: incident
titles and summaries, approval reasons and API-token names. Before, a customer's card
number or phone pasted into one of them was stored, listed to admins, kept in the audit log
and exported to the SIEM exactly as typed. Now personal data is masked as for the
``export`` audience (phones ``138****8000``) and what the policy blocks (a card number, for
agents) is refused with ``400 policy_blocked`` naming the field."""

from __future__ import annotations

import json
import sqlite3

import aiohttp
import pytest

from tests.gateway.helpers import FakeClock, bearer, login, make_agent, start_gateway

CARD = "4111 1111 1111 1111"
PHONE = "13800138000"


@pytest.fixture
async def gw(tmp_path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock)
    async with aiohttp.ClientSession() as http:
        _, secret, pw = await make_agent(svc, "boss@example.com", role="admin")
        token = await login(http, base, "boss@example.com", pw, secret, clock.now)
        yield http, base, svc, token
    await runner.cleanup()


async def _call(http, method, url, token, body=None):
    async with http.request(method, url, headers=bearer(token), json=body) as r:
        return r.status, await r.json()


def _database_text(tmp_path) -> str:
    """Every text value of the audit log and the governance tables, as stored."""
    db = sqlite3.connect(tmp_path / "data" / "cipherdesk.db")
    try:
        rows = []
        for table in ("audit_log", "incidents", "incident_events", "approval_grants", "api_tokens"):
            exists = db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,))
            if exists.fetchone():
                rows += [repr(r) for r in db.execute(f"SELECT * FROM {table}")]
        return "\n".join(rows)
    finally:
        db.close()


async def test_incident_title_and_summary_are_masked_or_refused(gw, tmp_path):
    http, base, _svc, token = gw
    status, body = await _call(
        http,
        "POST",
        f"{base}/api/incidents",
        token,
        {"title": f"customer card {CARD} leaked in chat", "severity": "high"},
    )
    assert (status, body["error"]["code"], body["error"]["field"]) == (
        400,
        "policy_blocked",
        "title",
    )
    assert CARD not in json.dumps(body)
    status, body = await _call(
        http,
        "POST",
        f"{base}/api/incidents",
        token,
        {"title": f"customer {PHONE} reports a leak", "severity": "high"},
    )
    assert status == 201, body
    assert body["incident"]["title"] == "customer 138****8000 reports a leak"
    incident_id = body["incident"]["id"]
    status, body = await _call(
        http,
        "POST",
        f"{base}/api/incidents/{incident_id}/close",
        token,
        {"summary": f"called the customer on {PHONE}"},
    )
    assert status == 200, body
    status, detail = await _call(http, "GET", f"{base}/api/incidents/{incident_id}", token)
    assert status == 200
    shown = json.dumps(detail, ensure_ascii=False)
    assert CARD not in shown and PHONE not in shown
    stored = _database_text(tmp_path)
    assert CARD.replace(" ", "") not in stored.replace(" ", "") and PHONE not in stored


async def test_approval_reason_is_masked(gw, tmp_path):
    http, base, _svc, token = gw
    status, body = await _call(
        http,
        "POST",
        f"{base}/api/approvals",
        token,
        {
            "action": "chat.erase",
            "target": "chat-1",
            "reason": f"customer {PHONE} asked for erasure of card {CARD}",
        },
    )
    assert (status, body["error"]["code"], body["error"]["field"]) == (
        400,
        "policy_blocked",
        "reason",
    )
    status, body = await _call(
        http,
        "POST",
        f"{base}/api/approvals",
        token,
        {
            "action": "chat.erase",
            "target": "chat-1",
            "reason": f"customer {PHONE} asked for erasure",
        },
    )
    assert status == 201, body  # mode "off" (the default): granted at once
    assert body["grant"]["reason"] == "customer 138****8000 asked for erasure"
    status, listed = await _call(http, "GET", f"{base}/api/approvals", token)
    assert status == 200 and PHONE not in json.dumps(listed)
    stored = _database_text(tmp_path)
    assert PHONE not in stored and CARD.replace(" ", "") not in stored.replace(" ", "")


async def test_api_token_name_is_masked(gw, tmp_path):
    http, base, _svc, token = gw
    status, body = await _call(
        http,
        "POST",
        f"{base}/api/tokens",
        token,
        {"name": f"export for {PHONE}", "permissions": ["audit_read"], "expires_in_days": 1},
    )
    assert status == 201, body
    assert body["api_token"]["name"] == "export for 138****8000"
    status, listed = await _call(http, "GET", f"{base}/api/tokens", token)
    assert status == 200 and PHONE not in json.dumps(listed)
    assert PHONE not in _database_text(tmp_path)


async def test_plain_staff_text_is_kept_as_typed(gw):
    http, base, _svc, token = gw
    status, body = await _call(
        http,
        "POST",
        f"{base}/api/incidents",
        token,
        {"title": "登录异常：可疑的批量访问", "severity": "medium"},
    )
    assert status == 201 and body["incident"]["title"] == "登录异常：可疑的批量访问"
