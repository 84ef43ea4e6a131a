"""Fixtures of the store suite: every test runs against SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.store import Store, open_store, sqlite_path


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)],
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/cipherdesk.db"
    return request.getfixturevalue("postgres_dsn")


@pytest.fixture
def backend(store_url: str) -> str:
    return "sqlite" if store_url.startswith("sqlite:") else "postgresql"


@pytest.fixture
async def store(store_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    s = open_store(store_url, tmp_path)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def second_store(store_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    """Another store on the same database: a second gateway node."""
    s = open_store(store_url, tmp_path)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


class RawSQL:
    """Plain SQL against the store's database, bypassing the store (no parameters)."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.url = url
        self.data_dir = data_dir

    async def execute(self, sql: str) -> None:
        if self.url.startswith("sqlite:"):
            conn = sqlite3.connect(sqlite_path(self.url, self.data_dir), isolation_level=None)
            try:
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute(sql)
            finally:
                conn.close()
            return
        pg = await asyncpg.connect(self.url)
        try:
            await pg.execute(sql)
        finally:
            await pg.close()

    async def fetch(self, sql: str) -> list[tuple[Any, ...]]:
        if self.url.startswith("sqlite:"):
            conn = sqlite3.connect(sqlite_path(self.url, self.data_dir))
            try:
                return [tuple(r) for r in conn.execute(sql).fetchall()]
            finally:
                conn.close()
        pg = await asyncpg.connect(self.url)
        try:
            return [tuple(r) for r in await pg.fetch(sql)]
        finally:
            await pg.close()


@pytest.fixture
def raw(store_url: str, tmp_path: Path) -> RawSQL:
    return RawSQL(store_url, tmp_path)
