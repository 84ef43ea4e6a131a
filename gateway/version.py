"""The installed package's version, as the CLI, health probes and the API contract report it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    """The version of the installed ``cipherdesk`` distribution (``0+unknown`` when run
    from a tree that was never installed)."""
    try:
        return version("cipherdesk")
    except PackageNotFoundError:
        return "0+unknown"
