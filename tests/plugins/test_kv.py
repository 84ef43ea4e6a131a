"""The per-plugin key-value store (migration 0004) on SQLite and PostgreSQL, and the
gateway's sealed adapter: TTL, put-if-absent, isolation between tenants and plugins."""

from __future__ import annotations

import pytest

from crypto.envelope import EnvelopeError, Keyring, MasterKey
from gateway.plugin_host import StoreKV
from gateway.store.base import NotFound, Tenant
from plugins.kv import MemoryKV
from tests.plugins.fakes import Clock

T0 = 1_700_000_000.0


async def test_store_kv_rules(real_store):
    s = real_store
    assert await s.kv_get("acme", "zendesk", "k", T0) is None
    assert await s.kv_put("acme", "zendesk", "k", b"v1", now=T0) is True
    assert await s.kv_get("acme", "zendesk", "k", T0) == b"v1"
    assert await s.kv_put("acme", "zendesk", "k", b"v2", now=T0, only_if_absent=True) is False
    assert await s.kv_get("acme", "zendesk", "k", T0) == b"v1"
    assert await s.kv_put("acme", "zendesk", "k", b"v3", now=T0) is True  # overwrite
    assert await s.kv_get("acme", "zendesk", "k", T0) == b"v3"
    # other plugin / tenant: separate namespaces
    assert await s.kv_get("acme", "freshdesk", "k", T0) is None
    await s.create_tenant(Tenant(id="globex", name="Globex"))
    assert await s.kv_get("globex", "zendesk", "k", T0) is None
    # expiry, and an expired value can be taken over by put-if-absent
    assert await s.kv_put("acme", "zendesk", "t", b"x", now=T0, expires_at=T0 + 10)
    assert await s.kv_get("acme", "zendesk", "t", T0 + 9.9) == b"x"
    assert await s.kv_get("acme", "zendesk", "t", T0 + 10) is None
    assert await s.kv_put("acme", "zendesk", "t", b"y", now=T0 + 11, only_if_absent=True)
    assert await s.kv_get("acme", "zendesk", "t", T0 + 11) == b"y"
    assert await s.kv_delete("acme", "zendesk", "t") is True
    assert await s.kv_delete("acme", "zendesk", "t") is False
    with pytest.raises(NotFound):
        await s.kv_put("nobody", "zendesk", "k", b"v", now=T0)


async def test_sealed_adapter_binds_tenant_plugin_and_key(real_store):
    clock = Clock(T0)
    keyring = Keyring([MasterKey(b"\x01" * 32)])
    kv = StoreKV(real_store, keyring, "acme", "zendesk", clock)
    assert await kv.put("chat-ticket:c1", "4711")
    raw = await real_store.kv_get("acme", "zendesk", "chat-ticket:c1", T0)
    assert raw is not None and b"4711" not in raw  # sealed at rest
    assert await kv.get("chat-ticket:c1") == "4711"
    # a sealed value copied under another key does not open
    await real_store.kv_put("acme", "zendesk", "chat-ticket:c2", raw, now=T0)
    with pytest.raises(EnvelopeError):
        await kv.get("chat-ticket:c2")
    assert await kv.put("lock", "1", ttl=5, only_if_absent=True)
    assert not await kv.put("lock", "1", ttl=5, only_if_absent=True)
    clock.advance(5)
    assert await kv.put("lock", "1", ttl=5, only_if_absent=True)
    with pytest.raises(ValueError):
        await kv.put("x" * 201, "v")
    with pytest.raises(ValueError):
        await kv.put("k", "v" * (16 * 1024 + 1))


async def test_memory_kv_matches():
    clock = Clock(T0)
    kv = MemoryKV(clock)
    assert await kv.put("a", "1", ttl=2)
    assert not await kv.put("a", "2", only_if_absent=True)
    clock.advance(2)
    assert await kv.get("a") is None
    assert await kv.put("a", "3", only_if_absent=True)
    assert await kv.delete("a") and not await kv.delete("a")
