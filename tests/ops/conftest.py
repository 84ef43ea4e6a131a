"""Fixtures of the operations suite: store URLs for both engines."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each engine (PostgreSQL: dropped after the test)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/data/cipherdesk.db"
    return request.getfixturevalue("postgres_dsn")
