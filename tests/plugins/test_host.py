"""Plugin code never fails a chat, broken plugins are visible, configuration is checked
in full before it is stored, and tenants cannot point plugins at private networks
(issue 11, findings 5 and 6; issue 17 item 4), through a real gateway and real sockets."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from gateway.plugin_host import OPERATOR_PRIVATE_KEY, check_instance
from gateway.sdk.client import Ack, CustomerClient
from plugins.api import ConfigError, ConfigField, Factory, Health, PluginInfo
from tests.gateway.helpers import bearer, login, make_agent, start_gateway

INFO = PluginInfo(
    name="fragile",
    version="1",
    scopes=frozenset({"chat.opened", "chat.message"}),
    config_schema=(
        ConfigField(name="mode", default="ok"),
        ConfigField(name="level", type="int", minimum=1, maximum=4, default=1),
    ),
)


class Fine:
    info = INFO

    async def deliver(self, event: Any) -> None:
        return None

    async def health(self) -> Health:
        return Health(ok=True)

    async def aclose(self) -> None:
        return None


class SyncDeliver(Fine):
    def deliver(self, event: Any) -> None:  # type: ignore[override]
        return None


CREATED: list[str] = []


async def _create(config: dict[str, Any], secrets: dict[str, Any], http: Any) -> Any:
    CREATED.append(config["mode"])
    if config["mode"] == "slow":
        await asyncio.sleep(2.0)  # e.g. an OAuth token fetch
    if config["mode"] == "raise":
        raise RuntimeError("half-replaced config: /etc/cipherdesk/secret.toml")
    return SyncDeliver() if config["mode"] == "sync" else Fine()


class Validated(Factory):
    def validate(self, config: dict[str, Any], secrets: dict[str, Any]) -> None:
        if config["mode"] == "forbidden":
            raise ConfigError("fragile", "mode", "this mode needs a paid plan")


FACTORY = Validated(INFO, _create)


@pytest.fixture
async def gw(tmp_path):
    runner, base, svc = await start_gateway(tmp_path)
    svc.plugins.registry.register(FACTORY)
    async with aiohttp.ClientSession() as http:
        yield base, svc, http
    await runner.cleanup()


async def _chat_round_trip(base: str, svc: Any) -> Any:
    customer = CustomerClient(base, "demo", origin=base, gateway_key=svc.identity.verify_key_b64)
    try:
        await customer.connect()
        await customer.open()
        return await customer.send_text("hello there")
    finally:
        await customer.aclose()


@pytest.mark.parametrize("mode", ["raise", "sync"])
async def test_broken_plugin_never_fails_a_chat(gw, mode):
    base, svc, http = gw  # noqa: RUF059
    host = svc.plugins
    await host.configure("demo", "fragile", {"mode": mode})
    ack = await _chat_round_trip(base, svc)
    assert isinstance(ack, Ack)  # chat opened and the message was stored, no 1011
    reason = host.unhealthy("demo", "fragile")
    if mode == "raise":
        assert reason == "create() failed: RuntimeError"  # no message text, no path
    else:
        assert reason == "deliver() must be 'async def' (got a plain function)"
    config = await svc.store.get_plugin_config("demo", "fragile")
    assert host.describe(config)["unhealthy"] == reason


async def test_unhealthy_plugin_is_shown_by_the_admin_api(gw):
    base, svc, http = gw
    host = svc.plugins
    await host.configure("demo", "fragile", {"mode": "raise"})
    _, secret, pw = await make_agent(svc, "root@example.com", role="admin")
    token = await login(http, base, "root@example.com", pw, secret, svc.clock())
    async with http.get(f"{base}/api/plugins?health=1", headers=bearer(token)) as r:
        assert r.status == 200
        listing = await r.json()
    entry = {p["name"]: p for p in listing["plugins"]}["fragile"]
    assert entry["health"] == {
        "ok": False,
        "detail": "plugin unhealthy: create() failed: RuntimeError",
    }
    assert entry["tenant_config"]["unhealthy"] == "create() failed: RuntimeError"


def test_sync_hooks_are_refused_at_load():
    assert check_instance(Fine()) is None
    assert "deliver() must be 'async def'" in (check_instance(SyncDeliver()) or "")


async def test_validate_hook_and_constraints_run_before_storing(gw):
    base, svc, http = gw  # noqa: RUF059
    host = svc.plugins
    with pytest.raises(ConfigError, match="needs a paid plan"):
        await host.configure("demo", "fragile", {"mode": "forbidden"})
    with pytest.raises(ConfigError, match="must be at most 4"):
        await host.configure("demo", "fragile", {"level": "5"})
    assert await svc.store.get_plugin_config("demo", "fragile") is None  # nothing stored


async def test_patch_keeps_other_settings_and_clear_removes_secrets(gw):
    base, svc, http = gw  # noqa: RUF059
    host = svc.plugins
    await host.configure(
        "demo",
        "webhook",
        {
            "url": "https://hooks.example.com/a",
            "secret": "new-secret",
            "previous_secret": "old-secret",
            "events": ["chat.closed"],
        },
    )
    stored = await host.configure("demo", "webhook", {"timeout": "5"}, patch=True)
    assert stored.config["events"] == ["chat.closed"] and stored.config["timeout"] == 5.0
    assert host.open_secrets(stored) == {"secret": "new-secret", "previous_secret": "old-secret"}
    stored = await host.configure("demo", "webhook", {}, patch=True, clear=["previous_secret"])
    assert host.open_secrets(stored) == {"secret": "new-secret"}  # the rotation finished
    with pytest.raises(ConfigError, match="is required"):
        await host.configure("demo", "webhook", {}, patch=True, clear=["secret"])


async def test_tenant_admin_cannot_target_private_networks(gw):
    base, svc, http = gw
    _, secret, pw = await make_agent(svc, "root@example.com", role="admin")
    token = await login(http, base, "root@example.com", pw, secret, svc.clock())
    for url in (
        "http://127.0.0.1:9/x",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:10.0.0.1]/",
        "https://localhost/",
        "http://hooks.example.com/",
    ):
        body = {"enabled": True, "config": {"url": url, "secret": "s3cret-value-123"}}
        async with http.put(f"{base}/api/plugins/webhook", json=body, headers=bearer(token)) as r:
            assert r.status == 400, url
            error = (await r.json())["error"]
            assert error["code"] == "invalid_config" and error["field"] == "url"
    # the operator's allowance cannot be smuggled in through the admin API
    body = {
        "config": {
            "url": "https://hooks.example.com/",
            "secret": "s3cret-value-123",
            OPERATOR_PRIVATE_KEY: True,
        }
    }
    async with http.put(f"{base}/api/plugins/webhook", json=body, headers=bearer(token)) as r:
        assert r.status == 400 and (await r.json())["error"]["field"] == OPERATOR_PRIVATE_KEY
    # ...and an allowance the operator gave survives a tenant's later edit, unseen by it
    host = svc.plugins
    await host.configure(
        "demo", "webhook", {"url": "http://127.0.0.1:9/x", "secret": "s"}, allow_private=True
    )
    body = {"config": {"url": "http://127.0.0.1:10/y"}}
    async with http.put(f"{base}/api/plugins/webhook", json=body, headers=bearer(token)) as r:
        text = await r.text()
        assert r.status == 200, text
        assert OPERATOR_PRIVATE_KEY not in json.loads(text)["plugin"]["config"]
    stored = await svc.store.get_plugin_config("demo", "webhook")
    assert stored.config[OPERATOR_PRIVATE_KEY] is True


async def test_slow_async_create_does_not_hold_up_chats(gw):
    """An async create() that takes 2 s: the chat opens and its message is acked well
    before that, its events are queued by the declared scopes, and the plugin is built
    once although several chats need it at the same time."""
    base, svc, _http = gw
    CREATED.clear()
    await svc.plugins.configure("demo", "fragile", {"mode": "slow"})
    started = time.monotonic()
    acks = await asyncio.gather(*(_chat_round_trip(base, svc) for _ in range(3)))
    assert time.monotonic() - started < 1.9  # a 2 s create() was not waited for
    assert all(isinstance(a, Ack) for a in acks)
    pending = await svc.store.list_events(tenant_id="demo", plugin="fragile")
    assert {i.event_type for i in pending} == {"chat.opened", "chat.message"}
    assert len(pending) == 6  # nothing lost while the plugin was being built
    assert CREATED == ["slow"]  # one shared build
