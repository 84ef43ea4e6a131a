"""``cipherdesk audit verify | export | checkpoint``: the tamper-evident audit log offline.

``verify`` walks every chain (or one tenant's) and prints the first broken row; it exits
1 when any chain is broken, so cron or a monitoring check can alert on it. ``export``
writes JSON lines for a SIEM (:mod:`gateway.governance.siem`). ``checkpoint`` signs every chain
head now (the server also does this periodically).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, TextIO

from gateway.cli.common import CliError, config_from, offline_services
from gateway.governance.auditchain import chains_of, verify_chain
from gateway.governance.siem import siem_line


def cmd_verify(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> list[Any]:
        async with offline_services(config) as svc:
            keys = svc.audit_keys
            reports = [
                await verify_chain(svc.store, keys, svc.identity, chain)
                for chain in await chains_of(svc.store, args.tenant)
            ]
            await svc.auditor.record(
                "audit.verified",
                tenant_id=args.tenant,
                actor="cli",
                chains=len(reports),
                broken=sum(1 for r in reports if not r.ok),
            )
            return reports

    reports = asyncio.run(run())
    broken = False
    for r in reports:
        name = r.chain or "(installation)"
        if r.ok:
            print(
                f"{name}: ok — {r.rows} rows verified, {r.legacy_rows} legacy, "
                f"{r.checkpoints} signed checkpoints, head seq {r.head_seq}"
            )
        else:
            broken = True
            print(
                f"{name}: BROKEN at row id {r.first_broken_id} (seq {r.first_broken_seq}): "
                f"{r.problem} — {r.detail}"
            )
    if not reports:
        print("no audit chains yet")
    if broken:
        sys.exit(1)


def cmd_export(args: argparse.Namespace) -> None:
    config = config_from(args)
    if args.after_id < 0:
        raise CliError("--after-id must be 0 or more")

    async def run(out: TextIO) -> int:
        written = 0
        async with offline_services(config) as svc:
            for chain in await chains_of(svc.store, args.tenant):
                after = args.after_id
                while True:
                    rows = await svc.store.audit_chain_rows(chain, after_id=after)
                    for row in rows:
                        out.write(siem_line(row))
                        written += 1
                    if len(rows) < 1000:
                        break
                    after = rows[-1].id
            await svc.auditor.record(
                "audit.exported",
                tenant_id=args.tenant,
                actor="cli",
                rows=written,
                to="file" if args.out else "stdout",
            )
        return written

    if args.out:
        with open(args.out, "a", encoding="utf-8") as out:
            written = asyncio.run(run(out))
        print(f"{written} audit rows appended to {args.out}")
    else:
        asyncio.run(run(sys.stdout))


def cmd_checkpoint(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> int:
        async with offline_services(config) as svc:
            return await svc.checkpointer.checkpoint_all("manual")

    print(f"{asyncio.run(run())} chain(s) checkpointed")


def register_audit_actions(aud: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """Add ``verify``/``export``/``checkpoint`` under ``cipherdesk audit``."""
    actions = aud.add_subparsers(dest="audit_command", metavar="ACTION")
    verify = actions.add_parser(
        "verify", parents=[common], help="verify the audit chains; exit 1 on the first broken row"
    )
    verify.add_argument("--tenant")
    verify.set_defaults(func=cmd_verify)
    export = actions.add_parser(
        "export", parents=[common], help="audit rows as JSON lines for a SIEM (stdout or --out)"
    )
    export.add_argument("--tenant")
    export.add_argument(
        "--after-id", type=int, default=0, help="only rows with a larger id (incremental export)"
    )
    export.add_argument("--out", help="append to this file instead of stdout")
    export.set_defaults(func=cmd_export)
    cp = actions.add_parser("checkpoint", parents=[common], help="sign every audit chain head now")
    cp.set_defaults(func=cmd_checkpoint)
