"""``cipherdesk report list | export | verify``: signed destruction reports offline.

``verify`` needs no installation: it checks a report file against the verify key given on
the command line (the one ``/.well-known/cipherdesk.json`` publishes) and exits 1 when
the file was altered or signed by another key, so a data protection officer or auditor
can check a report anywhere. ``export`` writes one stored report as that file; ``list``
shows the stored reports (ids, kinds, times, counts).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from gateway.cli.common import CliError, config_from, offline_services
from gateway.reports import MAX_FILE_BYTES, ReportInvalid, SignedReport, verify_file
from gateway.store.base import StoredReport


def cmd_verify(args: argparse.Namespace) -> None:
    path = Path(args.file)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise CliError(f"{path}: larger than {MAX_FILE_BYTES} bytes, not a report")
        text = path.read_text("utf-8")
    except UnicodeDecodeError:
        raise CliError(f"{path}: not UTF-8 text") from None
    try:
        report = verify_file(text, args.key)
    except ReportInvalid as exc:
        print(f"INVALID: {exc}")
        sys.exit(1)
    counts = ", ".join(f"{k}={v}" for k, v in sorted(report.get("counts", {}).items()))
    print(
        f"ok: {report.get('kind')} report {report.get('id')} of tenant "
        f"{report.get('tenant') or '(installation)'} by {report.get('actor')} "
        f"at {report.get('at')}: {counts or 'nothing destroyed'}"
    )


def cmd_export(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> StoredReport | None:
        async with offline_services(config) as svc:
            return await svc.store.get_report(args.report_id)

    found = asyncio.run(run())
    if found is None:
        raise CliError(f"no report {args.report_id!r}")
    text = SignedReport(found).export()
    if args.out:
        Path(args.out).write_text(text, "utf-8")
        print(f"report {found.id} written to {args.out}")
    else:
        sys.stdout.write(text)


def cmd_list(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> list[StoredReport]:
        async with offline_services(config) as svc:
            return await svc.store.list_reports(args.tenant, limit=args.limit)

    if not 1 <= args.limit <= 1000:
        raise CliError("--limit must be 1-1000")
    found = asyncio.run(run())
    for r in found:
        print(f"{r.id}  {r.kind:9}  {r.created_at:.0f}")
    if not found:
        print("no reports")


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``cipherdesk report verify|export|list``."""
    report = sub.add_parser("report", help="signed destruction reports")
    actions = report.add_subparsers(dest="report_command", metavar="ACTION", required=True)
    verify = actions.add_parser(
        "verify", help="check a report file offline against the gateway's verify key"
    )
    verify.add_argument("file", help="a report file (cipherdesk report export)")
    verify.add_argument("--key", required=True, help="the gateway's Ed25519 verify key (base64)")
    verify.set_defaults(func=cmd_verify)
    export = actions.add_parser("export", parents=[common], help="write one report as JSON")
    export.add_argument("report_id")
    export.add_argument("--out", help="write to this file instead of stdout")
    export.set_defaults(func=cmd_export)
    listing = actions.add_parser("list", parents=[common], help="list a tenant's reports")
    listing.add_argument("--tenant", default="", help="tenant id ('' = installation-wide)")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=cmd_list)
