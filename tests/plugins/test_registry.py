from __future__ import annotations

import dataclasses
from importlib.metadata import entry_points

import pytest

from plugins import webhook
from plugins.api import ENTRY_POINT_GROUP, Factory, PluginInfo
from plugins.registry import Registry, default_registry


class FakeEntryPoint:
    def __init__(self, name, obj=None, exc=None):
        self.name, self._obj, self._exc = name, obj, exc
        self.dist = None

    def load(self):
        if self._exc:
            raise self._exc
        return self._obj


def test_builtins_register_without_entry_points():
    reg = default_registry(discover=False)
    assert {"webhook", "zendesk", "freshdesk"} <= set(reg.names())
    assert reg.source("zendesk") == "builtin"
    assert reg.problems == []


def test_installed_example_package_is_discovered_by_entry_point():
    names = [ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)]
    if "ticketbox" not in names:
        pytest.fail("example plugin not installed: pip install -e plugins/examples/ticketbox")
    reg = default_registry()
    assert "ticketbox" in reg.names()
    assert reg.source("ticketbox") == "entry-point:cipherdesk-ticketbox"
    info = reg.info("ticketbox")
    assert info.scopes == {"chat.closed"}
    assert info.api_version == 1


def test_incompatible_api_version_is_refused_and_reported():
    future = Factory(PluginInfo(name="future", version="9", api_version=2), webhook.create)
    reg = Registry()
    reg.discover(entry_points=[FakeEntryPoint("future", future)])
    assert "future" not in reg
    assert "API version 2 is not supported" in reg.problems[0].reason


def test_broken_entry_points_do_not_stop_discovery():
    good = Factory(PluginInfo(name="good", version="1"), webhook.create)
    reg = Registry()
    n = reg.discover(
        entry_points=[
            FakeEntryPoint("boom", exc=ImportError("No module named 'vendor_sdk'")),
            FakeEntryPoint("noinfo", obj=object()),
            FakeEntryPoint(
                "badscope",
                obj=Factory(
                    PluginInfo(name="badscope", version="1", scopes=frozenset({"chat.everything"})),
                    webhook.create,
                ),
            ),
            FakeEntryPoint("good", good),
        ]
    )
    assert n == 1 and reg.names() == ["good"]
    reasons = {p.name: p.reason for p in reg.problems}
    assert reasons["boom"] == "failed to load: ImportError"
    assert "no 'info'" in reasons["noinfo"]
    assert "unknown scopes" in reasons["badscope"]


def test_name_clash_keeps_first_and_same_object_is_idempotent():
    reg = default_registry(discover=False)
    assert reg.register(webhook.factory)  # the same built-in again (also an entry point)
    impostor = Factory(dataclasses.replace(webhook.INFO), webhook.create)
    assert not reg.register(impostor, source="entry-point:evil")
    assert reg.get("webhook") is webhook.factory
    assert "already provided by builtin" in reg.problems[-1].reason


def test_module_can_serve_as_factory():
    reg = Registry()
    assert reg.register(webhook)  # module with .info and .create
    assert reg.info("webhook").name == "webhook"
