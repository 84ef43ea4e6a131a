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

Plugin code never fails a chat: building an instance (``create``, sync or async) runs
inside a guard; a plugin that raises, or whose hooks are not what the API requires (a
sync ``deliver``), is recorded as *unhealthy* (:meth:`PluginHost.unhealthy`, shown by the
admin API and ``cipherdesk plugins list``) and simply receives nothing until its
configuration changes. Instances share two cookie-less HTTP sessions: one that refuses
non-public addresses at connect time (:mod:`plugins.netguard`) and, for plugins the
operator allowed onto private networks, one without that check.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

from crypto.envelope import EnvelopeError, Keyring
from gateway.aad import plugin_secrets_aad
from gateway.derived_keys import derived_secret, derived_secrets
from gateway.store.base import OutboxEvent, PluginConfig, Store, StoredMessage, Tenant
from gateway.transcripts import ChatKeys, open_json, seal_json
from plugins._http import plugin_session
from plugins.api import (
    API_VERSION,
    ConfigError,
    PluginContext,
    PluginInfo,
    RetryableError,
    Scope,
)
from plugins.kv import check_kv
from plugins.outbox import may_see_identity, wants
from plugins.registry import Registry

IDENTITY_SCOPE = Scope.CUSTOMER_IDENTITY.value

log = structlog.get_logger("cipherdesk.plugins.host")

CONFIG_TTL = 3.0
#: Key in a stored plugin config recording the operator's private-network allowance. Set
#: only by ``cipherdesk plugins enable --allow-private-network``; the admin API keeps it
#: as it is and never lets a tenant set it.
OPERATOR_PRIVATE_KEY = "_operator_allow_private_network"
MAX_HEALTH_TEXT = 200
#: How long a chat event waits for a plugin instance being built before it is queued
#: by the plugin's declared scopes instead (seconds).
CHAT_PATH_BUDGET = 0.5


class StoreKV:
    """A plugin's :class:`plugins.api.KeyValueStore` for one tenant, kept in the store's
    ``plugin_kv`` table sealed by the master key (AAD binds tenant, plugin and key, so a
    value cannot be moved to another tenant's or plugin's key)."""

    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        tenant_id: str,
        plugin: str,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._tenant = tenant_id
        self._plugin = plugin
        self._clock = clock

    def _aad(self, key: str) -> bytes:
        return f"plugin-kv|{self._tenant}|{self._plugin}|{key}".encode()

    async def get(self, key: str) -> str | None:
        check_kv(key)
        sealed = await self._store.kv_get(self._tenant, self._plugin, key, self._clock())
        if sealed is None:
            return None
        return self._keyring.open(sealed, self._aad(key)).decode()

    async def put(
        self, key: str, value: str, *, ttl: float | None = None, only_if_absent: bool = False
    ) -> bool:
        check_kv(key, value)
        now = self._clock()
        return await self._store.kv_put(
            self._tenant,
            self._plugin,
            key,
            self._keyring.seal(value.encode(), self._aad(key)),
            now=now,
            expires_at=None if ttl is None else now + ttl,
            only_if_absent=only_if_absent,
        )

    async def delete(self, key: str) -> bool:
        check_kv(key)
        return await self._store.kv_delete(self._tenant, self._plugin, key)


class _BadPlugin(Exception):
    """An instance that breaks the plugin API (message is ours, safe to show)."""


class PluginUnavailable(RetryableError):
    """The tenant's plugin could not be built (see :meth:`PluginHost.unhealthy`); its rows
    wait with backoff until the configuration is fixed."""


def check_instance(instance: Any) -> str | None:
    """Why a freshly created instance breaks the plugin API, or None. Checked once at
    load so a sync ``deliver`` is refused with a clear message instead of failing every
    delivery with a TypeError."""
    info = getattr(instance, "info", None)
    if not isinstance(info, PluginInfo):
        return "instance has no 'info' of type plugins.api.PluginInfo"
    for hook in ("deliver", "health", "aclose"):
        fn = getattr(instance, hook, None)
        if fn is None:
            return f"instance has no {hook}() hook"
        if not inspect.iscoroutinefunction(fn):
            return f"{hook}() must be 'async def' (got a plain function)"
    enrich = getattr(instance, "enrich", None)
    if enrich is not None and not inspect.iscoroutinefunction(enrich):
        return "enrich() must be 'async def' (got a plain function)"
    return None


@dataclass(frozen=True, slots=True)
class Target:
    """One enabled plugin of a tenant that wants a given event type."""

    plugin: str
    info: PluginInfo


EventBuilder = Callable[[StoredMessage], list[OutboxEvent]]


TENANT_EVENT_LABEL = "cipherdesk/outbox-tenant-events/v1"
"""Label of the key that seals outbox rows belonging to a tenant rather than a chat."""


def _tenant_context(tenant_id: str) -> str:
    """What a tenant event's seal is bound to in place of a chat id."""
    return f"tenant:{tenant_id}"


class PluginHost:
    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        keys: ChatKeys,
        registry: Registry,
        clock: Callable[[], float],
        *,
        allow_private_targets: bool = False,
    ) -> None:
        self.store = store
        self.keyring = keyring
        self.keys = keys
        self.registry = registry
        self.clock = clock
        self._configs: dict[str, tuple[float, list[PluginConfig]]] = {}
        self._instances: dict[tuple[str, str], tuple[float, Any]] = {}
        self._broken: dict[tuple[str, str], tuple[float, str]] = {}
        self._builds: dict[tuple[str, str, float], asyncio.Future[Any]] = {}
        self.allow_private_targets = allow_private_targets
        self._sessions: dict[bool, aiohttp.ClientSession] = {}
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
            if config.plugin not in self.registry:
                continue
            built = self._built(config)
            if built is not None:
                # Built already (every message after the first): no task, no timer, no
                # trip through the event loop on the chat's path.
                if wants(built.info, event_type):
                    found.append(Target(config.plugin, built.info))
                continue
            build = self._build_task(config)
            try:
                # A slow (async) create() must not hold the chat up: wait a little, then
                # queue by the plugin's declared scopes while the build goes on (the
                # dispatcher re-checks the instance's scopes before delivering).
                instance = await asyncio.wait_for(asyncio.shield(build), CHAT_PATH_BUDGET)
            except PluginUnavailable:
                continue  # recorded as unhealthy; the chat goes on without it
            except TimeoutError:
                log.warning("plugins.slow_create", tenant_id=tenant.id, plugin=config.plugin)
                info = self.registry.info(config.plugin)
                if wants(info, event_type):
                    found.append(Target(config.plugin, info))
                continue
            if instance is not None and wants(instance.info, event_type):
                found.append(Target(config.plugin, instance.info))
        return found

    def _build_task(self, config: PluginConfig) -> asyncio.Future[Any]:
        """One shared build per (tenant, plugin, configuration version), so concurrent
        chats never construct the same plugin twice."""
        key = (config.tenant_id, config.plugin, config.updated_at)
        task = self._builds.get(key)
        if task is None:
            task = asyncio.ensure_future(self._instance(config))
            self._builds[key] = task

            def forget(done: asyncio.Future[Any]) -> None:
                self._builds.pop(key, None)
                if not done.cancelled():
                    done.exception()  # retrieved: PluginUnavailable is recorded already

            task.add_done_callback(forget)
        return task

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

    def build_tenant_events(
        self,
        targets: list[Target],
        tenant_id: str,
        event_type: str,
        data: dict[str, Any],
        event_key: str,
    ) -> list[OutboxEvent]:
        """Outbox rows for an event that belongs to no chat (an audit row for a SIEM).
        Sealed under a key derived from the master keyring for this purpose (a chat's key
        would be shredded with the chat; these rows are purged by retention instead)."""
        rows = []
        for target in targets:
            idempotency_key = f"{event_type}:{tenant_id}:{event_key}"
            payload = {
                "type": event_type,
                "api_version": API_VERSION,
                "tenant_id": tenant_id,
                "event_id": idempotency_key,
                "chat_id": "",
                **data,
            }
            rows.append(
                OutboxEvent(
                    tenant_id=tenant_id,
                    plugin=target.plugin,
                    event_type=event_type,
                    idempotency_key=idempotency_key,
                    chat_id=None,
                    created_at=self.clock(),
                    payload_sealed=seal_json(
                        derived_secret(self.keyring, TENANT_EVENT_LABEL),
                        _tenant_context(tenant_id),
                        f"outbox:{target.plugin}:{idempotency_key}",
                        payload,
                    ),
                )
            )
        return rows

    async def decode(self, item: Any) -> dict[str, Any] | None:
        """Open an outbox row for the dispatcher; None when the chat was crypto-shredded
        (or, for a tenant event, when no master key of the ring opens it)."""
        if item.chat_id is None:
            purpose = f"outbox:{item.plugin}:{item.idempotency_key}"
            for secret in derived_secrets(self.keyring, TENANT_EVENT_LABEL):
                try:
                    opened: dict[str, Any] = open_json(
                        secret, _tenant_context(item.tenant_id), purpose, item.payload_sealed
                    )
                except EnvelopeError:
                    continue
                return opened
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
        return await self._build_task(config)

    def _built(self, config: PluginConfig) -> Any | None:
        """The instance already built for exactly this configuration, if there is one."""
        cached = self._instances.get((config.tenant_id, config.plugin))
        return cached[1] if cached is not None and cached[0] == config.updated_at else None

    async def _instance(self, config: PluginConfig) -> Any | None:
        """The cached instance for ``config``; None when the plugin is not installed.
        Raises :class:`PluginUnavailable` (never anything else) when it cannot be built."""
        tenant_id, name = config.tenant_id, config.plugin
        if name not in self.registry:
            return None
        key = (tenant_id, name)
        built = self._built(config)
        if built is not None:
            return built
        cached = self._instances.get(key)
        broken = self._broken.get(key)
        if broken is not None and broken[0] == config.updated_at:
            raise PluginUnavailable(f"plugin unhealthy: {broken[1]}")
        if cached is not None:
            self._instances.pop(key, None)
            with contextlib.suppress(Exception):
                await cached[1].aclose()
        try:
            instance = await self._build(config)
        except Exception as exc:
            reason = (
                str(exc)[:MAX_HEALTH_TEXT]
                if isinstance(exc, ConfigError | _BadPlugin)
                else f"create() failed: {type(exc).__name__}"
            )
            self._broken[key] = (config.updated_at, reason)
            log.warning("plugins.unhealthy", tenant_id=tenant_id, plugin=name, reason=reason)
            raise PluginUnavailable(f"plugin unhealthy: {reason}") from None
        self._broken.pop(key, None)
        self._instances[key] = (config.updated_at, instance)
        return instance

    async def _build(self, config: PluginConfig) -> Any:
        secrets = self.open_secrets(config)
        allowed = self.allow_private_targets or bool(config.config.get(OPERATOR_PRIVATE_KEY))
        settings = {k: v for k, v in config.config.items() if k != OPERATOR_PRIVATE_KEY}
        context = PluginContext(
            tenant_id=config.tenant_id,
            plugin=config.plugin,
            kv=StoreKV(self.store, self.keyring, config.tenant_id, config.plugin, self.clock),
            clock=self.clock,
        )
        instance = self.registry.create(
            config.plugin, settings, secrets, self.session(allowed), context
        )
        if inspect.isawaitable(instance):
            instance = await instance
        problem = check_instance(instance)
        if problem is not None:
            raise _BadPlugin(problem)
        return instance

    def session(self, allow_private: bool) -> aiohttp.ClientSession:
        """The shared cookie-less session (guarded unless ``allow_private``)."""
        http = self._sessions.get(allow_private)
        if http is None or http.closed:
            http = self._sessions[allow_private] = plugin_session(allow_private=allow_private)
        return http

    def unhealthy(self, tenant_id: str, name: str) -> str | None:
        """Why the tenant's plugin could not be built at its current configuration."""
        broken = self._broken.get((tenant_id, name))
        return None if broken is None else broken[1]

    def open_secrets(self, config: PluginConfig) -> dict[str, Any]:
        if not config.secrets_sealed:
            return {}
        raw = self.keyring.open(
            config.secrets_sealed, plugin_secrets_aad(config.tenant_id, config.plugin)
        )
        return json.loads(raw)

    # ------------------------------------------------------------------ configuration

    async def configure(
        self,
        tenant_id: str,
        name: str,
        values: dict[str, Any],
        *,
        enabled: bool = True,
        patch: bool = False,
        clear: tuple[str, ...] | list[str] = (),
        allow_private: bool | None = None,
        before_store: Callable[[PluginConfig, PluginConfig | None], Awaitable[None]] | None = None,
    ) -> PluginConfig:
        """Validate against the plugin's schema (and its ``validate`` hook) and store;
        secret fields are sealed and a secret left out keeps its previous value.

        ``patch``: ``values`` change only the settings they name, the others keep their
        stored values (``cipherdesk plugins enable``); without it the plain settings are
        replaced (admin API form). ``clear`` names settings (secrets included) to remove —
        how a finished webhook-secret rotation drops ``previous_secret``.
        ``allow_private`` is the operator's private-network allowance for this plugin
        (CLI only); None keeps what is stored. ``before_store(candidate, existing)`` runs
        after validation and before anything is stored: a gate (the admin API's approval
        for granting customer identities) refuses by raising.
        """
        if name not in self.registry:
            raise KeyError(f"plugin {name!r} is not installed")
        info = self.registry.info(name)
        for field_name in clear:
            if info.get_field(field_name) is None:
                raise ConfigError(name, field_name, "unknown setting")
            if field_name in values:
                raise ConfigError(name, field_name, "both set and cleared")
        existing = await self.store.get_plugin_config(tenant_id, name)
        old_secrets = self.open_secrets(existing) if existing else {}
        old_plain = dict(existing.config) if existing else {}
        operator_private = bool(old_plain.pop(OPERATOR_PRIVATE_KEY, False))
        if allow_private is not None:
            operator_private = allow_private
        merged = {**old_plain, **values} if patch else dict(values)
        for field_name in clear:
            merged.pop(field_name, None)
            old_secrets.pop(field_name, None)
        config, secrets = self.registry.validate(
            name,
            merged,
            existing_secrets=old_secrets,
            allow_private=self.allow_private_targets or operator_private,
        )
        await self._plugin_validate(name, config, secrets)
        if operator_private:
            config[OPERATOR_PRIVATE_KEY] = True
        stored = PluginConfig(
            tenant_id=tenant_id,
            plugin=name,
            enabled=enabled,
            config=config,
            secrets_sealed=self.keyring.seal(
                json.dumps(secrets).encode(), plugin_secrets_aad(tenant_id, name)
            )
            if secrets
            else None,
            updated_at=self.clock(),
        )
        if before_store is not None:
            await before_store(stored, existing)
        await self.store.put_plugin_config(stored)
        self._configs.pop(tenant_id, None)
        return stored

    async def grants_identity(self, config: PluginConfig | None) -> bool:
        """Would this enabled configuration receive customers' identities (the
        ``customer.identity`` scope of the instance it builds, which may narrow the
        factory's)? A configuration whose instance cannot be built is judged by the
        factory's declared scopes."""
        if config is None or not config.enabled or config.plugin not in self.registry:
            return False
        try:
            instance = await self._build(config)
        except Exception:
            return IDENTITY_SCOPE in self.registry.info(config.plugin).scopes
        try:
            return IDENTITY_SCOPE in instance.info.scopes
        finally:
            with contextlib.suppress(Exception):
                await instance.aclose()

    async def _plugin_validate(
        self, name: str, config: dict[str, Any], secrets: dict[str, Any]
    ) -> None:
        """Run the factory's optional ``validate(config, secrets)`` hook (sync or async)
        so a configuration the plugin cannot start with is refused before it is stored.
        Anything but a ConfigError from the hook is reported by class name only."""
        hook = getattr(self.registry.get(name), "validate", None)
        if hook is None:
            return
        try:
            result = hook(dict(config), dict(secrets))
            if inspect.isawaitable(result):
                await result
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(name, None, f"validate() failed: {type(exc).__name__}") from None

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
        plain = {k: v for k, v in config.config.items() if k != OPERATOR_PRIVATE_KEY}
        out = {
            "plugin": config.plugin,
            "enabled": config.enabled,
            "config": plain,
            "secrets_set": secret_names,
            "updated_at": config.updated_at,
            "private_network_allowed": bool(config.config.get(OPERATOR_PRIVATE_KEY)),
        }
        reason = self.unhealthy(config.tenant_id, config.plugin)
        if reason is not None:
            out["unhealthy"] = reason
        return out

    async def aclose(self) -> None:
        for _, instance in self._instances.values():
            with contextlib.suppress(Exception):
                await instance.aclose()
        self._instances.clear()
        for http in self._sessions.values():
            await http.close()
        self._sessions.clear()
