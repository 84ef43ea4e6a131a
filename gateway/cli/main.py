"""``cipherdesk`` command line: serve the gateway and administer an installation.

Subcommands live in small modules that each add their parsers (``register``) and run
against the same services the gateway uses (``offline_services``), so the CLI and the
HTTP API cannot disagree about the rules. Errors print one clear line and exit 2;
never a traceback for a mistake a user can make.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import importlib
import socket
import sys
from collections.abc import Callable, Sequence

import structlog
from aiohttp import web

from crypto.envelope import EnvelopeError
from gateway.app import build_services, close_services, create_app
from gateway.cli.common import (
    CliError,
    common_options,
    config_from,
    missing_installation,
    offline_services,
)
from gateway.config import Config, ConfigError
from gateway.event_loop import new_event_loop
from gateway.http.web import WebAssetsError
from gateway.keyfiles import IdentityFileError
from gateway.logs import configure_logging
from gateway.reports import SignedReport
from gateway.store.migrate import SchemaTooNew
from gateway.version import package_version
from gateway.workers import Supervisor, plan_workers, tag_responses

#: Modules adding subcommands: each exposes ``register(subparsers, common)``.
COMMAND_MODULES = (
    "gateway.cli.admin",  # also registers cli_tokens and cli_audit under its groups
    "gateway.cli.plugins",
    "gateway.cli.keys",
    "gateway.cli.health",
    "gateway.cli.backup",
    "gateway.cli.report",
    "gateway.cli.e2e",
)

"""Modules whose ``register(sub, common)`` adds their subcommands. They are loaded when
the parser is built; an import error
in one of them is an error of the whole CLI, never a subcommand that silently vanishes."""


# ---------------------------------------------------------------------------- serve


def _check_port(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CliError(
                    f"port {port} on {host} is already in use; pick another with --port"
                ) from None
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _banner(config: Config) -> str:
    base = config.base_url
    return "\n".join(
        [
            "",
            f"  cipherdesk {package_version()} is running",
            f"    widget demo page : {base}/demo",
            f"    agent console    : {base}/console",
            f"    admin pages      : {base}/admin",
            f"    data directory   : {config.data_dir}",
            "",
            "  First admin (in another terminal):",
            f"    .venv/bin/cipherdesk agent add admin@example.com --tenant demo --role admin "
            f"--data-dir {config.data_dir}",
            "  then scan the printed QR code with an authenticator app and log in at /console.",
            "",
        ]
    )


def cmd_serve(args: argparse.Namespace) -> None:
    config = config_from(args, host=args.host, port=args.port)
    configure_logging(args.log_level)
    if args.worker_index is not None:
        _serve_worker(config, args.worker_index)
        return
    _check_port(config.server.host, config.server.port)
    plan = plan_workers(config)
    if plan.reason is not None:
        print(
            f"cipherdesk: server.workers = {config.server.workers}, running one process: "
            f"{plan.reason}",
            file=sys.stderr,
            flush=True,
        )
    if missing_installation(config) is not None:
        print(
            f"cipherdesk: creating a new installation in {config.data_dir} "
            "(new master key, empty database)",
            file=sys.stderr,
            flush=True,
        )
    if plan.count > 1:
        _supervise(config, plan.count, args.raw_argv)
        return
    app = create_app(config)
    print(_banner(config), file=sys.stderr, flush=True)
    _run(app, config)


def _supervise(config: Config, count: int, argv: Sequence[str]) -> None:
    """Prepare the installation once (keys, migrations: workers must not race to create
    them), then run ``count`` copies of this command as workers (gateway/workers.py)."""
    _create_installation(config)
    print(_banner(config), file=sys.stderr, flush=True)
    print(f"  {count} worker processes share port {config.server.port}\n", file=sys.stderr)
    command = [sys.executable, "-m", "gateway.cli", *argv]
    supervisor = Supervisor(
        lambda index: [*command, "--worker-index", str(index)],
        count,
        stop_timeout=config.server.shutdown_timeout + 5.0,
    )
    status = supervisor.run()
    if status:
        raise CliError("workers crashed repeatedly; the node stopped (see the log above)")


def _serve_worker(config: Config, index: int) -> None:
    """One worker of a multi-worker node: the same app on a ``SO_REUSEPORT`` socket;
    only worker 0 runs the background jobs."""
    structlog.contextvars.bind_contextvars(worker=index)
    app = create_app(config, with_workers=index == 0)
    tag_responses(app, index)
    _run(app, config, reuse_port=True)


def _run(app: web.Application, config: Config, *, reuse_port: bool = False) -> None:
    """Serve ``app`` until SIGTERM/SIGINT (aiohttp drains within the shutdown timeout),
    on the configured event loop."""
    try:
        loop = new_event_loop(config.server.event_loop)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    app.on_startup.append(_freeze_startup_objects)
    web.run_app(
        app,
        loop=loop,
        host=config.server.host,
        port=config.server.port,
        print=None,
        access_log=None,
        reuse_port=reuse_port,
        shutdown_timeout=config.server.shutdown_timeout,
    )


async def _freeze_startup_objects(app: web.Application) -> None:
    """Once the services are built, move everything alive into the collector's permanent
    generation (``gc.freeze``): the policy's tables and lexicons, the imported modules and
    the caches built at start-up are never garbage, yet every full collection walked them
    again: 80–210 ms each with 1,000 live chats (bench/latency.py), felt by whichever
    messages were in flight; 25–77 ms after the freeze. Later garbage is collected as
    before."""
    gc.collect()
    gc.freeze()


def _create_installation(config: Config) -> None:
    """Open and close the services once: creates the data dir, keys and schema if new,
    migrates an existing database."""

    async def create() -> None:
        await close_services(await build_services(config))

    asyncio.run(create())


def cmd_init(args: argparse.Namespace) -> None:
    """Create an installation without serving (scripted set-ups, containers, tests): the
    data directory, master key, signing key and database schema."""

    config = config_from(args)
    if missing_installation(config) is None:
        print(f"{config.data_dir} already holds a cipherdesk installation (nothing changed)")
        return
    _create_installation(config)
    print(f"created a new cipherdesk installation in {config.data_dir}")


def cmd_chat_erase(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> SignedReport | None:
        async with offline_services(config) as svc:
            return await svc.chats.erase_reported(args.chat_id, actor="cli")

    report = asyncio.run(run())
    if report is None:
        raise CliError(f"no chat {args.chat_id!r}")
    print(f"chat {args.chat_id} erased: its data key is destroyed and its transcript is unreadable")
    print(f"signed destruction report {report.stored.id} (cipherdesk report export)")


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = argparse.ArgumentParser(prog="cipherdesk", description="secure customer-chat gateway")
    parser.add_argument("--version", action="version", version=f"cipherdesk {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the gateway")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8080)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    # Set by the supervisor of a multi-worker node on each worker it starts.
    serve.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    init = sub.add_parser(
        "init", parents=[common], help="create an installation (key, database) without serving"
    )
    init.set_defaults(func=cmd_init)

    chat = sub.add_parser("chat", help="chat administration")
    chat_sub = chat.add_subparsers(dest="chat_command", metavar="ACTION", required=True)
    erase = chat_sub.add_parser(
        "erase", parents=[common], help="crypto-shred a chat (destroys its data key)"
    )
    erase.add_argument("chat_id")
    erase.set_defaults(func=cmd_chat_erase)

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.raw_argv = list(sys.argv[1:] if argv is None else argv)
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        func(args)
    except CliError as exc:
        print(f"cipherdesk: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except EOFError:  # standard input closed at a prompt
        print("cipherdesk: no input (standard input is closed)", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:  # e.g. the data directory is a file, or not writable
        where = f": {exc.filename}" if exc.filename else ""
        print(f"cipherdesk: {exc.strerror or exc}{where}", file=sys.stderr)
        sys.exit(2)
    except Exception as exc:  # config/key-file problems surface here with their own text
        known = EnvelopeError | IdentityFileError | ConfigError | ValueError | SchemaTooNew
        if isinstance(exc, known | WebAssetsError):
            print(f"cipherdesk: {exc}", file=sys.stderr)
            sys.exit(2)
        raise
