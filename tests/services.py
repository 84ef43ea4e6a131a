"""Real PostgreSQL and Redis for the tests.

Policy (see README, "Tests"): use the server on the standard local port when one answers;
otherwise start a throwaway server from the installed binaries; otherwise fail when
``CI`` is set (a missing service must never pass silently in CI) and skip elsewhere.
Set ``CIPHERDESK_TEST_THROWAWAY=1`` to force throwaway servers even when local ones run.

:func:`unavailable` is the suite's one skip policy, for every prerequisite (services,
Chromium, Playwright, loopback aliases, console scripts, tools): every test that cannot
run calls it, and tests/conftest.py turns any other skip into a failure under ``CI``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest


def ci_truthy(value: str | None) -> bool:
    """``CI`` is set to anything but an empty/false-like value (CI=true, CI=1, CI=yes...)."""
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


IN_CI = ci_truthy(os.environ.get("CI"))
FORCE_THROWAWAY = os.environ.get("CIPHERDESK_TEST_THROWAWAY") == "1"


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unavailable(message: str) -> NoReturn:
    """A prerequisite of the test is missing: skip locally, fail when ``CI`` is set
    (a test that cannot run must never let a CI run pass silently)."""
    if IN_CI:
        pytest.fail(f"{message} (CI is set: a missing prerequisite is a failure)")
    pytest.skip(message)


def _unavailable(what: str) -> NoReturn:
    unavailable(f"{what} is not available: no local server and no binaries to start one")


def wait_for_port(port: int, proc: subprocess.Popen | None, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open("127.0.0.1", port):
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"throwaway {what} did not start on port {port}")


class RedisServer:
    """A Redis server the tests may use; ``url`` points at a database of its own."""

    def __init__(self, port: int, proc: subprocess.Popen | None) -> None:
        self.port = port
        self.proc = proc
        self.url = f"redis://127.0.0.1:{port}/0"

    @property
    def throwaway(self) -> bool:
        return self.proc is not None


def run_redis(port: int) -> subprocess.Popen:
    """A Redis server on ``port`` keeping nothing on disk (also a drill's restart)."""
    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable("Redis")
    return subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_throwaway_redis() -> RedisServer:
    port = free_port()
    proc = run_redis(port)
    wait_for_port(port, proc, "Redis")
    return RedisServer(port, proc)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    if not FORCE_THROWAWAY and port_open("127.0.0.1", 6379):
        yield RedisServer(6379, None)
        return
    server = start_throwaway_redis()
    try:
        yield server
    finally:
        assert server.proc is not None
        server.proc.terminate()
        server.proc.wait(10)


class PostgresServer:
    """A PostgreSQL server the tests may use, reachable over TCP on 127.0.0.1."""

    def __init__(self, port: int, user: str, cleanup: list) -> None:
        self.port = port
        self.user = user
        self._cleanup = cleanup

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """Create a fresh, uniquely named database and return its DSN."""
        name = "cd_test_" + uuid.uuid4().hex[:12]
        self._psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def drop_database(self, dsn: str) -> None:
        name = dsn.rsplit("/", 1)[1]
        self._psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _psql(self, sql: str) -> None:
        subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-qc",
                sql,
            ],
            check=True,
            capture_output=True,
        )


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def run_postgres(workdir: Path, port: int) -> subprocess.Popen:
    """Start the throwaway server of ``workdir`` (made by :func:`start_throwaway_postgres`)
    on ``port``: also how a drill restarts it on the same data and port."""
    postgres = _pg_bin("postgres")
    assert postgres is not None
    run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.Popen(
        [
            *run_as,
            postgres,
            "-D",
            str(workdir / "data"),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(workdir),
            "-F",
            "-c",
            "fsync=off",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_throwaway_postgres() -> tuple[PostgresServer, subprocess.Popen, Path]:
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if initdb is None or postgres is None or shutil.which("psql") is None:
        _unavailable("PostgreSQL")
    workdir = Path(tempfile.mkdtemp(prefix="cd-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(workdir, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    datadir = workdir / "data"
    subprocess.run(
        [*run_as, initdb, "-D", str(datadir), "-U", "postgres", "-A", "trust", "--no-sync"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    proc = run_postgres(workdir, port)
    wait_for_port(port, proc, "PostgreSQL", seconds=30)
    time.sleep(0.3)
    return PostgresServer(port, "postgres", []), proc, workdir


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    if not FORCE_THROWAWAY and port_open("127.0.0.1", 5432):
        yield PostgresServer(5432, "postgres", [])
        return
    server, proc, workdir = start_throwaway_postgres()
    try:
        yield server
    finally:
        proc.terminate()
        proc.wait(15)
        shutil.rmtree(workdir, ignore_errors=True)
