"""Shared fixtures: real services (see tests/services.py)."""

from __future__ import annotations

import gc
import threading
import uuid
from collections.abc import Iterator

import aiosqlite
import pytest
from hypothesis import HealthCheck, settings

from tests.services import IN_CI, PostgresServer, RedisServer, postgres_server, redis_server

# Property tests here are CPU-bound (policy engine, crypto): on a loaded 2-core machine a
# per-example deadline measures the machine, not the code. No deadlines, no "too slow".
settings.register_profile("cipherdesk", deadline=None, suppress_health_check=[HealthCheck.too_slow])
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


def _sqlite_worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A gateway left running (a fixture that failed after ``start_gateway``, before its
    clean-up) keeps aiosqlite's non-daemon worker threads alive, and the interpreter would
    wait for them forever after pytest's summary: a red run would hang until CI's time
    limit instead of reporting. Stop such connections here and say how many there were."""
    if not _sqlite_worker_threads():
        return
    leaked = [obj for obj in gc.get_objects() if isinstance(obj, aiosqlite.Connection)]
    for connection in leaked:
        connection.stop()
    for thread in _sqlite_worker_threads():
        thread.join(timeout=5)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write("\n")
        reporter.write_line(
            f"stopped {len(leaked)} SQLite connection(s) a test left open "
            "(a gateway that was never cleaned up)",
            yellow=True,
        )


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
