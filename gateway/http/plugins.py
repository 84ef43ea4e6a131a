"""Admin API for helpdesk plugins (JSON): installed plugins, per-tenant configuration,
the outbox and its dead letters.

Every endpoint needs the ``plugin_manage`` permission (admins) and works on the caller's
own tenant only; the conventions of :mod:`gateway.http.plumbing` apply (Bearer or cookie +
``X-CSRF-Token`` for writes, JSON errors with a stable ``code``).

* ``GET /api/plugins[?health=1]`` — installed plugins (name, version, scopes, config
  schema with ``secret`` fields marked, source), registry ``problems``, and this tenant's
  configurations. Secret *values* are never returned: only which secret fields are set.
  ``health=1`` also asks each enabled plugin for its health (2 s timeout each).
* ``PUT /api/plugins/{name}`` ``{"enabled": true, "config": {...}}`` — validate and store
  (secret fields sealed with the master key; a secret left out keeps its stored value).
  ``config`` omitted: only switch ``enabled`` on an existing configuration. Invalid
  values answer 400 ``invalid_config`` with ``field`` naming the setting. Audited
  ``plugin.configured`` with field *names* only.
* ``POST /api/plugins/{name}/disable`` — stop delivering to it (pending rows of a
  disabled plugin are dead-lettered by the dispatcher, replayable). Audited.
* ``GET /api/plugins/dead[?plugin=&limit=]`` — dead letters: id, plugin, event type,
  attempts, last error (safe text written by the dispatcher), timestamps. Never payloads.
* ``POST /api/plugins/dead/{id}/replay`` — back to pending with attempts reset. A dead
  letter of another tenant answers exactly like a missing one (404). Audited.
* ``GET /api/plugins/outbox[?state=pending|delivered|dead]`` — counts per state and
  plugin (counted up to :data:`COUNT_CAP` rows per state; ``capped`` says when reached).

* ``GET /api/chats/{chat_id}/helpdesk`` — for the chat's assigned agent (or a
  supervisor): what each enabled plugin with an ``enrich`` hook and the
  ``customer.identity`` scope knows about the customer (open tickets: id, subject,
  status, https link), each lookup bounded to 1.5 s; shown in the console's customer
  panel. Needs ``chat_handle`` only.

Error codes (besides the common ones): ``invalid_config``, ``not_installed``.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Annotated, Any, Literal

from aiohttp import web
from msgspec import Meta, Struct

from auth.roles import Permission, require
from gateway.http.governance import require_approval
from gateway.http.plumbing import authed, read_json
from gateway.http.public import ApiError
from gateway.plugin_host import PluginHost, PluginUnavailable
from gateway.services import SERVICES, Services, peer_ip
from gateway.sessions import AgentContext
from gateway.store.base import OutboxItem, PluginConfig
from plugins.api import ConfigError, CustomerIdentity, PluginInfo
from plugins.enrich import run_enrich
from plugins.outbox import find_dead_letter

HEALTH_TIMEOUT = 2.0
COUNT_CAP = 10_000  # rows counted at most per state for /outbox counts
STATES: tuple[Literal["pending", "delivered", "dead"], ...] = ("pending", "delivered", "dead")
MAX_ERROR = 300


class ConfigureBody(Struct, forbid_unknown_fields=True):
    enabled: bool = True
    config: Annotated[dict[str, Any], Meta(max_length=64)] | None = None


# ---------------------------------------------------------------------- helpers


def _svc(request: web.Request) -> Services:
    return request.app[SERVICES]


def _host(svc: Services) -> PluginHost:
    return svc.plugins


def _tenant(ctx: AgentContext) -> str:
    tenant_id = ctx.principal.tenant_id
    require(ctx.principal, Permission.PLUGIN_MANAGE, tenant_id)
    return tenant_id


def _plugin_name(request: web.Request, host: PluginHost) -> str:
    name = request.match_info["name"]
    if len(name) > 64 or name not in host.registry:
        raise ApiError(404, "not_installed", "no such plugin is installed")
    return name


def field_json(f: Any) -> dict[str, Any]:
    return {
        "name": f.name,
        "type": f.type,
        "required": f.required,
        "secret": f.secret,
        # a secret field's default is never shown (there should be none anyway)
        "default": None if f.secret else f.default,
        "help": f.help,
        "choices": list(f.choices) if f.choices is not None else None,
    }


def info_json(info: PluginInfo, source: str) -> dict[str, Any]:
    return {
        "name": info.name,
        "version": info.version,
        "api_version": info.api_version,
        "description": info.description,
        "scopes": sorted(info.scopes),
        "source": source,
        "config_schema": [field_json(f) for f in info.config_schema],
    }


def describe(host: PluginHost, config: PluginConfig) -> dict[str, Any]:
    """``PluginHost.describe`` with defence in depth: a secret field's value never
    leaves, even if it somehow ended up among the plain settings."""
    try:
        out = host.describe(config)
    except Exception:  # unreadable sealed secrets (wrong master key): say so
        out = {
            "plugin": config.plugin,
            "enabled": config.enabled,
            "config": dict(config.config),
            "secrets_set": [],
            "secrets_unreadable": True,
            "updated_at": config.updated_at,
        }
    if config.plugin in host.registry:
        info = host.registry.info(config.plugin)
        out["config"] = {
            k: ("***" if (f := info.get_field(k)) is not None and f.secret else v)
            for k, v in out["config"].items()
        }
    return out


async def plugin_health(host: PluginHost, tenant_id: str, name: str) -> dict[str, Any] | None:
    """Health of an enabled plugin instance; None when not enabled."""
    try:
        instance = await host.plugin_for(tenant_id, name)
    except PluginUnavailable as exc:
        return {"ok": False, "detail": str(exc)[:MAX_ERROR]}
    except Exception as exc:
        return {"ok": False, "detail": f"cannot start: {type(exc).__name__}"}
    if instance is None:
        return None
    try:
        health = await asyncio.wait_for(instance.health(), HEALTH_TIMEOUT)
    except TimeoutError:
        return {"ok": False, "detail": "health check timed out"}
    except Exception as exc:
        return {"ok": False, "detail": f"health check failed: {type(exc).__name__}"}
    return {"ok": bool(health.ok), "detail": str(health.detail)[:MAX_ERROR]}


def dead_json(item: OutboxItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "plugin": item.plugin,
        "event_type": item.event_type,
        "chat_id": item.chat_id,
        "attempts": item.attempts,
        "last_error": (item.last_error or "")[:MAX_ERROR] or None,
        "created_at": item.created_at,
    }


def _query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9 or not low <= int(raw) <= high:
        raise ApiError(
            400,
            "bad_request",
            f"query parameter {name} must be an integer between {low} and {high}",
            field=name,
        )
    return int(raw)


def _query_plugin(request: web.Request) -> str | None:
    plugin = request.query.get("plugin") or None
    if plugin is not None and len(plugin) > 64:
        raise ApiError(400, "bad_request", "query parameter plugin is too long", field="plugin")
    return plugin


# ---------------------------------------------------------------------- handlers


@authed(Permission.PLUGIN_MANAGE)
async def list_plugins(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    tenant_id = _tenant(ctx)
    host = _host(svc)
    raw_health = request.query.get("health", "")
    if raw_health not in ("", "1", "true", "yes", "0", "false", "no"):
        raise ApiError(400, "bad_request", "query parameter health must be 1 or 0", field="health")
    with_health = raw_health in ("1", "true", "yes")
    configs = {
        c.plugin: c
        for c in await svc.store.list_plugin_configs(tenant_id)
        if c.tenant_id == tenant_id
    }
    plugins = []
    for name in host.registry.names():
        entry = info_json(host.registry.info(name), host.registry.source(name))
        entry["installed"] = True
        config = configs.pop(name, None)
        if with_health:  # first: building the instance records an unhealthy plugin
            entry["health"] = await plugin_health(host, tenant_id, name)
        entry["tenant_config"] = describe(host, config) if config is not None else None
        plugins.append(entry)
    # Configured for this tenant but no longer installed: show it, it cannot deliver.
    for name, config in sorted(configs.items()):
        plugins.append({"name": name, "installed": False, "tenant_config": describe(host, config)})
    problems = [
        {"name": p.name, "source": p.source, "reason": p.reason} for p in host.registry.problems
    ]
    return web.json_response({"tenant": tenant_id, "plugins": plugins, "problems": problems})


@authed(Permission.PLUGIN_MANAGE)
async def configure_plugin(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    tenant_id = _tenant(ctx)
    host = _host(svc)
    name = _plugin_name(request, host)
    body = await read_json(request, ConfigureBody)
    info = host.registry.info(name)
    ip = peer_ip(request, svc)

    async def identity_gate(candidate: PluginConfig, existing: PluginConfig | None) -> None:
        # Granting a plugin customers' identities is sensitive access (governance
        # approvals, action ``plugin.identity``, target = the plugin's name).
        if await host.grants_identity(candidate) and not await host.grants_identity(existing):
            await require_approval(svc, ctx, "plugin.identity", name)

    if body.config is None:
        existing = await svc.store.get_plugin_config(tenant_id, name)
        if existing is not None and body.enabled and not existing.enabled:
            await identity_gate(replace(existing, enabled=True), existing)
        if not await host.set_enabled(tenant_id, name, body.enabled):
            raise ApiError(
                400,
                "invalid_config",
                f"plugin {name!r} is not configured yet: send its config",
                field="config",
            )
    else:
        try:
            await host.configure(
                tenant_id, name, dict(body.config), enabled=body.enabled, before_store=identity_gate
            )
        except ConfigError as exc:
            # ConfigError messages never carry a secret's value (plugins.registry).
            raise ApiError(400, "invalid_config", str(exc)[:MAX_ERROR], field=exc.field) from None
    stored = await svc.store.get_plugin_config(tenant_id, name)
    assert stored is not None
    described = describe(host, stored)
    given = sorted(body.config or {})
    await svc.auditor.record(
        "plugin.configured",
        tenant_id=tenant_id,
        actor=ctx.agent.id,
        target=name,
        ip=ip,
        plugin=name,
        enabled=stored.enabled,
        fields=sorted(stored.config),
        secret_fields_set=described["secrets_set"],
        secret_fields_changed=[k for k in given if (f := info.get_field(k)) and f.secret],
    )
    return web.json_response({"plugin": described})


@authed(Permission.PLUGIN_MANAGE)
async def disable_plugin(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    tenant_id = _tenant(ctx)
    host = _host(svc)
    name = request.match_info["name"]
    config = await svc.store.get_plugin_config(tenant_id, name) if len(name) <= 64 else None
    if config is None:
        raise ApiError(404, "not_found", "this plugin is not configured for your tenant")
    was_enabled = config.enabled
    await host.set_enabled(tenant_id, name, False)
    if was_enabled:
        await svc.auditor.record(
            "plugin.disabled",
            tenant_id=tenant_id,
            actor=ctx.agent.id,
            target=name,
            ip=peer_ip(request, svc),
            plugin=name,
        )
    stored = await svc.store.get_plugin_config(tenant_id, name)
    assert stored is not None
    return web.json_response({"plugin": describe(host, stored), "was_enabled": was_enabled})


@authed(Permission.PLUGIN_MANAGE)
async def list_dead(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    tenant_id = _tenant(ctx)
    limit = _query_int(request, "limit", 100, 1, 1000)
    items = await svc.store.list_events(
        tenant_id=tenant_id, plugin=_query_plugin(request), state="dead", limit=limit
    )
    return web.json_response({"dead": [dead_json(i) for i in items if i.tenant_id == tenant_id]})


@authed(Permission.PLUGIN_MANAGE)
async def replay_dead(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    tenant_id = _tenant(ctx)
    raw = request.match_info["item_id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ApiError(404, "not_found", "no such dead letter")
    item = await find_dead_letter(svc.store, int(raw), tenant_id)
    if item is None or not await svc.store.replay_dead(item.id, svc.clock()):
        raise ApiError(404, "not_found", "no such dead letter")
    svc.dispatcher.notify()
    await svc.auditor.record(
        "plugin.dead_replayed",
        tenant_id=tenant_id,
        actor=ctx.agent.id,
        target=str(item.id),
        ip=peer_ip(request, svc),
        plugin=item.plugin,
        event_type=item.event_type,
    )
    return web.json_response({"ok": True, "replayed": item.id})


@authed(Permission.PLUGIN_MANAGE)
async def outbox_counts(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    tenant_id = _tenant(ctx)
    state = request.query.get("state") or None
    if state is not None and state not in STATES:
        raise ApiError(
            400, "bad_request", "state must be pending, delivered or dead", field="state"
        )
    plugin = _query_plugin(request)
    counts: dict[str, int] = {}
    by_plugin: dict[str, dict[str, int]] = {}
    capped = False
    states = (state,) if state else STATES
    for s in states:
        per_plugin = await svc.store.count_events(
            tenant_id=tenant_id, state=s, plugin=plugin, cap=COUNT_CAP
        )
        counts[s] = sum(per_plugin.values())
        capped = capped or counts[s] >= COUNT_CAP
        for name, n in per_plugin.items():
            by_plugin.setdefault(name, dict.fromkeys(states, 0))[s] = n
    return web.json_response({"counts": counts, "by_plugin": by_plugin, "capped": capped})


MAX_TICKETS = 10


def _ticket_json(raw: Any) -> dict[str, Any] | None:
    """One enrich ticket as the console may show it (bounded strings, http(s) links)."""
    if not isinstance(raw, dict) or raw.get("id") is None:
        return None
    url = raw.get("url")
    if not (isinstance(url, str) and url.startswith(("https://", "http://")) and len(url) < 500):
        url = None
    return {
        "id": str(raw["id"])[:40],
        "subject": str(raw.get("subject") or "")[:200],
        "status": str(raw.get("status") or "")[:40],
        "url": url,
    }


@authed(Permission.CHAT_HANDLE)
async def chat_helpdesk(request: web.Request, ctx: AgentContext) -> web.Response:
    svc = _svc(request)
    host = _host(svc)
    tenant_id = ctx.principal.tenant_id
    chat_id = request.match_info["chat_id"]
    chat = await svc.store.get_chat(chat_id) if len(chat_id) <= 64 else None
    if chat is None or chat.tenant_id != tenant_id:
        raise ApiError(404, "not_found", "no such chat")
    if chat.assigned_agent_id != ctx.agent.id and not ctx.principal.can(
        Permission.CHAT_TAKEOVER, tenant_id
    ):
        raise ApiError(403, "forbidden", "only the chat's agent sees its helpdesk records")
    info = await svc.chats.customer_of(chat)
    results: list[dict[str, Any]] = []
    if info and info.get("email"):
        customer = CustomerIdentity(
            user_id=info.get("user_id"),
            name=info.get("name"),
            email=info.get("email"),
            verified=bool(info.get("verified")),
        )
        for config in await svc.store.list_plugin_configs(tenant_id):
            if not config.enabled:
                continue
            try:
                instance = await host.plugin_for(tenant_id, config.plugin)
            except PluginUnavailable:
                continue
            data = await run_enrich(instance, customer) if instance is not None else None
            if data is None:
                continue
            tickets = [
                t
                for t in (_ticket_json(x) for x in (data.get("open_tickets") or [])[:MAX_TICKETS])
                if t is not None
            ]
            results.append({"plugin": config.plugin, "open_tickets": tickets})
    return web.json_response({"chat": chat.id, "helpdesk": results})


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/plugins", list_plugins)
    # literal paths before /api/plugins/{name}
    r.add_get("/api/plugins/dead", list_dead)
    r.add_post("/api/plugins/dead/{item_id}/replay", replay_dead)
    r.add_get("/api/plugins/outbox", outbox_counts)
    r.add_put("/api/plugins/{name}", configure_plugin)
    r.add_post("/api/plugins/{name}/disable", disable_plugin)
    r.add_get("/api/chats/{chat_id}/helpdesk", chat_helpdesk)
