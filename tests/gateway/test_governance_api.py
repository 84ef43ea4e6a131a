"""Governance over real HTTP: audit verification (API and CLI), audit coverage, alerts with
the live stream, acknowledgement into the incident record, Prometheus, and the
tenant-wide emergency actions (revoke with live sockets closing 4401, forced password
reset, plugin kill switch)."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3

import aiohttp
import pytest
from nacl.public import PrivateKey

from gateway.cli.main import main as cli_main
from gateway.store.base import OutboxEvent
from tests.gateway.helpers import (
    DEFAULT_PASSWORD,
    FakeClock,
    bearer,
    login,
    make_agent,
    start_gateway,
)


@pytest.fixture
async def gw(tmp_path):
    clock = FakeClock()
    # the kill-switch test's webhook receiver listens on loopback: operator allowance
    runner, base, svc = await start_gateway(
        tmp_path, clock=clock, plugins={"allow_private_targets": True}
    )
    async with aiohttp.ClientSession() as http:
        admin, secret, pw = await make_agent(svc, "boss@example.com", role="admin")
        token = await login(http, base, "boss@example.com", pw, secret, clock.now)
        yield http, base, svc, clock, admin, token
    await runner.cleanup()


async def _get(http, url, token):
    async with http.get(url, headers=bearer(token)) as r:
        return r.status, await r.json()


async def _post(http, url, token, body=None):
    async with http.post(url, headers=bearer(token), json=body if body is not None else {}) as r:
        return r.status, await r.json()


async def test_audit_verify_api_then_sql_edit_is_reported(gw, tmp_path):
    http, base, _svc, _clock, _admin, token = gw
    status, body = await _get(http, f"{base}/api/audit/verify", token)
    assert status == 200 and body["report"]["ok"] is True
    assert body["report"]["rows"] >= 2  # agent.created, login.ok
    db = sqlite3.connect(tmp_path / "data" / "cipherdesk.db", isolation_level=None)
    try:
        db.execute("DROP TRIGGER audit_log_no_update")
        row_id = db.execute("SELECT id FROM audit_log WHERE action = 'login.ok'").fetchone()[0]
        db.execute(f"UPDATE audit_log SET ip = '10.9.9.9' WHERE id = {row_id}")
    finally:
        db.close()
    status, body = await _get(http, f"{base}/api/audit/verify", token)
    report = body["report"]
    assert (report["ok"], report["problem"], report["first_broken_id"]) == (
        False,
        "mac_mismatch",
        row_id,
    )


async def test_cli_verify_and_export(tmp_path, capsys):
    clock = FakeClock()
    runner, _base, svc = await start_gateway(tmp_path, clock=clock)
    await make_agent(svc, "ann@example.com")
    await svc.auditor.record("policy.tested", tenant_id="demo", actor="x", chars=12)
    await runner.cleanup()
    data = str(tmp_path / "data")
    await asyncio.to_thread(cli_main, ["audit", "verify", "--data-dir", data])
    out = capsys.readouterr().out
    assert "demo: ok" in out
    out_file = tmp_path / "siem.jsonl"
    await asyncio.to_thread(
        cli_main,
        ["audit", "export", "--tenant", "demo", "--data-dir", data, "--out", str(out_file)],
    )
    lines = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert {"agent.created", "policy.tested"} <= {line["action"] for line in lines}
    assert all(len(line["mac"]) == 64 and line["seq"] >= 1 for line in lines)
    db = sqlite3.connect(tmp_path / "data" / "cipherdesk.db", isolation_level=None)
    try:
        db.execute("DROP TRIGGER audit_log_delete_only_checkpointed")
        db.execute("DELETE FROM audit_log WHERE action = 'agent.created'")
    finally:
        db.close()
    with pytest.raises(SystemExit) as exited:
        await asyncio.to_thread(
            cli_main, ["audit", "verify", "--tenant", "demo", "--data-dir", data]
        )
    assert exited.value.code == 1
    assert "demo: BROKEN at row id" in capsys.readouterr().out


async def test_audit_reads_and_policy_tests_are_audited_without_text(gw):
    http, base, svc, _clock, admin, token = gw
    secret_text = "my card 4111 1111 1111 1111 please"
    status, _ = await _post(http, f"{base}/api/policy/test", token, {"text": secret_text})
    assert status == 200
    status, _ = await _get(http, f"{base}/api/audit?limit=5", token)
    assert status == 200
    tested = await svc.store.query_audit(action="policy.tested")
    assert len(tested) == 1 and tested[0].details["chars"] == len(secret_text)
    assert "4111" not in json.dumps(tested[0].details)
    read = await svc.store.query_audit(action="audit.read")
    assert len(read) == 1 and read[0].actor == admin.id


async def _bulk_open(svc, actor: str, n: int) -> None:
    for i in range(n):
        await svc.auditor.record(
            "transcript.opened", tenant_id="demo", actor=actor, target=f"chat{i}", via="watch"
        )


async def test_alert_is_streamed_acknowledged_and_recorded_in_an_incident(gw):
    http, base, svc, _clock, admin, token = gw
    sup, _, _ = await make_agent(svc, "sup@example.com", role="supervisor")
    async with http.get(f"{base}/api/alerts/stream", headers=bearer(token)) as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")

        async def next_event() -> dict:
            data = None
            while True:
                line = (await asyncio.wait_for(stream.content.readline(), 5)).decode()
                if line.startswith("data: "):
                    data = json.loads(line[6:])
                elif line == "\n" and data is not None:
                    return data

        assert (await next_event())["alerts"] == []
        await _bulk_open(svc, sup.id, 20)
        update = await next_event()
    [alert] = update["alerts"]
    assert (alert["rule"], alert["subject"], alert["state"]) == (
        "bulk_transcript_access",
        sup.id,
        "open",
    )
    status, body = await _post(http, f"{base}/api/alerts/{alert['id']}/ack", token)
    assert status == 200 and body["alert"]["state"] == "acknowledged"
    status, again = await _post(http, f"{base}/api/alerts/{alert['id']}/ack", token)
    assert status == 409 and again["error"]["code"] == "alert_state"
    status, inc = await _get(http, f"{base}/api/incidents/{body['incident']}", token)
    assert status == 200
    actions = [e["action"] for e in inc["timeline"]]
    assert actions == ["incident.opened", "alert.fired", "alert.acknowledged"]
    assert inc["timeline"][2]["actor"] == admin.id
    async with http.get(f"{base}/metrics") as r:
        text = await r.text()
    assert 'cipherdesk_alerts_total{rule="bulk_transcript_access",severity="high"} 1.0' in text
    assert await svc.store.query_audit(action="alert.bulk_transcript_access")
    assert await svc.store.query_audit(action="alert.acknowledged")


async def test_alert_routes_are_tenant_scoped_and_permissioned(gw):
    http, base, svc, clock, _admin, token = gw
    sup, s_secret, s_pw = await make_agent(svc, "sup@example.com", role="supervisor")
    await _bulk_open(svc, sup.id, 20)
    [alert] = await svc.store.list_alerts("demo")
    sup_token = await login(http, base, "sup@example.com", s_pw, s_secret, clock.now)
    status, body = await _post(http, f"{base}/api/alerts/{alert.id}/ack", sup_token)
    assert status == 403 and body["error"]["code"] == "forbidden"
    status, body = await _post(http, f"{base}/api/alerts/99999/ack", token)
    assert status == 404


async def test_settings_validation(gw):
    http, base, _svc, _clock, _admin, token = gw
    url = f"{base}/api/governance/settings"

    async def put(body):
        async with http.put(url, headers=bearer(token), json=body) as r:
            return r.status, await r.json()

    status, body = await put(
        {"alert_rules": {"bulk_transcript_access": {"threshold": 5, "window": 120}}}
    )
    assert status == 200
    assert body["settings"]["alert_rules"]["bulk_transcript_access"]["threshold"] == 5
    for bad in (
        {"alert_rules": {"nope": {}}},
        {"alert_rules": {"mass_erasure": {"threshold": 0}}},
        {"alert_rules": {"mass_erasure": {"window": 5}}},
        {"working_hours": {"start": "25:00", "end": "18:00", "days": [1], "tz": "UTC"}},
        {"notify": {"webhook": {"url": "http://127.0.0.1:9/x", "secret": "s" * 20}}},
        {"notify": {"webhook": {"url": "https://10.1.2.3/x", "secret": "s" * 20}}},
        {"notify": {"webhook": {"url": "https://localhost/x", "secret": "s" * 20}}},
        {
            "notify": {
                "dingtalk": {"url": "https://evil.example/robot/send", "secret": "SEC" + "x" * 20}
            }
        },
        {"notify": {"email": {"to": ["sec@example.com"]}}},
    ):  # no SMTP relay set
        status, body = await put(bad)
        assert status == 400 and body["error"]["code"] == "invalid_settings", bad
        assert "127.0.0.1" not in body["error"]["message"]
    status, body = await put({"audit_retention_days": 90})
    assert status == 400
    status, body = await put(
        {"notify": {"webhook": {"url": "https://hooks.example.com/a", "secret": "s" * 20}}}
    )
    assert status == 200 and body["settings"]["notify"]["webhook"] == {"configured": True}
    assert "hooks.example.com" not in json.dumps(body)


async def _agent_socket(http, base, token):
    ws = await http.ws_connect(f"{base}/ws/agent", headers=bearer(token))
    hello = await asyncio.wait_for(ws.receive(), 5)
    assert hello.type == aiohttp.WSMsgType.TEXT
    client_pk = base64.b64encode(bytes(PrivateKey.generate().public_key)).decode()
    await ws.send_str(json.dumps({"t": "key", "client_pk": client_pk}))
    first = await asyncio.wait_for(ws.receive(), 5)
    assert first.type == aiohttp.WSMsgType.TEXT
    return ws


async def _close_code(ws) -> int:
    while True:
        msg = await asyncio.wait_for(ws.receive(), 5)
        if msg.type != aiohttp.WSMsgType.TEXT:
            return msg.data


async def test_emergency_revoke_all_sessions_closes_live_sockets(gw):
    http, base, svc, clock, _admin, token = gw
    _a1, s1, p1 = await make_agent(svc, "a1@example.com")
    _a2, s2, p2 = await make_agent(svc, "a2@example.com", role="supervisor")
    t1 = await login(http, base, "a1@example.com", p1, s1, clock.now)
    t2 = await login(http, base, "a2@example.com", p2, s2, clock.now)
    ws1, ws2 = await _agent_socket(http, base, t1), await _agent_socket(http, base, t2)
    try:
        status, body = await _post(http, f"{base}/api/emergency/revoke-sessions", token)
        assert status == 200 and body["sessions_revoked"] == 2  # the admin keeps theirs
        assert await _close_code(ws1) == 4401 and await _close_code(ws2) == 4401
    finally:
        await ws1.close()
        await ws2.close()
    assert (await _get(http, f"{base}/api/me", t1))[0] == 401
    assert (await _get(http, f"{base}/api/me", token))[0] == 200
    status, incidents = await _get(http, f"{base}/api/incidents", token)
    [incident] = incidents["incidents"]
    status, detail = await _get(http, f"{base}/api/incidents/{incident['id']}", token)
    assert [e["action"] for e in detail["timeline"]] == [
        "incident.opened",
        "emergency.sessions_revoked",
    ]
    assert detail["timeline"][1]["details"] == {"sessions": 2}


async def test_forced_password_reset(gw):
    http, base, svc, clock, _admin, token = gw
    _a1, s1, p1 = await make_agent(svc, "a1@example.com")
    status, body = await _post(http, f"{base}/api/emergency/force-password-reset", token)
    assert status == 200 and body["agents"] == 1  # everyone but the acting admin
    t1 = await login(http, base, "a1@example.com", p1, s1, clock.now)
    status, body = await _get(http, f"{base}/api/agents", t1)
    assert status == 403 and body["error"]["code"] == "password_change_required"
    status, me = await _get(http, f"{base}/api/me", t1)
    assert status == 200 and me["password_change_required"] is True
    ws = await http.ws_connect(f"{base}/ws/agent", headers=bearer(t1))
    try:
        assert await _close_code(ws) == 4403
    finally:
        await ws.close()
    status, _ = await _post(
        http,
        f"{base}/api/me/password",
        t1,
        {"current": DEFAULT_PASSWORD, "new": "a brand new passphrase 77"},
    )
    assert status == 200
    status, me = await _get(http, f"{base}/api/me", t1)
    assert me["password_change_required"] is False
    assert (await _get(http, f"{base}/api/me", token))[1]["password_change_required"] is False


async def test_plugin_kill_switch_keeps_events_for_later(gw):
    http, base, svc, clock, _admin, token = gw
    dispatcher = svc.dispatcher
    status, _ = await _post(http, f"{base}/api/emergency/pause-plugins", token, {"paused": True})
    assert status == 200
    gov = svc.governance
    assert await gov.plugins_paused("demo") is True
    item = type(
        "Item",
        (),
        {
            "id": 0,
            "tenant_id": "demo",
            "plugin": "webhook",
            "event_type": "chat.opened",
            "attempts": 0,
            "last_error": None,
        },
    )
    await svc.store.enqueue_events(
        [
            OutboxEvent(
                tenant_id="demo",
                plugin="webhook",
                event_type="chat.opened",
                idempotency_key="k1",
                payload_sealed=b"x",
                created_at=clock.now,
            )
        ]
    )
    [pending] = await svc.store.list_events(tenant_id="demo")
    item.id = pending.id
    result = await dispatcher._deliver_one(item)
    assert result.outcome == "deferred" and result.error == "paused"
    [still] = await svc.store.list_events(tenant_id="demo")
    assert still.state == "pending" and still.next_attempt_at >= clock.now + 30
    status, _ = await _post(http, f"{base}/api/emergency/pause-plugins", token, {"paused": False})
    assert await gov.plugins_paused("demo") is False
    actions = [e.action for e in await svc.store.query_audit(tenant_id="demo")]
    assert "emergency.plugins_paused" in actions and "emergency.plugins_resumed" in actions


async def test_freeze_from_the_panel_is_written_to_the_incident(gw):
    http, base, _svc, _clock, _admin, token = gw
    status, _ = await _post(http, f"{base}/api/emergency/freeze", token, {"frozen": True})
    assert status == 200
    [incident] = (await _get(http, f"{base}/api/incidents", token))[1]["incidents"]
    _, detail = await _get(http, f"{base}/api/incidents/{incident['id']}", token)
    assert [e["action"] for e in detail["timeline"]] == ["incident.opened", "tenant.frozen"]


async def test_alert_stream_ends_when_the_session_is_revoked(gw):
    http, base, _svc, _clock, _admin, token = gw
    async with http.get(f"{base}/api/alerts/stream", headers=bearer(token)) as stream:
        first = await asyncio.wait_for(stream.content.readline(), 5)
        assert first == b"event: alerts\n"
        async with http.post(f"{base}/api/logout", headers=bearer(token)) as r:
            assert r.status == 200
        rest = await asyncio.wait_for(stream.content.read(), 5)  # EOF: the server ended it
    assert b"keep-alive" not in rest


async def test_kill_switch_end_to_end_with_the_webhook_plugin(gw):
    from tests.gateway.test_plugins_api import SECRET, Receiver, _wait

    http, base, svc, clock, _admin, token = gw
    receiver = Receiver()
    await receiver.start()
    try:
        status, _ = await _put_plugin(http, base, token, receiver.url, SECRET)
        assert status == 200
        assert (await _post(http, f"{base}/api/emergency/pause-plugins", token, {"paused": True}))[
            0
        ] == 200
        await svc.chats.open_chat("demo")

        async def deferred():
            items = await svc.store.list_events(tenant_id="demo", plugin="webhook")
            return items and items[0].last_error == "paused" and items

        [item] = await _wait(deferred)
        assert item.state == "pending" and receiver.requests == []
        assert (await _post(http, f"{base}/api/emergency/pause-plugins", token, {"paused": False}))[
            0
        ] == 200
        clock.advance(31)  # the deferred item is due again
        svc.dispatcher.notify()
        await _wait(lambda: _true(len(receiver.requests) == 1))
        [after] = await svc.store.list_events(tenant_id="demo", plugin="webhook")
        assert after.state == "delivered"
    finally:
        assert receiver.runner is not None
        await receiver.runner.cleanup()


async def _true(value: bool) -> bool:
    return value


async def _put_plugin(http, base, token, url, secret):
    async with http.put(
        f"{base}/api/plugins/webhook",
        headers=bearer(token),
        json={"enabled": True, "config": {"url": url, "secret": secret, "events": ["chat.opened"]}},
    ) as r:
        return r.status, await r.text()
