"""Plugin admin API over real HTTP (and ``cipherdesk plugins`` through a subprocess):
list / configure / disable, validation naming the field, secrets never shown back nor
audited, dead letters and outbox counts per tenant, roles, CSRF."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.http import plugins as plugins_http
from tests.gateway.helpers import (
    FakeClock,
    bearer,
    login,
    make_agent,
    make_tenant,
    start_gateway,
    totp_code,
)
from tests.gateway.store.helpers import event

ROOT = Path(__file__).resolve().parents[2]
SECRET = "whsec-Zq8LrT2vN5xK9pW3mB7cY1dF6gH4jS0a"
NEW_SECRET = "whsec-second-9f8e7d6c5b4a3928171615141312"


class Receiver:
    """A webhook receiver answering ``status`` (200 by default) and recording requests."""

    def __init__(self) -> None:
        self.status = 200
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        return web.Response(status=self.status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"


@pytest.fixture
async def gw(tmp_path):
    clock = FakeClock()
    # The receiver listens on 127.0.0.1: the operator's private-target allowance is on.
    runner, base, svc = await start_gateway(
        tmp_path, clock=clock, plugins={"allow_private_targets": True}
    )
    receiver = Receiver()
    await receiver.start()
    async with aiohttp.ClientSession() as http:
        yield http, base, svc, clock, receiver
    await runner.cleanup()
    assert receiver.runner is not None
    await receiver.runner.cleanup()


async def _token(http, base, svc, clock, email, *, tenant="demo", role="admin"):
    _, secret, pw = await make_agent(svc, email, tenant=tenant, role=role)
    return await login(http, base, email, pw, secret, clock.now)


async def _call(http, method, url, token, body=None, headers=None):
    h = {**bearer(token), **(headers or {})} if token else dict(headers or {})
    async with http.request(method, url, json=body, headers=h) as r:
        return r.status, await r.text()


def _all_files_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())


async def _wait(predicate, within: float = 10.0):
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_list_configure_disable_secrets_never_leak(gw, tmp_path):
    http, base, svc, clock, receiver = gw
    admin = await _token(http, base, svc, clock, "root@example.com")

    status, text = await _call(http, "GET", f"{base}/api/plugins", admin)
    assert status == 200, text
    listing = json.loads(text)
    by_name = {p["name"]: p for p in listing["plugins"]}
    assert {"webhook", "zendesk", "freshdesk"} <= set(by_name)
    hook = by_name["webhook"]
    assert hook["source"] == "builtin" and hook["installed"] and hook["tenant_config"] is None
    assert "chat.message" in hook["scopes"] and "customer.identity" in hook["scopes"]
    fields = {f["name"]: f for f in hook["config_schema"]}
    assert fields["secret"]["secret"] and fields["secret"]["required"]
    assert not fields["url"]["secret"] and fields["url"]["type"] == "url"
    assert isinstance(listing["problems"], list)

    body = {
        "enabled": True,
        "config": {"url": receiver.url, "secret": SECRET, "events": ["chat.opened", "chat.closed"]},
    }
    status, text = await _call(http, "PUT", f"{base}/api/plugins/webhook", admin, body)
    assert status == 200, text
    assert SECRET not in text
    stored = json.loads(text)["plugin"]
    assert stored["enabled"] and stored["secrets_set"] == ["secret"]
    assert stored["config"]["url"] == receiver.url
    assert stored["config"]["events"] == ["chat.opened", "chat.closed"]
    assert "secret" not in stored["config"]

    status, text = await _call(http, "GET", f"{base}/api/plugins?health=1", admin)
    assert status == 200 and SECRET not in text
    hook = {p["name"]: p for p in json.loads(text)["plugins"]}["webhook"]
    assert hook["tenant_config"]["enabled"] and hook["tenant_config"]["secrets_set"] == ["secret"]
    assert hook["health"]["ok"] is True

    # Changing a setting without the secret keeps the stored secret.
    body = {"config": {"url": receiver.url, "timeout": "5"}}
    status, text = await _call(http, "PUT", f"{base}/api/plugins/webhook", admin, body)
    assert status == 200, text
    cfg = await svc.store.get_plugin_config("demo", "webhook")
    assert svc.plugins.open_secrets(cfg) == {"secret": SECRET}
    assert cfg.config["timeout"] == 5.0

    # Validation errors name the field; a secret's value is never echoed.
    bad = [
        ({"url": "ftp://example.com/x", "secret": NEW_SECRET}, "url"),
        ({"secret": NEW_SECRET}, "url"),
        ({"url": receiver.url, "secret": NEW_SECRET, "bogus": "1"}, "bogus"),
        (
            {"url": receiver.url, "secret": NEW_SECRET, "include_identity": "maybe"},
            "include_identity",
        ),
        ({"url": receiver.url, "secret": NEW_SECRET, "events": ["chat.secrets"]}, "events"),
        ({"url": receiver.url, "previous_secret": 12345678901234}, "previous_secret"),
    ]
    for config, field in bad:
        status, text = await _call(
            http, "PUT", f"{base}/api/plugins/webhook", admin, {"config": config}
        )
        assert status == 400, (config, text)
        err = json.loads(text)["error"]
        assert err["code"] == "invalid_config" and err["field"] == field, text
        assert NEW_SECRET not in text and "12345678901234" not in text
    status, text = await _call(
        http,
        "PUT",
        f"{base}/api/plugins/webhook",
        admin,
        {"config": {"url": receiver.url}, "surprise": 1},
    )
    assert status == 400 and json.loads(text)["error"]["field"] == "surprise"
    status, text = await _call(http, "PUT", f"{base}/api/plugins/nope", admin, {"config": {}})
    assert status == 404 and json.loads(text)["error"]["code"] == "not_installed"
    # a failed validation changed nothing
    cfg = await svc.store.get_plugin_config("demo", "webhook")
    assert svc.plugins.open_secrets(cfg) == {"secret": SECRET}

    # Rotate: the new secret is stored, the response still shows names only.
    body = {"config": {"url": receiver.url, "secret": NEW_SECRET, "previous_secret": SECRET}}
    status, text = await _call(http, "PUT", f"{base}/api/plugins/webhook", admin, body)
    assert status == 200 and SECRET not in text and NEW_SECRET not in text
    assert json.loads(text)["plugin"]["secrets_set"] == ["previous_secret", "secret"]

    status, text = await _call(http, "POST", f"{base}/api/plugins/webhook/disable", admin)
    assert status == 200, text
    assert json.loads(text)["plugin"]["enabled"] is False
    assert not (await svc.store.get_plugin_config("demo", "webhook")).enabled
    status, text = await _call(http, "POST", f"{base}/api/plugins/zendesk/disable", admin)
    assert status == 404
    # re-enable without resending the config
    status, text = await _call(http, "PUT", f"{base}/api/plugins/webhook", admin, {"enabled": True})
    assert status == 200 and json.loads(text)["plugin"]["enabled"] is True
    status, text = await _call(http, "PUT", f"{base}/api/plugins/zendesk", admin, {"enabled": True})
    assert status == 400 and json.loads(text)["error"]["field"] == "config"

    # Audited, without secret values.
    status, text = await _call(http, "GET", f"{base}/api/audit?limit=500", admin)
    events = json.loads(text)["events"]
    actions = [e["action"] for e in events]
    assert actions.count("plugin.configured") == 4 and "plugin.disabled" in actions
    assert SECRET not in text and NEW_SECRET not in text
    rotated = next(
        e
        for e in events
        if e["action"] == "plugin.configured"
        and "previous_secret" in e["details"]["secret_fields_changed"]
    )
    assert rotated["target"] == "webhook"
    assert rotated["details"]["secret_fields_set"] == ["previous_secret", "secret"]
    # ...and nowhere on disk in clear (sealed with the master key).
    data_dir = tmp_path / "data"
    blob = _all_files_bytes(data_dir)
    assert SECRET.encode() not in blob and NEW_SECRET.encode() not in blob


async def test_cookie_writes_need_csrf(gw):
    http, base, svc, clock, receiver = gw
    _, secret, pw = await make_agent(svc, "root@example.com", role="admin")
    async with http.post(
        f"{base}/api/login",
        json={"email": "root@example.com", "password": pw, "otp": totp_code(secret, clock.now)},
    ) as r:
        assert r.status == 200
        body = await r.json()
    cookie = {"Cookie": f"cd_session={body['token']}"}
    config = {"config": {"url": receiver.url, "secret": SECRET}}
    async with http.put(f"{base}/api/plugins/webhook", json=config, headers=cookie) as r:
        assert r.status == 403 and (await r.json())["error"]["code"] == "csrf"
    async with http.get(f"{base}/api/plugins", headers=cookie) as r:
        assert r.status == 200  # reads need no CSRF token
    assert await svc.store.get_plugin_config("demo", "webhook") is None
    async with http.put(
        f"{base}/api/plugins/webhook", json=config, headers={**cookie, "X-CSRF-Token": body["csrf"]}
    ) as r:
        assert r.status == 200, await r.text()
    async with http.post(f"{base}/api/plugins/webhook/disable", headers=cookie) as r:
        assert r.status == 403
    assert (await svc.store.get_plugin_config("demo", "webhook")).enabled


async def test_non_admins_refused(gw):
    http, base, svc, clock, receiver = gw
    agent = await _token(http, base, svc, clock, "plain@example.com", role="agent")
    sup = await _token(http, base, svc, clock, "sup@example.com", role="supervisor")
    endpoints = [
        ("GET", "/api/plugins", None),
        ("PUT", "/api/plugins/webhook", {"config": {"url": receiver.url, "secret": SECRET}}),
        ("POST", "/api/plugins/webhook/disable", None),
        ("GET", "/api/plugins/dead", None),
        ("POST", "/api/plugins/dead/1/replay", None),
        ("GET", "/api/plugins/outbox", None),
    ]
    for token in (agent, sup):
        for method, path, body in endpoints:
            status, text = await _call(http, method, base + path, token, body)
            assert status == 403, (path, text)
            assert json.loads(text)["error"]["code"] == "forbidden"
    for method, path, body in endpoints:
        status, _ = await _call(http, method, base + path, None, body)
        assert status == 401
    assert await svc.store.get_plugin_config("demo", "webhook") is None


async def test_dead_letters_and_outbox_are_per_tenant(gw):
    http, base, svc, clock, receiver = gw
    await make_tenant(svc, "acme", ["https://acme.example"])
    demo = await _token(http, base, svc, clock, "root@example.com")
    acme = await _token(http, base, svc, clock, "root@acme.example", tenant="acme")
    body = {"config": {"url": receiver.url, "secret": SECRET, "events": ["chat.opened"]}}
    status, text = await _call(http, "PUT", f"{base}/api/plugins/webhook", demo, body)
    assert status == 200, text

    receiver.status = 401  # the vendor refuses: a permanent failure, dead at once
    opened = await svc.chats.open_chat("demo")

    async def dead_listed():
        _, text = await _call(http, "GET", f"{base}/api/plugins/dead?plugin=webhook", demo)
        return json.loads(text)["dead"]

    dead = await _wait(dead_listed)
    assert len(dead) == 1
    item = dead[0]
    assert set(item) == {
        "id",
        "plugin",
        "event_type",
        "chat_id",
        "attempts",
        "last_error",
        "created_at",
    }
    assert item["plugin"] == "webhook" and item["event_type"] == "chat.opened"
    assert item["chat_id"] == opened.chat.id and item["attempts"] == 1
    assert "401" in item["last_error"]
    assert len(receiver.requests) == 1

    status, text = await _call(http, "GET", f"{base}/api/plugins/outbox", demo)
    assert json.loads(text)["counts"] == {"pending": 0, "delivered": 0, "dead": 1}
    assert json.loads(text)["by_plugin"]["webhook"]["dead"] == 1

    # Tenant acme's admin sees none of it and cannot replay it.
    status, text = await _call(http, "GET", f"{base}/api/plugins/dead", acme)
    assert status == 200 and json.loads(text)["dead"] == []
    status, text = await _call(http, "POST", f"{base}/api/plugins/dead/{item['id']}/replay", acme)
    assert status == 404 and json.loads(text)["error"]["code"] == "not_found"
    status, text = await _call(http, "GET", f"{base}/api/plugins/outbox", acme)
    assert json.loads(text)["counts"] == {"pending": 0, "delivered": 0, "dead": 0}
    status, text = await _call(http, "GET", f"{base}/api/plugins", acme)
    assert all(p["tenant_config"] is None for p in json.loads(text)["plugins"])
    status, text = await _call(http, "POST", f"{base}/api/plugins/webhook/disable", acme)
    assert status == 404
    assert (await svc.store.list_events(tenant_id="demo", state="dead"))[0].id == item["id"]
    assert (await svc.store.get_plugin_config("demo", "webhook")).enabled

    # Bad ids and states.
    for path in ("/api/plugins/dead/abc/replay", "/api/plugins/dead/999999/replay"):
        status, _ = await _call(http, "POST", base + path, demo)
        assert status == 404
    status, text = await _call(http, "GET", f"{base}/api/plugins/outbox?state=lost", demo)
    assert status == 400 and json.loads(text)["error"]["field"] == "state"
    status, text = await _call(http, "GET", f"{base}/api/plugins/dead?limit=0", demo)
    assert status == 400 and json.loads(text)["error"]["field"] == "limit"

    # demo's admin replays it: delivered once the vendor is back.
    receiver.status = 200
    status, text = await _call(http, "POST", f"{base}/api/plugins/dead/{item['id']}/replay", demo)
    assert status == 200, text

    async def delivered():
        _, text = await _call(http, "GET", f"{base}/api/plugins/outbox?state=delivered", demo)
        return json.loads(text)["counts"]["delivered"] == 1

    await _wait(delivered)
    assert len(receiver.requests) == 2
    keys = {h["Idempotency-Key"] for h, _ in receiver.requests}
    assert len(keys) == 1  # the same event, the same idempotency key
    status, text = await _call(http, "GET", f"{base}/api/plugins/dead", demo)
    assert json.loads(text)["dead"] == []
    status, text = await _call(http, "GET", f"{base}/api/audit?action=plugin.dead_replayed", demo)
    (event,) = json.loads(text)["events"]
    assert event["target"] == str(item["id"]) and event["details"]["plugin"] == "webhook"
    status, text = await _call(http, "GET", f"{base}/api/audit?action=plugin.dead_replayed", acme)
    assert json.loads(text)["events"] == []


async def test_any_dead_letter_can_be_replayed_and_counts_stop_at_the_cap(gw, monkeypatch):
    """One dead letter is found by its id, not by listing (the listing stopped at
    COUNT_CAP rows, so a later one answered 404), and counts are bounded by the cap."""
    http, base, svc, _clock, _receiver = gw
    monkeypatch.setattr(plugins_http, "COUNT_CAP", 2)
    demo = await _token(http, base, svc, _clock, "root@example.com")
    await svc.store.enqueue_events(
        [event(f"k{n}", None, tenant_id="demo", plugin="nosuch") for n in range(4)]
    )
    items = await svc.store.list_events(tenant_id="demo", plugin="nosuch", limit=10)
    for item in items[:3]:
        assert await svc.store.dead_letter(item.id, attempts=5, error="gave up")

    status, text = await _call(http, "GET", f"{base}/api/plugins/outbox?state=dead", demo)
    assert status == 200 and json.loads(text) == {
        "counts": {"dead": 2},
        "by_plugin": {"nosuch": {"dead": 2}},
        "capped": True,
    }
    status, text = await _call(http, "POST", f"{base}/api/plugins/dead/{items[3].id}/replay", demo)
    assert status == 404, text  # pending, not dead
    status, text = await _call(http, "POST", f"{base}/api/plugins/dead/{items[2].id}/replay", demo)
    assert status == 200 and json.loads(text)["replayed"] == items[2].id, text
    status, text = await _call(http, "GET", f"{base}/api/audit?action=plugin.dead_replayed", demo)
    assert [e["target"] for e in json.loads(text)["events"]] == [str(items[2].id)]


def _cli(data_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIPHERDESK_")}
    env["CIPHERDESK_PLUGINS_ALLOW_PRIVATE_TARGETS"] = "true"  # receiver on 127.0.0.1
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from gateway.cli.main import main; main(sys.argv[1:])",
            *args,
            "--data-dir",
            str(data_dir),
        ],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=env,
    )


async def test_cli_enable_then_api_and_cli_list_show_it(gw, tmp_path):
    http, base, svc, clock, receiver = gw
    data = tmp_path / "data"
    out = await asyncio.to_thread(
        _cli,
        data,
        "plugins",
        "enable",
        "webhook",
        "--tenant",
        "demo",
        "--set",
        f"url={receiver.url}",
        "--set",
        "events=chat.opened,chat.closed",
        "--secret-stdin",
        "secret",
        stdin=SECRET + "\n",
    )
    assert out.returncode == 0, out.stderr
    assert SECRET not in out.stdout + out.stderr
    assert "secret = ***" in out.stdout and f"url = {receiver.url}" in out.stdout
    assert "warning" not in out.stderr  # the secret came from stdin

    admin = await _token(http, base, svc, clock, "root@example.com")
    status, text = await _call(http, "GET", f"{base}/api/plugins", admin)
    assert status == 200 and SECRET not in text
    cfg = {p["name"]: p for p in json.loads(text)["plugins"]}["webhook"]["tenant_config"]
    assert cfg["enabled"] and cfg["secrets_set"] == ["secret"]
    assert cfg["config"]["events"] == ["chat.opened", "chat.closed"]

    listed = await asyncio.to_thread(_cli, data, "plugins", "list", "--tenant", "demo", "--health")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("demo "))
    assert "webhook" in row and "enabled" in row and "secret=***" in row and "ok" in row
    assert SECRET not in listed.stdout
    assert "builtin" in listed.stdout and "Problems" in listed.stdout

    # Secret via --set works but warns; errors name the field and exit 2.
    out = await asyncio.to_thread(
        _cli,
        data,
        "plugins",
        "enable",
        "webhook",
        "--tenant",
        "demo",
        "--set",
        f"url={receiver.url}",
        "--set",
        f"secret={NEW_SECRET}",
    )
    assert out.returncode == 0 and "warning" in out.stderr and NEW_SECRET not in out.stdout
    out = await asyncio.to_thread(
        _cli, data, "plugins", "enable", "webhook", "--tenant", "demo", "--set", "url=notaurl"
    )
    assert out.returncode == 2 and "'url'" in out.stderr and "Traceback" not in out.stderr
    out = await asyncio.to_thread(
        _cli,
        data,
        "plugins",
        "enable",
        "webhook",
        "--tenant",
        "nosuch",
        "--set",
        f"url={receiver.url}",
    )
    assert out.returncode == 2 and "no tenant" in out.stderr

    out = await asyncio.to_thread(_cli, data, "plugins", "disable", "webhook", "--tenant", "demo")
    assert out.returncode == 0, out.stderr
    assert not (await svc.store.get_plugin_config("demo", "webhook")).enabled
    out = await asyncio.to_thread(_cli, data, "plugins", "dead", "--tenant", "demo")
    assert out.returncode == 0 and "no dead letters" in out.stdout
    out = await asyncio.to_thread(_cli, data, "plugins", "replay", "42")
    assert out.returncode == 2 and "no dead letter 42" in out.stderr
