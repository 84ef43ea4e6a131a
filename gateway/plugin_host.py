"""Running helpdesk plugins for tenants: the gateway side of the plugin API.

The plugin package (``plugins/``) knows nothing of the gateway; this module is the
adapter. It

* turns chat happenings into outbox rows for each tenant plugin whose declared scopes
  want that event type — sealed under the chat's data key, so an erased chat's pending
  events are shredded with it and the database never holds them in clear;
* gives the dispatcher what it asks for: ``decode(item)`` (open a row; None once the
  chat was erased) and ``plugin_for(tenant, name)`` (a live plugin instance built from
  the tenant's config, with its secrets opened from the master keyring);
* enables/configures plugins (CLI and admin API), keeping secret fields sealed.

Customer identity is stored in an event only for plugins holding the
``customer.identity`` scope: what a plugin may not see is never even queued for it.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

from crypto.envelope import Keyring
from gateway.store.base import OutboxEvent, PluginConfig, Store, StoredMessage, Tenant
from gateway.transcripts import ChatKeys, open_json, seal_json
from plugins.api import API_VERSION, PluginInfo
from plugins.outbox import may_see_identity, wants
from plugins.registry import Registry

log = structlog.get_logger("cipherdesk.plugins.host")

CONFIG_TTL = 3.0


@dataclass(frozen=True, slots=True)
class Target:
    """One enabled plugin of a tenant that wants a given event type."""

    plugin: str
    info: PluginInfo


EventBuilder = Callable[[StoredMessage], list[OutboxEvent]]


def _secrets_aad(tenant_id: str, plugin: str) -> bytes:
    return f"plugin-secrets|{tenant_id}|{plugin}".encode()


class PluginHost:
    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        keys: ChatKeys,
        registry: Registry,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.keys = keys
        self.registry = registry
        self.clock = clock
        self._configs: dict[str, tuple[float, list[PluginConfig]]] = {}
        self._instances: dict[tuple[str, str], tuple[float, Any]] = {}
        self._http: aiohttp.ClientSession | None = None
        self.on_enqueued: Callable[[], None] | None = None

    # ------------------------------------------------------------------ enqueueing

    async def _enabled(self, tenant_id: str) -> list[PluginConfig]:
        now = self.clock()
        hit = self._configs.get(tenant_id)
        if hit is not None and now - hit[0] < CONFIG_TTL:
            return hit[1]
        configs = [c for c in await self.store.list_plugin_configs(tenant_id) if c.enabled]
        self._configs[tenant_id] = (now, configs)
        return configs

    async def targets(self, tenant: Tenant, event_type: str) -> list[Target]:
        """Enabled plugins of the tenant that want ``event_type``, judged by the plugin
        *instance's* info (a plugin may narrow its scopes per tenant configuration)."""
        found = []
        for config in await self._enabled(tenant.id):
            instance = await self._instance(config)
            if instance is not None and wants(instance.info, event_type):
                found.append(Target(config.plugin, instance.info))
        return found

    def enqueued(self) -> None:
        """Wake the dispatcher after rows were committed (set by the app)."""
        if self.on_enqueued is not None:
            self.on_enqueued()

    def build(
        self,
        targets: list[Target],
        tenant: Tenant,
        event_type: str,
        data: dict[str, Any],
        key: bytes,
        event_key: str | None = None,
    ) -> list[OutboxEvent]:
        """Outbox rows for ``targets``; ``event_key`` makes idempotency keys stable when
        the same happening could be enqueued twice (a message's id)."""
        chat_id = data["chat_id"]
        suffix = event_key or uuid.uuid4().hex
        rows = []
        for target in targets:
            idempotency_key = f"{event_type}:{chat_id}:{suffix}"
            payload = {
                "type": event_type,
                "api_version": API_VERSION,
                "tenant_id": tenant.id,
                "event_id": idempotency_key,
                **data,
            }
            if not may_see_identity(target.info):
                payload.pop("customer", None)
            rows.append(
                OutboxEvent(
                    tenant_id=tenant.id,
                    plugin=target.plugin,
                    event_type=event_type,
                    idempotency_key=idempotency_key,
                    chat_id=chat_id,
                    created_at=self.clock(),
                    payload_sealed=seal_json(
                        key, chat_id, f"outbox:{target.plugin}:{idempotency_key}", payload
                    ),
                )
            )
        return rows

    async def decode(self, item: Any) -> dict[str, Any] | None:
        """Open an outbox row for the dispatcher; None when the chat was crypto-shredded."""
        if item.chat_id is None:
            return None
        key = await self.keys.get(item.chat_id)
        if key is None:
            return None
        return open_json(
            key, item.chat_id, f"outbox:{item.plugin}:{item.idempotency_key}", item.payload_sealed
        )

    # ------------------------------------------------------------------ instances

    async def plugin_for(self, tenant_id: str, name: str) -> Any | None:
        """The live instance for the dispatcher (config read fresh: a disabled plugin
        stops receiving at once)."""
        config = await self.store.get_plugin_config(tenant_id, name)
        if config is None or not config.enabled:
            return None
        return await self._instance(config)

    async def _instance(self, config: PluginConfig) -> Any | None:
        tenant_id, name = config.tenant_id, config.plugin
        if name not in self.registry:
            return None
        cached = self._instances.get((tenant_id, name))
        if cached is not None and cached[0] == config.updated_at:
            return cached[1]
        if cached is not None:
            with contextlib.suppress(Exception):
                await cached[1].aclose()
        secrets = self.open_secrets(config)
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        instance = self.registry.create(name, dict(config.config), secrets, self._http)
        self._instances[(tenant_id, name)] = (config.updated_at, instance)
        return instance

    def open_secrets(self, config: PluginConfig) -> dict[str, Any]:
        if not config.secrets_sealed:
            return {}
        raw = self.keyring.open(
            config.secrets_sealed, _secrets_aad(config.tenant_id, config.plugin)
        )
        return json.loads(raw)

    # ------------------------------------------------------------------ configuration

    async def configure(
        self, tenant_id: str, name: str, values: dict[str, Any], *, enabled: bool = True
    ) -> PluginConfig:
        """Validate against the plugin's schema and store; secret fields are sealed and a
        secret left out keeps its previous value."""
        if name not in self.registry:
            raise KeyError(f"plugin {name!r} is not installed")
        existing = await self.store.get_plugin_config(tenant_id, name)
        old_secrets = self.open_secrets(existing) if existing else {}
        config, secrets = self.registry.validate(name, values, existing_secrets=old_secrets)
        stored = PluginConfig(
            tenant_id=tenant_id,
            plugin=name,
            enabled=enabled,
            config=config,
            secrets_sealed=self.keyring.seal(
                json.dumps(secrets).encode(), _secrets_aad(tenant_id, name)
            )
            if secrets
            else None,
            updated_at=self.clock(),
        )
        await self.store.put_plugin_config(stored)
        self._configs.pop(tenant_id, None)
        return stored

    async def set_enabled(self, tenant_id: str, name: str, enabled: bool) -> bool:
        config = await self.store.get_plugin_config(tenant_id, name)
        if config is None:
            return False
        config.enabled = enabled
        config.updated_at = self.clock()
        await self.store.put_plugin_config(config)
        self._configs.pop(tenant_id, None)
        return True

    def describe(self, config: PluginConfig) -> dict[str, Any]:
        """A config as the admin API/CLI show it: secret values are never returned."""
        secret_names = sorted(self.open_secrets(config)) if config.secrets_sealed else []
        return {
            "plugin": config.plugin,
            "enabled": config.enabled,
            "config": config.config,
            "secrets_set": secret_names,
            "updated_at": config.updated_at,
        }

    async def aclose(self) -> None:
        for _, instance in self._instances.values():
            with contextlib.suppress(Exception):
                await instance.aclose()
        self._instances.clear()
        if self._http is not None:
            await self._http.close()
