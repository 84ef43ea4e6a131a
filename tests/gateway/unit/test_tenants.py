"""TenantDirectory: cached lookups (TTL on the injected clock), invalidation, frozen
tenants, origin allow-lists and sealed identity secrets, on both store backends."""

from __future__ import annotations

import pytest

from crypto.envelope import EnvelopeError, Keyring
from gateway.store import Store
from gateway.store.base import Tenant
from gateway.tenants import TenantDirectory, ensure_demo_tenant, normalize_origin, tenant_queues
from tests.gateway.helpers import FakeClock
from tests.gateway.unit.conftest import TENANT


async def test_lookup_is_cached_for_the_ttl_then_read_again(
    tenants: TenantDirectory, store: Store, tenant: Tenant, clock: FakeClock
) -> None:
    assert (await tenants.get(TENANT)).name == "Acme"  # type: ignore[union-attr]
    tenant.name = "Acme Ltd"
    await store.update_tenant(tenant)
    clock.advance(1.9)
    assert (await tenants.get(TENANT)).name == "Acme"  # type: ignore[union-attr]
    clock.advance(0.1)
    assert (await tenants.get(TENANT)).name == "Acme Ltd"  # type: ignore[union-attr]


async def test_unknown_tenant_is_none_and_cached_until_invalidated(
    tenants: TenantDirectory, store: Store, clock: FakeClock
) -> None:
    assert await tenants.get("newco") is None
    await store.create_tenant(Tenant(id="newco", name="NewCo", created_at=clock()))
    assert await tenants.get("newco") is None  # the negative answer is cached too
    tenants.invalidate("newco")
    found = await tenants.get("newco")
    assert found is not None and found.name == "NewCo"


async def test_freeze_is_seen_after_invalidation(
    tenants: TenantDirectory, store: Store, tenant: Tenant
) -> None:
    assert not (await tenants.get(TENANT)).frozen  # type: ignore[union-attr]
    tenant.frozen = True
    await store.update_tenant(tenant)
    tenants.invalidate(TENANT)
    assert (await tenants.get(TENANT)).frozen  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://shop.example", True),
        ("HTTPS://SHOP.EXAMPLE:443/", True),
        ("https://shop.example:8443", False),
        ("http://shop.example", False),
        ("https://shop.example.evil", False),
        ("https://shop.example/path", False),
        ("null", False),
        ("", False),
        (None, False),
    ],
)
def test_origin_allow_list_is_exact_after_normalisation(origin: str | None, allowed: bool) -> None:
    tenant = Tenant(id="t", name="t", allowed_origins=["https://Shop.example"], created_at=0.0)
    assert TenantDirectory.origin_allowed(tenant, origin) is allowed


def test_normalize_origin_refuses_credentials_and_odd_schemes() -> None:
    assert normalize_origin("https://user@shop.example") is None
    assert normalize_origin("ftp://shop.example") is None
    assert normalize_origin("http://[::1]:8080") == "http://[::1]:8080"
    assert normalize_origin("http://shop.example:80") == "http://shop.example"


async def test_identity_secrets_round_trip_sealed_and_bound_to_the_tenant(
    tenants: TenantDirectory, store: Store, tenant: Tenant, keyring: Keyring
) -> None:
    assert tenants.identity_secrets(tenant) == []
    sealed = tenants.seal_identity_secrets(TENANT, ["s1" * 16, "s2" * 16])
    assert b"s1s1" not in sealed
    tenant.identity_secrets_sealed = sealed
    await store.update_tenant(tenant)
    tenants.invalidate(TENANT)
    stored = await tenants.get(TENANT)
    assert stored is not None
    assert tenants.identity_secrets(stored) == ["s1" * 16, "s2" * 16]
    # Moved to another tenant's row, the blob does not open (AAD binds the tenant id).
    other = Tenant(id="other", name="o", identity_secrets_sealed=sealed, created_at=0.0)
    with pytest.raises(EnvelopeError):
        tenants.identity_secrets(other)


async def test_demo_tenant_is_created_once_and_origins_merged_while_managed(
    store: Store, clock: FakeClock
) -> None:
    await ensure_demo_tenant(store, ["http://127.0.0.1:8080/"], clock())
    await ensure_demo_tenant(store, ["http://127.0.0.1:9090"], clock())
    demo = await store.get_tenant("demo")
    assert demo is not None
    assert demo.allowed_origins == ["http://127.0.0.1:8080", "http://127.0.0.1:9090"]
    demo.settings = {}  # no longer managed: an admin owns its origins now
    demo.allowed_origins = ["https://mine.example"]
    await store.update_tenant(demo)
    await ensure_demo_tenant(store, ["http://127.0.0.1:7070"], clock())
    after = await store.get_tenant("demo")
    assert after is not None and after.allowed_origins == ["https://mine.example"]


def test_queues_are_default_plus_configured_strings_only() -> None:
    tenant = Tenant(id="t", name="t", settings={"queues": ["billing", 7, "sales"]}, created_at=0.0)
    assert tenant_queues(tenant) == frozenset({"default", "billing", "sales"})
