"""``cipherdesk`` command line: serve the gateway and administer an installation.

Subcommands live in small modules that each add their parsers (``register``) and run
against the same services the gateway uses (``offline_services``), so the CLI and the
HTTP API cannot disagree about the rules. Errors print one clear line and exit 2;
never a traceback for a mistake a user can make.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import importlib
import socket
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from gateway.config import Config, ConfigError, load_config

#: Modules adding subcommands: each exposes ``register(subparsers, common)``.
COMMAND_MODULES = (
    "gateway.cli.admin",  # also registers cli_tokens and cli_audit under its groups
    "gateway.cli.plugins",
    "gateway.cli.keys",
    "gateway.cli.health",
    "gateway.cli.backup",
)
"""Modules whose ``register(sub, common)`` adds their subcommands. They import
:class:`CliError` from here, so they are loaded when the parser is built; an import error
in one of them is an error of the whole CLI, never a subcommand that silently vanishes."""


class CliError(Exception):
    """A user-facing failure: printed as ``cipherdesk: <message>``, exit status 2."""


def package_version() -> str:
    try:
        return version("cipherdesk")
    except PackageNotFoundError:
        return "0+unknown"


def common_options() -> argparse.ArgumentParser:
    """Options every subcommand accepts (data dir and config file)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--config", help="TOML config file")
    parent.add_argument(
        "--data-dir", help="data directory (default ./data or $CIPHERDESK_DATA_DIR)"
    )
    return parent


def config_from(args: argparse.Namespace, **server: Any) -> Config:
    overrides: dict[str, dict[str, Any]] = {"server": {}}
    if getattr(args, "data_dir", None):
        overrides["server"]["data_dir"] = args.data_dir
    overrides["server"].update({k: v for k, v in server.items() if v is not None})
    try:
        return load_config(args.config, overrides=overrides)
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def missing_installation(config: Config) -> str | None:
    """Why ``config`` names no existing installation (None when it does): no master key
    (neither the key file in the data directory nor ``CIPHERDESK_MASTER_KEY``), or, on
    SQLite, no database file."""
    from gateway.datadir import MASTER_KEY_FILE
    from gateway.store import sqlite_path

    if not config.master_key.strip() and not (config.data_dir / MASTER_KEY_FILE).is_file():
        return "no master key"
    url = config.store_url
    if (url == "" or url.startswith("sqlite:")) and not sqlite_path(url, config.data_dir).is_file():
        return "no database"
    return None


def require_installation(config: Config) -> None:
    """Administrative commands work on an existing installation only: a mistyped
    ``--data-dir`` must not silently create a new one (a new master key and an empty
    database, with the new agent in it instead of in the real installation)."""
    reason = missing_installation(config)
    if reason is not None:
        raise CliError(
            f"{config.data_dir} holds no cipherdesk installation ({reason}); check --data-dir "
            "(or $CIPHERDESK_DATA_DIR, --config), or create one with 'cipherdesk serve'"
        )


@contextlib.asynccontextmanager
async def offline_services(config: Config) -> AsyncIterator[Any]:
    """The gateway's services without the HTTP server, for administrative commands (on an
    existing installation only, see :func:`require_installation`)."""
    from gateway.app import build_services, close_services

    require_installation(config)
    svc = await build_services(config)
    try:
        yield svc
    finally:
        await close_services(svc)


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
    from aiohttp import web

    from gateway.app import create_app
    from gateway.logs import configure_logging

    config = config_from(args, host=args.host, port=args.port)
    configure_logging(args.log_level)
    _check_port(config.server.host, config.server.port)
    if missing_installation(config) is not None:
        print(
            f"cipherdesk: creating a new installation in {config.data_dir} "
            "(new master key, empty database)",
            file=sys.stderr,
            flush=True,
        )
    app = create_app(config)
    print(_banner(config), file=sys.stderr, flush=True)
    web.run_app(
        app,
        host=config.server.host,
        port=config.server.port,
        print=None,
        access_log=None,
        shutdown_timeout=config.server.shutdown_timeout,
    )


def cmd_init(args: argparse.Namespace) -> None:
    """Create an installation without serving (scripted set-ups, containers, tests): the
    data directory, master key, signing key and database schema."""
    from gateway.app import build_services, close_services

    config = config_from(args)
    if missing_installation(config) is None:
        print(f"{config.data_dir} already holds a cipherdesk installation (nothing changed)")
        return

    async def create() -> None:
        await close_services(await build_services(config))

    asyncio.run(create())
    print(f"created a new cipherdesk installation in {config.data_dir}")


def cmd_chat_erase(args: argparse.Namespace) -> None:
    config = config_from(args)

    async def run() -> bool:
        async with offline_services(config) as svc:
            return await svc.chats.erase(args.chat_id, actor="cli")

    if not asyncio.run(run()):
        raise CliError(f"no chat {args.chat_id!r}")
    print(f"chat {args.chat_id} erased: its data key is destroyed and its transcript is unreadable")


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = argparse.ArgumentParser(prog="cipherdesk", description="secure customer-chat gateway")
    parser.add_argument("--version", action="version", version=f"cipherdesk {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the gateway")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 8080)")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
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
        from crypto.envelope import EnvelopeError
        from crypto.identity import IdentityFileError
        from gateway.http.web import WebAssetsError
        from gateway.store.migrate import SchemaTooNew

        known = EnvelopeError | IdentityFileError | ConfigError | ValueError | SchemaTooNew
        if isinstance(exc, known | WebAssetsError):
            print(f"cipherdesk: {exc}", file=sys.stderr)
            sys.exit(2)
        raise


if __name__ == "__main__":
    # Run the module's canonical copy: as __main__ this file is a second module object,
    # whose CliError would not be the class the subcommand modules raise.
    from gateway.cli.main import main as canonical_main

    canonical_main()
