"""PluginHost: building tenant plugin instances (hook checks, failures recorded as
unhealthy), choosing targets by scope, sealing outbox rows and opening them for delivery,
configuration with sealed secrets, and the sealed per-plugin key-value store."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from crypto.envelope import Keyring
from gateway.plugin_host import PluginHost, PluginUnavailable, StoreKV, check_instance
from gateway.store import Store
from gateway.store.base import Tenant
from plugins.api import (
    ConfigError,
    ConfigField,
    Event,
    Factory,
    Health,
    PluginInfo,
    event_from_dict,
)
from plugins.registry import Registry
from tests.gateway.helpers import FakeClock
from tests.gateway.unit.conftest import TENANT

INFO = PluginInfo(
    name="recorder",
    version="1",
    scopes=frozenset({"chat.closed", "chat.message"}),
    config_schema=(
        ConfigField(name="label", required=True),
        ConfigField(name="token", secret=True),
    ),
)


@dataclass
class Recorder:
    """A well-formed plugin that keeps what it is given."""

    config: dict[str, Any]
    secrets: dict[str, Any]
    info: PluginInfo = INFO
    delivered: list[Event] = field(default_factory=list)
    closed: bool = False

    async def deliver(self, event: Event) -> None:
        self.delivered.append(event)

    async def health(self) -> Health:
        return Health(ok=True)

    async def aclose(self) -> None:
        self.closed = True


class SyncDeliver(Recorder):
    def deliver(self, event: Event) -> None:  # type: ignore[override]
        self.delivered.append(event)


@dataclass
class Behaviour:
    """What the test plugin's ``create`` does this time (tests switch it)."""

    make: type[Recorder] = Recorder
    fail: bool = False
    created: list[Recorder] = field(default_factory=list)

    def create(self, config: dict[str, Any], secrets: dict[str, Any], http: Any) -> Recorder:
        if self.fail:
            raise RuntimeError("vendor SDK exploded with token=hunter2")
        instance = self.make(config, secrets)
        self.created.append(instance)
        return instance


@pytest.fixture
def behaviour(registry: Registry) -> Behaviour:
    b = Behaviour()
    assert registry.register(Factory(INFO, b.create), source="test")
    return b


@pytest.fixture
async def enabled(plugins: PluginHost, tenant: Tenant, behaviour: Behaviour) -> Tenant:
    await plugins.configure(TENANT, "recorder", {"label": "desk", "token": "t0ken-secret"})
    return tenant


async def test_configure_seals_secrets_and_describe_never_shows_them(
    plugins: PluginHost, store: Store, enabled: Tenant
) -> None:
    stored = await store.get_plugin_config(TENANT, "recorder")
    assert stored is not None
    assert stored.config == {"label": "desk"}
    assert stored.secrets_sealed is not None and b"t0ken-secret" not in stored.secrets_sealed
    assert plugins.open_secrets(stored) == {"token": "t0ken-secret"}
    shown = plugins.describe(stored)
    assert shown["secrets_set"] == ["token"] and "t0ken-secret" not in repr(shown)
    # A patch without the secret keeps it; clearing removes it.
    await plugins.configure(TENANT, "recorder", {"label": "desk2"}, patch=True)
    patched = await store.get_plugin_config(TENANT, "recorder")
    assert patched is not None and plugins.open_secrets(patched) == {"token": "t0ken-secret"}
    await plugins.configure(TENANT, "recorder", {}, patch=True, clear=["token"])
    cleared = await store.get_plugin_config(TENANT, "recorder")
    assert cleared is not None and cleared.secrets_sealed is None


async def test_targets_of_a_built_plugin_never_wait_on_the_event_loop(
    plugins: PluginHost, enabled: Tenant
) -> None:
    """Every message asks for its targets: once the plugin is built (and the tenant's
    configurations cached), the answer comes without suspending the chat's path."""
    assert [t.plugin for t in await plugins.targets(enabled, "chat.closed")] == ["recorder"]
    asking = plugins.targets(enabled, "chat.closed").__await__()
    with pytest.raises(StopIteration) as answered:
        asking.send(None)  # one step: no task, no timer, no await that suspends
    assert [t.plugin for t in answered.value.value] == ["recorder"]


async def test_configure_refuses_unknown_plugins_and_invalid_settings(
    plugins: PluginHost, tenant: Tenant, behaviour: Behaviour, store: Store
) -> None:
    with pytest.raises(KeyError):
        await plugins.configure(TENANT, "nope", {})
    with pytest.raises(ConfigError):
        await plugins.configure(TENANT, "recorder", {})  # "label" is required
    with pytest.raises(ConfigError):
        await plugins.configure(TENANT, "recorder", {"label": "x"}, clear=["bogus"])
    assert await store.get_plugin_config(TENANT, "recorder") is None


async def test_targets_follow_the_scopes_and_the_enabled_flag(
    plugins: PluginHost, enabled: Tenant, clock: FakeClock
) -> None:
    assert [t.plugin for t in await plugins.targets(enabled, "chat.closed")] == ["recorder"]
    assert await plugins.targets(enabled, "chat.opened") == []
    assert await plugins.set_enabled(TENANT, "recorder", False)
    assert await plugins.targets(enabled, "chat.closed") == []
    assert await plugins.plugin_for(TENANT, "recorder") is None
    assert not await plugins.set_enabled(TENANT, "webhook", True)  # never configured


async def test_one_instance_per_configuration_and_a_new_one_after_a_change(
    plugins: PluginHost, enabled: Tenant, behaviour: Behaviour, clock: FakeClock
) -> None:
    first, again = await asyncio.gather(
        plugins.plugin_for(TENANT, "recorder"), plugins.plugin_for(TENANT, "recorder")
    )
    assert first is again and len(behaviour.created) == 1
    assert first.secrets == {"token": "t0ken-secret"}
    clock.advance(1)
    await plugins.configure(TENANT, "recorder", {"label": "new"}, patch=True)
    second = await plugins.plugin_for(TENANT, "recorder")
    assert second is not first and second.config["label"] == "new"
    assert first.closed  # the replaced instance was closed


async def test_failing_create_is_unhealthy_until_the_configuration_changes(
    plugins: PluginHost, tenant: Tenant, behaviour: Behaviour, clock: FakeClock, store: Store
) -> None:
    behaviour.fail = True
    await plugins.configure(TENANT, "recorder", {"label": "desk"})
    assert await plugins.targets(tenant, "chat.closed") == []  # the chat goes on without it
    reason = plugins.unhealthy(TENANT, "recorder")
    assert reason == "create() failed: RuntimeError"  # no exception text: it may hold secrets
    with pytest.raises(PluginUnavailable):
        await plugins.plugin_for(TENANT, "recorder")
    stored = await store.get_plugin_config(TENANT, "recorder")
    assert stored is not None and plugins.describe(stored)["unhealthy"] == reason
    behaviour.fail = False
    with pytest.raises(PluginUnavailable):  # same configuration: not rebuilt on every event
        await plugins.plugin_for(TENANT, "recorder")
    clock.advance(1)
    await plugins.configure(TENANT, "recorder", {"label": "desk"})
    assert await plugins.plugin_for(TENANT, "recorder") is not None
    assert plugins.unhealthy(TENANT, "recorder") is None


async def test_a_sync_hook_is_refused_at_load(
    plugins: PluginHost, tenant: Tenant, behaviour: Behaviour
) -> None:
    behaviour.make = SyncDeliver
    await plugins.configure(TENANT, "recorder", {"label": "desk"})
    with pytest.raises(PluginUnavailable):
        await plugins.plugin_for(TENANT, "recorder")
    assert plugins.unhealthy(TENANT, "recorder") == (
        "deliver() must be 'async def' (got a plain function)"
    )


def test_check_instance_names_what_is_missing() -> None:
    assert check_instance(object()) == "instance has no 'info' of type plugins.api.PluginInfo"
    assert check_instance(Recorder({}, {})) is None

    class NoHealth:
        info = INFO

        async def deliver(self, event: Event) -> None: ...

    assert check_instance(NoHealth()) == "instance has no health() hook"


async def test_rows_are_sealed_per_plugin_and_open_for_delivery(
    plugins: PluginHost, enabled: Tenant, behaviour: Behaviour
) -> None:
    key, _wrapped = plugins.keys.new_key()
    plugins.keys.remember("chat-1", key)
    targets = await plugins.targets(enabled, "chat.closed")
    data = {
        "chat_id": "chat-1",
        "occurred_at": 1.0,
        "close_reason": "resolved",
        "customer": {"id": "c-42"},
    }
    [row] = plugins.build(targets, enabled, "chat.closed", data, key, event_key="k1")
    assert row.idempotency_key == "chat.closed:chat-1:k1"
    assert b"resolved" not in row.payload_sealed
    payload = await plugins.decode(row)
    assert payload is not None
    # "recorder" lacks the customer.identity scope: the identity is never queued for it.
    assert "customer" not in payload and payload["tenant_id"] == TENANT
    instance = await plugins.plugin_for(TENANT, "recorder")
    await instance.deliver(event_from_dict(payload))
    assert [e.type for e in instance.delivered] == ["chat.closed"]
    # Once the chat's key is gone (erasure), its pending rows no longer open.
    plugins.keys.forget("chat-1")
    assert await plugins.decode(row) is None


async def test_validate_hook_failure_is_reported_by_class_name_only(
    plugins: PluginHost, tenant: Tenant, registry: Registry
) -> None:
    class Checked(Factory):
        def validate(self, config: dict[str, Any], secrets: dict[str, Any]) -> None:
            raise ValueError("secret=hunter2 is wrong")

    info = PluginInfo(name="checked", version="1", scopes=frozenset({"chat.closed"}))
    assert registry.register(Checked(info, Behaviour().create), source="test")
    with pytest.raises(ConfigError) as refused:
        await plugins.configure(TENANT, "checked", {})
    assert "validate() failed: ValueError" in str(refused.value)
    assert "hunter2" not in str(refused.value)


async def test_kv_values_are_sealed_expire_and_stay_with_their_plugin(
    store: Store, keyring: Keyring, clock: FakeClock, tenant: Tenant
) -> None:
    kv = StoreKV(store, keyring, TENANT, "recorder", clock)
    other = StoreKV(store, keyring, TENANT, "webhook", clock)
    assert await kv.put("ticket:1", "T-100")
    assert not await kv.put("ticket:1", "T-200", only_if_absent=True)
    assert await kv.get("ticket:1") == "T-100"
    assert await other.get("ticket:1") is None
    assert await kv.put("token", "abc", ttl=60)
    clock.advance(61)
    assert await kv.get("token") is None
    assert await kv.delete("ticket:1")
    assert await kv.get("ticket:1") is None
