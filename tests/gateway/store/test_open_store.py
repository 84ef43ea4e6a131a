"""``open_store``: URL → engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.store import open_store, sqlite_path
from gateway.store.postgres import PostgresStore
from gateway.store.sqlite import SqliteStore


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", "/data/cipherdesk.db"),
        ("sqlite://", "/data/cipherdesk.db"),
        ("sqlite:///", "/data/cipherdesk.db"),
        ("sqlite:///var/lib/cd/store.db", "/var/lib/cd/store.db"),
        ("sqlite://store.db", "/data/store.db"),
        ("sqlite://sub/dir/store.db", "/data/sub/dir/store.db"),
    ],
)
def test_sqlite_urls(url: str, expected: str) -> None:
    store = open_store(url, Path("/data"))
    assert isinstance(store, SqliteStore)
    assert store.path == Path(expected)
    assert sqlite_path(url, Path("/data")) == Path(expected)


@pytest.mark.parametrize(
    "url", ["postgresql://cd@db:5432/cipherdesk", "postgres://cd:pw@localhost/cd?sslmode=require"]
)
def test_postgres_urls(url: str) -> None:
    store = open_store(url, Path("/data"))
    assert isinstance(store, PostgresStore)
    assert store.dsn == url


@pytest.mark.parametrize(
    "url",
    [
        "mysql://root@localhost/cd",
        "redis://localhost",
        "/var/lib/cd/store.db",
        "sqlite:/relative.db",
        "sqlite:///:memory:",
        "sqlite://:memory:",
        "sqlite:///var/lib/",
        "sqlite:///x.db?mode=ro",
    ],
)
def test_rejected_urls(url: str) -> None:
    with pytest.raises(ValueError, match=r"sqlite|scheme|URL"):
        open_store(url, Path("/data"))


def test_both_engines_satisfy_the_protocol(tmp_path: Path) -> None:
    from gateway.store import Store

    assert isinstance(SqliteStore(tmp_path / "x.db"), Store)
    assert isinstance(PostgresStore("postgresql://localhost/x"), Store)
