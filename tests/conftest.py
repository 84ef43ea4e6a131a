"""Shared fixtures: real services (see tests/services.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

from tests.services import IN_CI, PostgresServer, RedisServer, postgres_server, redis_server

# Property tests here are CPU-bound (policy engine, crypto): on a loaded 2-core machine a
# per-example deadline measures the machine, not the code. No deadlines, no "too slow".
settings.register_profile(
    "cipherdesk", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("cipherdesk")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Under ``CI`` a skip is a failure, whatever raised it (a ``skipif`` marker, an
    ``importorskip``, a ``pytest.skip`` that bypassed ``tests.services.unavailable``):
    a run with skipped tests has not shown that the product works."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI (CI is set, skips are failures): {reason}"


@pytest.fixture(scope="session")
def redis_service() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def redis_url(redis_service: RedisServer) -> str:
    """URL of a real Redis; tests must namespace keys with ``redis_prefix``."""
    return redis_service.url


@pytest.fixture
def redis_prefix() -> str:
    return f"cdtest:{uuid.uuid4().hex[:10]}:"


@pytest.fixture(scope="session")
def postgres_service() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_dsn(postgres_service: PostgresServer) -> Iterator[str]:
    """DSN of a fresh PostgreSQL database, dropped after the test."""
    dsn = postgres_service.create_database()
    try:
        yield dsn
    finally:
        postgres_service.drop_database(dsn)
