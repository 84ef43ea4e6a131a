"""Destruction reports and retention settings over real HTTP, and the offline CLI:
an erase through the admin API answers a signed report, ``GET /api/reports`` lists it
(own tenant only), ``cipherdesk report export`` writes it and ``cipherdesk report verify``
passes it with the gateway's key and fails it once tampered with; the tenant retention
settings are bounded and show the effective values."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from gateway.cli.main import main as cli_main
from gateway.reports import chat_hash
from tests.gateway.helpers import FakeClock, bearer, login, make_agent, start_gateway


@pytest.fixture
async def gw(tmp_path):
    clock = FakeClock()
    runner, base, svc = await start_gateway(tmp_path, clock=clock)
    async with aiohttp.ClientSession() as http:
        _admin, secret, pw = await make_agent(svc, "boss@example.com", role="admin")
        token = await login(http, base, "boss@example.com", pw, secret, clock.now)
        _agent, secret2, pw2 = await make_agent(svc, "ann@example.com", role="agent")
        agent_token = await login(http, base, "ann@example.com", pw2, secret2, clock.now)
        yield http, base, svc, token, agent_token
    await runner.cleanup()


async def test_retention_settings_are_bounded_and_shown(gw):
    http, base, _svc, token, agent_token = gw
    url = f"{base}/api/governance/settings"
    for bad, field in (
        ({"flag_days": -1}, "retention"),
        ({"idle_close_minutes": 50_000}, "retention"),
        ({"unknown": 1}, "unknown"),
    ):
        async with http.put(url, headers=bearer(token), json={"retention": bad}) as r:
            body = await r.json()
            assert r.status == 400, body
            assert (body["error"]["code"], body["error"]["field"]) == ("bad_request", field)
    body = {"retention": {"idle_close_minutes": 45, "flag_days": 14}}
    async with http.put(url, headers=bearer(token), json=body) as r:
        assert r.status == 200
        shown = (await r.json())["settings"]["retention"]
    assert (shown["idle_close_minutes"], shown["flag_days"]) == (45, 14)
    assert (shown["closed_chat_days"], shown["audit_days"]) == (90, 180)  # defaults
    async with http.get(url, headers=bearer(agent_token)) as r:
        assert r.status == 403


async def test_erase_answers_a_signed_report_listed_exported_and_verified(gw, tmp_path, capsys):
    http, base, svc, token, agent_token = gw
    opened = await svc.chats.open_chat("demo")
    async with http.post(f"{base}/api/chats/{opened.chat.id}/erase", headers=bearer(token)) as r:
        assert r.status == 200
        answer = await r.json()
    assert answer["erased"] is True
    report = answer["report"]
    assert report["report"]["chats"] == [chat_hash(opened.chat.id)]
    assert report["signer"] == svc.identity.verify_key_b64

    async with http.get(f"{base}/api/reports", headers=bearer(token)) as r:
        listed = await r.json()
    assert r.status == 200 and listed == {"reports": [report], "next_before": None}
    rid = report["report"]["id"]
    async with http.get(f"{base}/api/reports/{rid}", headers=bearer(token)) as r:
        assert r.status == 200 and await r.json() == report
    async with http.get(f"{base}/api/reports/nope", headers=bearer(token)) as r:
        assert r.status == 404
    async with http.get(f"{base}/api/reports", headers=bearer(agent_token)) as r:
        assert r.status == 403
    async with http.get(f"{base}/api/reports?limit=0", headers=bearer(token)) as r:
        assert r.status == 400

    data = str(tmp_path / "data")
    out = tmp_path / "report.json"
    await asyncio.to_thread(
        cli_main, ["report", "export", rid, "--data-dir", data, "--out", str(out)]
    )
    assert json.loads(out.read_text()) == report
    key = svc.identity.verify_key_b64
    capsys.readouterr()
    await asyncio.to_thread(cli_main, ["report", "verify", str(out), "--key", key])
    assert capsys.readouterr().out.startswith(f"ok: erase report {rid}")

    tampered = json.loads(out.read_text())
    tampered["report"]["actor"] = "someone-else"
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(tampered))
    with pytest.raises(SystemExit) as exited:
        await asyncio.to_thread(cli_main, ["report", "verify", str(bad), "--key", key])
    assert exited.value.code == 1
    assert "INVALID" in capsys.readouterr().out


async def test_cli_chat_erase_signs_a_report(gw, tmp_path, capsys):
    _http, _base, svc, _token, _agent_token = gw
    opened = await svc.chats.open_chat("demo")
    data = str(tmp_path / "data")
    capsys.readouterr()
    await asyncio.to_thread(cli_main, ["chat", "erase", opened.chat.id, "--data-dir", data])
    out = capsys.readouterr().out
    [stored] = await svc.store.list_reports("demo")
    assert f"signed destruction report {stored.id}" in out
    body = json.loads(stored.body)
    assert (body["kind"], body["actor"], body["chats"]) == (
        "erase",
        "cli",
        [chat_hash(opened.chat.id)],
    )
    with pytest.raises(SystemExit) as exited:
        await asyncio.to_thread(cli_main, ["chat", "erase", "no-such-chat", "--data-dir", data])
    assert exited.value.code == 2
    assert len(await svc.store.list_reports("demo")) == 1
