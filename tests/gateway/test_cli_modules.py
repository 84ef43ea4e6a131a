"""Every subcommand module is wired in, and a broken one breaks the CLI loudly."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from gateway.cli import main as cli

CLI_DIR = Path(cli.__file__).parent
NOT_SUBCOMMANDS = {"__init__", "__main__", "main", "common"}


def test_every_module_with_subcommands_is_registered() -> None:
    """A module of ``gateway/cli/`` that defines ``register`` is reachable from the parser, either
    directly (``COMMAND_MODULES``) or through a module that registers it under a group."""
    registered = set(cli.COMMAND_MODULES)
    sources = {p.stem: p.read_text() for p in CLI_DIR.glob("*.py") if p.stem not in NOT_SUBCOMMANDS}
    assert {"admin", "plugins", "keys", "health", "backup", "tokens", "audit"} <= set(sources)
    for stem, text in sources.items():
        if not re.search(r"^def register\w*\(", text, re.M):
            continue
        name = f"gateway.cli.{stem}"
        via = [
            m
            for m in registered
            if re.search(rf"from {re.escape(name)} import register", sources[m.split(".")[2]])
        ]
        assert name in registered or via, f"{name} defines register() but is never registered"


def test_a_subcommand_module_that_fails_to_import_fails_the_cli(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The old loader swallowed ModuleNotFoundError: a subcommand whose dependency was
    missing simply disappeared from ``cipherdesk --help``."""
    real_import = importlib.import_module

    def broken(name: str, package: str | None = None):  # type: ignore[no-untyped-def]
        if name == "gateway.cli.backup":
            raise ModuleNotFoundError("No module named 'some_dependency'")
        return real_import(name, package)

    monkeypatch.setattr(cli.importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError):
        cli.build_parser()


def test_all_top_level_commands_are_present() -> None:
    parser = cli.build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    assert {"serve", "chat", "agent", "plugins", "keys", "health", "backup"} <= set(choices)
