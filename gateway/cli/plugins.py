"""``cipherdesk plugins …``: installed helpdesk plugins, per-tenant configuration, dead
letters.

    cipherdesk plugins list [--tenant T] [--health]
    cipherdesk plugins describe NAME
    cipherdesk plugins enable NAME --tenant T [--set key=value ...] [--clear KEY ...]
                              [--secret-stdin KEY ...] [--replace]
                              [--allow-private-network | --deny-private-network]
    cipherdesk plugins test NAME --tenant T [--event chat.closed]
    cipherdesk plugins disable NAME --tenant T
    cipherdesk plugins dead [--tenant T] [--plugin P]
    cipherdesk plugins replay ID [--tenant T]      (or --all [--tenant T] [--plugin P])

Configuration goes through :meth:`gateway.plugin_host.PluginHost.configure`, the same
validation and sealing as the admin API. ``enable`` *patches*: settings not named keep
their stored values (``--replace`` starts from an empty configuration instead), ``--clear
KEY`` removes a setting or secret (e.g. ``previous_secret`` once a rotation is done).
Secret fields may be given with ``--set`` (a warning reminds that the value lands in shell
history) or, better, read from standard input with ``--secret-stdin KEY`` — repeatable,
one line of stdin per key, in the order given. ``--allow-private-network`` is the
operator's allowance for this plugin to reach loopback/private addresses (the admin API
can never set it). Secret values are never printed: the stored
configuration is shown with ``***`` in their place. A running gateway picks a change up
within a few seconds (its plugin list is cached for ``CONFIG_TTL``). Changes are audited
with actor ``"cli"``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from gateway.cli.common import CliError, config_from, offline_services, table
from gateway.http.inbound import DIALECTS
from gateway.plugin_host import PluginUnavailable
from plugins.api import ConfigError
from plugins.outbox import find_dead_letter, safe_error
from plugins.testing import EVENT_FACTORIES, customer

HEALTH_TIMEOUT = 3.0
SCAN_CAP = 10_000


def _read_secret_stdin(what: str) -> str:
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise CliError(f"no {what} on standard input")
    return value


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) if ts else ""


def _installed(host: Any, name: str) -> Any:
    if name not in host.registry:
        installed = ", ".join(host.registry.names()) or "none"
        raise CliError(f"plugin {name!r} is not installed (installed: {installed})")
    return host.registry.info(name)


async def _tenant_exists(svc: Any, tenant_id: str) -> None:
    if await svc.store.get_tenant(tenant_id) is None:
        raise CliError(f"no tenant {tenant_id!r}")


def _parse_sets(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CliError(f"--set expects key=value, got {key or pair[:40]!r}")
        values[key] = value
    return values


def _masked(host: Any, config: Any) -> list[tuple[str, str]]:
    """(key, shown value) of a stored config; secrets as ``***``, never their values."""
    described = host.describe(config)
    info = host.registry.info(config.plugin) if config.plugin in host.registry else None
    rows = []
    for key, value in sorted(described["config"].items()):
        field = info.get_field(key) if info is not None else None
        shown = "***" if field is not None and field.secret else value
        if isinstance(shown, list):
            shown = ", ".join(str(v) for v in shown)
        rows.append((key, str(shown)))
    rows.extend((key, "***") for key in described["secrets_set"])
    return sorted(rows)


# ---------------------------------------------------------------------- list


def cmd_list(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> str:
        async with offline_services(config) as svc:
            host = svc.plugins
            reg = host.registry
            out = ["Installed plugins:"]
            out.append(
                table(
                    ("NAME", "VERSION", "SOURCE", "SCOPES", "SECRET FIELDS"),
                    [
                        (
                            n,
                            reg.info(n).version,
                            reg.source(n),
                            ",".join(sorted(reg.info(n).scopes)),
                            ",".join(f.name for f in reg.info(n).config_schema if f.secret) or "-",
                        )
                        for n in reg.names()
                    ],
                )
            )
            if args.tenant:
                await _tenant_exists(svc, args.tenant)
            configs = await svc.store.list_plugin_configs(args.tenant)
            headers = ["TENANT", "PLUGIN", "STATE", "SETTINGS", "UPDATED (UTC)"]
            if args.health:
                headers.append("HEALTH")
            rows = []
            for c in sorted(configs, key=lambda c: (c.tenant_id, c.plugin)):
                state = "enabled" if c.enabled else "disabled"
                if c.plugin not in reg:
                    state += " (not installed)"
                try:
                    settings = " ".join(f"{k}={v}" for k, v in _masked(host, c))
                except Exception:  # sealed secrets unreadable with this master key
                    settings = "(secrets unreadable: wrong master key?)"
                row = [c.tenant_id, c.plugin, state, settings, _when(c.updated_at)]
                if args.health:
                    row.append(await _health(host, c) if c.enabled else "-")
                rows.append(row)
            out.append("")
            scope = f" of tenant {args.tenant}" if args.tenant else ""
            out.append(f"Configured plugins{scope}:")
            out.append(table(headers, rows) if rows else "  (none)")
            out.append("")
            if reg.problems:
                out.append("Problems:")
                out.append(
                    table(
                        ("NAME", "SOURCE", "REASON"),
                        [(p.name, p.source, p.reason) for p in reg.problems],
                    )
                )
            else:
                out.append("Problems: none")
            return "\n".join(out)

    print(asyncio.run(run()))


async def _health(host: Any, config: Any) -> str:
    try:
        instance = await host.plugin_for(config.tenant_id, config.plugin)
        if instance is None:
            return "not available"
        health = await asyncio.wait_for(instance.health(), HEALTH_TIMEOUT)
    except TimeoutError:
        return "FAIL: timed out"
    except PluginUnavailable as exc:  # its create() failed or its hooks are wrong
        return f"FAIL: {exc}"
    except Exception as exc:
        return f"FAIL: {type(exc).__name__}"
    return ("ok" if health.ok else "FAIL") + (f": {health.detail}" if health.detail else "")


# ---------------------------------------------------------------------- enable/disable


def cmd_enable(args: argparse.Namespace) -> None:
    config = config_from(args)
    values: dict[str, Any] = _parse_sets(args.set or [])
    secret_keys: list[str] = list(args.secret_stdin or [])
    if len(set(secret_keys)) != len(secret_keys):
        raise CliError("--secret-stdin: each key at most once")
    secret_values = [_read_secret_stdin(f"value for {k}") for k in secret_keys]
    clear: list[str] = list(args.clear or [])
    allow_private = (
        True if args.allow_private_network else (False if args.deny_private_network else None)
    )

    async def run() -> tuple[list[tuple[str, str]], list[str]]:
        async with offline_services(config) as svc:
            host = svc.plugins
            info = _installed(host, args.name)
            await _tenant_exists(svc, args.tenant)
            warnings = []
            secret_fields = [f.name for f in info.config_schema if f.secret]
            for key, value in zip(secret_keys, secret_values, strict=True):
                field = info.get_field(key)
                if field is None or not field.secret:
                    raise CliError(
                        f"--secret-stdin: {key!r} is not a secret field of "
                        f"{args.name} (secret fields: "
                        f"{', '.join(secret_fields) or 'none'})"
                    )
                if key in values:
                    raise CliError(f"{key!r} given both with --set and --secret-stdin")
                values[key] = value
            for key in values:
                field = info.get_field(key)
                if field is not None and field.secret and key not in secret_keys:
                    warnings.append(
                        f"warning: secret {key!r} was given on the command line "
                        f"(shell history, ps); prefer --secret-stdin {key}"
                    )
            try:
                stored = await host.configure(
                    args.tenant,
                    args.name,
                    values,
                    enabled=True,
                    patch=not args.replace,
                    clear=clear,
                    allow_private=allow_private,
                )
            except ConfigError as exc:
                raise CliError(str(exc)) from None
            described = host.describe(stored)
            await svc.auditor.record(
                "plugin.configured",
                tenant_id=args.tenant,
                actor="cli",
                target=args.name,
                plugin=args.name,
                enabled=True,
                fields=sorted(described["config"]),
                secret_fields_set=described["secrets_set"],
                secret_fields_changed=sorted(
                    k for k in [*values, *clear] if (f := info.get_field(k)) and f.secret
                ),
                cleared=sorted(clear),
                private_network_allowed=described["private_network_allowed"],
            )
            if described["private_network_allowed"]:
                warnings.append("note: this plugin may reach loopback/private addresses")
            return _masked(host, stored), warnings

    shown, warnings = asyncio.run(run())
    for line in warnings:
        print(line, file=sys.stderr)
    print(f"plugin {args.name} enabled for tenant {args.tenant}")
    for key, value in shown:
        print(f"  {key} = {value}")


def cmd_describe(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> str:
        async with offline_services(config) as svc:
            host = svc.plugins
            info = _installed(host, args.name)
            out = [
                f"{info.name} {info.version} (API v{info.api_version}, "
                f"{host.registry.source(info.name)})"
            ]
            if info.description:
                out.append(info.description)
            out.append("scopes: " + ", ".join(sorted(info.scopes)))
            out.append("")
            out.append(
                table(
                    ("SETTING", "TYPE", "REQUIRED", "SECRET", "DEFAULT", "ALLOWED", "HELP"),
                    [
                        (
                            f.name,
                            f.type,
                            "yes" if f.required else "",
                            "yes" if f.secret else "",
                            "" if f.secret or f.default is None else f.default,
                            _constraints(f),
                            f.help,
                        )
                        for f in info.config_schema
                    ],
                )
            )
            dialect = DIALECTS.get(info.name)
            if dialect is not None and dialect.setup:
                out.extend(["", dialect.setup])
            return "\n".join(out)

    print(asyncio.run(run()))


def _constraints(f: Any) -> str:
    parts = []
    if f.choices:
        parts.append("one of " + "|".join(f.choices))
    if getattr(f, "minimum", None) is not None:
        parts.append(f">= {f.minimum}")
    if getattr(f, "maximum", None) is not None:
        parts.append(f"<= {f.maximum}")
    if getattr(f, "pattern", None):
        parts.append(f"matches {f.pattern}")
    return ", ".join(parts)


def cmd_test(args: argparse.Namespace) -> None:
    """Send one synthetic event to a tenant's configured plugin, like Stripe's CLI
    ``trigger``: the plugin's real code and target, a clearly fake chat."""
    config = config_from(args)

    async def run() -> str:
        async with offline_services(config) as svc:
            host = svc.plugins
            _installed(host, args.name)
            await _tenant_exists(svc, args.tenant)
            instance = await host.plugin_for(args.tenant, args.name)
            if instance is None:
                raise CliError(f"plugin {args.name!r} is not enabled for tenant {args.tenant!r}")
            if args.event not in instance.info.scopes:
                raise CliError(
                    f"{args.name} does not take {args.event} events (scopes: "
                    f"{', '.join(sorted(instance.info.scopes))})"
                )
            now = svc.clock()
            event = EVENT_FACTORIES[args.event](
                tenant_id=args.tenant,
                chat_id=f"cipherdesk-test-{int(now)}",
                occurred_at=now,
                event_id=f"test:{int(now)}",
                customer=customer("Test Customer", "test@example.invalid", verified=False)
                if "customer.identity" in instance.info.scopes
                else None,
            )
            try:
                await asyncio.wait_for(instance.deliver(event), 30)
            except Exception as exc:
                raise CliError(
                    f"test {args.event} to {args.name} failed: {safe_error(exc)}"
                ) from None
            return f"test {args.event} delivered to {args.name} (event id {event.event_id})"

    print(asyncio.run(run()))


def cmd_disable(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> bool:
        async with offline_services(config) as svc:
            stored = await svc.store.get_plugin_config(args.tenant, args.name)
            if stored is None:
                raise CliError(f"plugin {args.name!r} is not configured for tenant {args.tenant!r}")
            await svc.plugins.set_enabled(args.tenant, args.name, False)
            if stored.enabled:
                await svc.auditor.record(
                    "plugin.disabled",
                    tenant_id=args.tenant,
                    actor="cli",
                    target=args.name,
                    plugin=args.name,
                )
            return stored.enabled

    was = asyncio.run(run())
    print(
        f"plugin {args.name} disabled for tenant {args.tenant}"
        + ("" if was else " (it already was)")
    )


# ---------------------------------------------------------------------- dead letters


def cmd_dead(args: argparse.Namespace) -> None:
    config = config_from(args)
    if not 1 <= args.limit <= SCAN_CAP:
        raise CliError(f"--limit must be between 1 and {SCAN_CAP}")

    async def run() -> list[Any]:
        async with offline_services(config) as svc:
            return await svc.store.list_events(
                tenant_id=args.tenant, plugin=args.plugin, state="dead", limit=args.limit
            )

    items = asyncio.run(run())
    if not items:
        print("no dead letters")
        return
    # Never payloads: ids, types, counts and the dispatcher's (safe) error note.
    print(
        table(
            ("ID", "TENANT", "PLUGIN", "EVENT", "CHAT", "ATTEMPTS", "CREATED (UTC)", "LAST ERROR"),
            [
                (
                    i.id,
                    i.tenant_id,
                    i.plugin,
                    i.event_type,
                    i.chat_id,
                    i.attempts,
                    _when(i.created_at),
                    (i.last_error or "")[:120],
                )
                for i in items
            ],
        )
    )


def cmd_replay(args: argparse.Namespace) -> None:
    config = config_from(args)
    if (args.id is None) == (not args.all):
        raise CliError("give a dead letter ID, or --all")

    async def run() -> list[Any]:
        async with offline_services(config) as svc:
            if args.all:
                chosen = await svc.store.list_events(
                    tenant_id=args.tenant, plugin=args.plugin, state="dead", limit=SCAN_CAP
                )
            else:
                found = await find_dead_letter(svc.store, args.id, args.tenant)
                chosen = [] if found is None else [found]
            if not chosen and not args.all:
                where = f" of tenant {args.tenant!r}" if args.tenant else ""
                raise CliError(f"no dead letter {args.id}{where}")
            replayed = []
            for item in chosen:
                if await svc.store.replay_dead(item.id, svc.clock()):
                    replayed.append(item)
                    await svc.auditor.record(
                        "plugin.dead_replayed",
                        tenant_id=item.tenant_id,
                        actor="cli",
                        target=str(item.id),
                        plugin=item.plugin,
                        event_type=item.event_type,
                    )
            return replayed

    replayed = asyncio.run(run())
    if args.all:
        print(f"{len(replayed)} dead letter(s) moved back to pending")
    elif replayed:
        print(
            f"dead letter {args.id} moved back to pending (attempts reset); a running "
            f"gateway delivers it shortly"
        )
    else:
        raise CliError(f"dead letter {args.id} is no longer dead")


# ---------------------------------------------------------------------- parsers


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    plugins = sub.add_parser("plugins", help="helpdesk plugins: list, enable, dead letters")
    psub = plugins.add_subparsers(dest="plugins_command", metavar="ACTION", required=True)

    lst = psub.add_parser(
        "list", parents=[common], help="installed plugins, per-tenant configuration, problems"
    )
    lst.add_argument("--tenant", help="only this tenant's configurations")
    lst.add_argument(
        "--health", action="store_true", help="also ask each enabled plugin for its health"
    )
    lst.set_defaults(func=cmd_list)

    enable = psub.add_parser(
        "enable", parents=[common], help="enable and configure a plugin for a tenant"
    )
    enable.add_argument("name", metavar="NAME")
    enable.add_argument("--tenant", required=True)
    enable.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a setting (repeatable); lists are comma-separated",
    )
    enable.add_argument(
        "--secret-stdin",
        metavar="KEY",
        action="append",
        help="read the secret field KEY from stdin (repeatable: one line per key, in order)",
    )
    enable.add_argument(
        "--clear",
        metavar="KEY",
        action="append",
        help="remove a stored setting or secret (repeatable)",
    )
    enable.add_argument(
        "--replace",
        action="store_true",
        help="start from an empty configuration instead of patching",
    )
    private = enable.add_mutually_exclusive_group()
    private.add_argument(
        "--allow-private-network",
        action="store_true",
        help="operator: let this plugin reach loopback/private addresses",
    )
    private.add_argument(
        "--deny-private-network", action="store_true", help="withdraw --allow-private-network"
    )
    enable.set_defaults(func=cmd_enable)

    describe = psub.add_parser(
        "describe", parents=[common], help="a plugin's scopes and settings (schema, help)"
    )
    describe.add_argument("name", metavar="NAME")
    describe.set_defaults(func=cmd_describe)

    test = psub.add_parser(
        "test", parents=[common], help="send a synthetic event to a tenant's plugin"
    )
    test.add_argument("name", metavar="NAME")
    test.add_argument("--tenant", required=True)
    test.add_argument(
        "--event",
        default="chat.closed",
        choices=sorted(
            [
                "chat.opened",
                "chat.message",
                "chat.assigned",
                "chat.transferred",
                "chat.closed",
                "policy.flag",
            ]
        ),
    )
    test.set_defaults(func=cmd_test)

    disable = psub.add_parser("disable", parents=[common], help="disable a tenant's plugin")
    disable.add_argument("name", metavar="NAME")
    disable.add_argument("--tenant", required=True)
    disable.set_defaults(func=cmd_disable)

    dead = psub.add_parser("dead", parents=[common], help="list dead letters (no payloads)")
    dead.add_argument("--tenant")
    dead.add_argument("--plugin")
    dead.add_argument("--limit", type=int, default=100)
    dead.set_defaults(func=cmd_dead)

    replay = psub.add_parser(
        "replay", parents=[common], help="move a dead letter (or all) back to pending"
    )
    replay.add_argument("id", metavar="ID", type=int, nargs="?")
    replay.add_argument("--all", action="store_true", help="every dead letter (filtered)")
    replay.add_argument("--tenant", help="only this tenant's dead letters")
    replay.add_argument("--plugin", help="with --all: only this plugin's")
    replay.set_defaults(func=cmd_replay)
