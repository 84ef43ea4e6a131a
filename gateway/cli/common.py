"""What every ``cipherdesk`` subcommand module shares: the error type, common options,
loading the configuration, and the gateway's services for offline administration.

Kept apart from :mod:`gateway.cli.main` (which loads the subcommand modules) so the
subcommand modules import it at the top, with no import cycle to hide.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from gateway.app import build_services, close_services
from gateway.config import Config, ConfigError, load_config
from gateway.datadir import MASTER_KEY_FILE
from gateway.services import Services
from gateway.store import sqlite_path


class CliError(Exception):
    """A user-facing failure: printed as ``cipherdesk: <message>``, exit status 2."""


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
async def offline_services(config: Config) -> AsyncIterator[Services]:
    """The gateway's services without the HTTP server, for administrative commands (on an
    existing installation only, see :func:`require_installation`)."""

    require_installation(config)
    svc = await build_services(config)
    try:
        yield svc
    finally:
        await close_services(svc)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Rows as a plain-text table with a header rule (``agent list``, ``plugins list``)."""
    cells = [[str(h) for h in headers]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(v.ljust(widths[i]) for i, v in enumerate(row)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
