"""Tenants: lookup with a short cache, origin allow-lists, sealed identity secrets.

Every websocket upgrade looks up its tenant and checks ``Origin`` against the tenant's
exact allow-list (Cross-Site WebSocket Hijacking: aiohttp checks none itself). A short
TTL cache keeps that off the database on connection storms while letting an admin's
change on another node take effect within seconds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from crypto.envelope import Keyring
from gateway.aad import tenant_identity_aad
from gateway.store.base import Store, Tenant

DEMO_TENANT = "demo"


def normalize_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` lower-cased with default ports dropped, or None if invalid."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


class TenantDirectory:
    """Cached tenant lookups and the per-tenant secrets only the gateway may open."""

    def __init__(
        self, store: Store, keyring: Keyring, clock: Callable[[], float], ttl: float = 2.0
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._clock = clock
        self._ttl = ttl
        self._cache: dict[str, tuple[float, Tenant | None]] = {}

    async def get(self, tenant_id: str) -> Tenant | None:
        now = self._clock()
        hit = self._cache.get(tenant_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        tenant = await self._store.get_tenant(tenant_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[tenant_id] = (now, tenant)
        return tenant

    def invalidate(self, tenant_id: str) -> None:
        self._cache.pop(tenant_id, None)

    @staticmethod
    def origin_allowed(tenant: Tenant, origin: str | None) -> bool:
        if not origin:
            return False
        normalized = normalize_origin(origin)
        return normalized is not None and normalized in {
            normalize_origin(o) for o in tenant.allowed_origins
        }

    def identity_secrets(self, tenant: Tenant) -> list[str]:
        if not tenant.identity_secrets_sealed:
            return []
        raw = self._keyring.open(tenant.identity_secrets_sealed, tenant_identity_aad(tenant.id))
        return list(json.loads(raw))

    def seal_identity_secrets(self, tenant_id: str, secrets: Iterable[str]) -> bytes:
        payload = json.dumps(list(secrets)).encode()
        return self._keyring.seal(payload, tenant_identity_aad(tenant_id))


async def ensure_demo_tenant(store: Store, base_urls: Iterable[str], now: float) -> None:
    """A fresh install has a ``demo`` tenant whose origins are the gateway's own URLs,
    so ``/demo`` and local tools work with zero configuration. Origins are refreshed on
    every start (the port may change) as long as the tenant is still the managed demo."""
    origins = sorted({o for o in (normalize_origin(u) for u in base_urls) if o})
    tenant = await store.get_tenant(DEMO_TENANT)
    if tenant is None:
        await store.create_tenant(
            Tenant(
                id=DEMO_TENANT,
                name="Demo",
                allowed_origins=origins,
                settings={"managed_demo": True},
                created_at=now,
            )
        )
    elif tenant.settings.get("managed_demo"):
        merged = sorted(set(tenant.allowed_origins) | set(origins))
        if merged != tenant.allowed_origins:
            tenant.allowed_origins = merged
            await store.update_tenant(tenant)


DEFAULT_QUEUE = "default"
#: How many named queues a tenant may configure (each shows in the console).
MAX_QUEUES = 50


def tenant_queues(tenant: Tenant) -> frozenset[str]:
    """The queues a chat of ``tenant`` may name: ``default`` plus the tenant's configured
    ``settings["queues"]`` (admin API). Anything else is refused (``unknown_queue``), so a
    queue name stored with a chat is always one the tenant chose, never customer input."""
    configured = tenant.settings.get("queues") or []
    return frozenset([DEFAULT_QUEUE, *(q for q in configured if isinstance(q, str))])
