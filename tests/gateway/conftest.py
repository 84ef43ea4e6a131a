"""Fixtures of the gateway unit tests: the real services (no HTTP), on both store backends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.app import build_services, close_services
from gateway.config import Config, load_config
from gateway.services import Services
from tests.gateway.helpers import FakeClock


def service_config(data_dir: Path, store_url: str) -> Config:
    return load_config(
        None,
        environ={},
        overrides={
            "server": {"host": "127.0.0.1", "port": 8080, "data_dir": str(data_dir)},
            "store": {"url": store_url},
        },
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def service_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/cipherdesk.db"
    return request.getfixturevalue("postgres_dsn")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def _build(
    count: int, data_dir: Path, store_url: str, clock: FakeClock
) -> AsyncIterator[list[Services]]:
    built: list[Services] = []
    try:
        for _ in range(count):
            built.append(await build_services(service_config(data_dir, store_url), clock))
        yield built
    finally:
        for svc in built:
            await close_services(svc)


@pytest.fixture
async def nodes(
    service_store_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[list[Services]]:
    """Two gateway nodes' services on one database (each with its own bus and caches),
    sharing the test's clock. Nothing listens on a socket."""
    async for built in _build(2, tmp_path / "data", service_store_url, clock):
        yield built


@pytest.fixture
async def svc(service_store_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Services]:
    """One node's services (see ``nodes``)."""
    async for built in _build(1, tmp_path / "data", service_store_url, clock):
        yield built[0]
