"""``cipherdesk keys rotate`` and ``cipherdesk keys rewrap``: master key rotation.

* ``keys rotate`` — for the key file (``<data dir>/master.key``): adds a new current key
  to the file and moves every sealed value onto it. Run it with the gateway stopped (a
  running gateway would not know the new key; single-node gateways can use the admin
  page's emergency panel instead). Refused when ``CIPHERDESK_MASTER_KEY`` is set.
* ``keys rewrap`` — moves everything sealed under an older key to the current one, e.g.
  after prepending a new key to ``CIPHERDESK_MASTER_KEY`` on every node and restarting.
  Safe while the gateway runs and safe to repeat.

Both print counts and the public key id only, never key material, and are audited
(``keys.rotated`` / ``keys.rewrapped``, actor ``"cli"``).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from typing import Any

from gateway import keyrotation
from gateway.cli.common import CliError, config_from, offline_services
from gateway.config import Config


def _gateway_listening(config: Config) -> bool:
    host = config.server.host
    wildcard = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104
    host = wildcard.get(host, host)
    try:
        with socket.create_connection((host, config.server.port), timeout=0.5):
            return True
    except OSError:
        return False


def _print_report(report: keyrotation.Report, heading: str) -> None:
    out = sys.stdout
    print(heading, file=out)
    print(f"  current key id     : {report.key_id}", file=out)
    print(f"  chat data keys     : {report.chat_keys}", file=out)
    print(f"  TOTP secrets       : {report.totp_secrets}", file=out)
    print(f"  identity secrets   : {report.identity_secrets}", file=out)
    print(f"  plugin secrets     : {report.plugin_secrets}", file=out)
    print(f"  already current    : {report.already_current}", file=out)
    print(f"  skipped (unopened) : {report.skipped}", file=out)
    for failure in report.failures:
        print(f"    {failure}", file=out)


def cmd_keys_rotate(args: argparse.Namespace) -> None:
    config = config_from(args)
    if (config.master_key or "").strip():
        raise CliError(keyrotation.ENV_REFUSAL)
    if _gateway_listening(config):
        raise CliError(
            f"a gateway is listening on {config.server.host}:{config.server.port}; it would "
            "not know the new key. Stop it first, or (single node) have an installation operator "
            "call POST /api/emergency/rotate-keys"
        )

    async def run() -> keyrotation.Report:
        async with offline_services(config) as svc:
            try:
                return await keyrotation.rotate(svc, actor="cli")
            except keyrotation.RotationRefused as exc:
                raise CliError(exc.message) from None

    report = asyncio.run(run())
    _print_report(
        report,
        f"Master key rotated; {keyrotation.key_file_path_of(config)} now lists the new key first.",
    )
    print(
        "Other nodes sharing this data must get the new key file before they start.",
        file=sys.stdout,
    )


def cmd_keys_rewrap(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> tuple[keyrotation.Report, int]:
        async with offline_services(config) as svc:
            report = await keyrotation.rewrap_all(svc)
            await svc.auditor.record(
                "keys.rewrapped",
                actor="cli",
                key_id=report.key_id,
                chat_keys=report.chat_keys,
                totp_secrets=report.totp_secrets,
                identity_secrets=report.identity_secrets,
                plugin_secrets=report.plugin_secrets,
                skipped=report.skipped,
            )
            return report, len(svc.keyring.key_ids)

    report, ring = asyncio.run(run())
    _print_report(report, f"Rewrap done ({ring} key(s) in the ring).")
    if report.skipped:
        raise CliError(
            f"{report.skipped} value(s) could not be moved (see above); keep the "
            "old keys until they are resolved"
        )
    if ring > 1:
        print(
            "Nothing is left under older keys: they may be retired (remove them from "
            "the ring on every node, then restart).",
            file=sys.stdout,
        )


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    keys = sub.add_parser("keys", help="master key rotation")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    rotate = keys_sub.add_parser(
        "rotate",
        parents=[common],
        help="new master key in the key file, then rewrap everything (gateway stopped)",
    )
    rotate.set_defaults(func=cmd_keys_rotate)

    rewrap = keys_sub.add_parser(
        "rewrap",
        parents=[common],
        help="move everything sealed under older master keys to the current one",
    )
    rewrap.set_defaults(func=cmd_keys_rewrap)
