"""Liveness (/healthz) vs readiness (/readyz) against a real gateway on a real socket."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gateway.store.migrate import latest_version
from tests.gateway.helpers import start_gateway
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]


async def _get(base: str, path: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.get(base + path) as resp:
        return resp.status, await resp.json()


async def test_ready_gateway_answers_200_with_every_check(tmp_path: Path) -> None:
    runner, base, _svc = await start_gateway(tmp_path)
    try:
        status, body = await _get(base, "/healthz")
        assert status == 200 and body["ok"] is True and body["status"] == "alive"
        status, body = await _get(base, "/readyz")
        assert status == 200, body
        assert body["ready"] is True
        assert set(body["checks"]) == {"store", "migrations", "bus", "keyring", "draining"}
        assert all(c["ok"] for c in body["checks"].values())
        assert body["schema"] == latest_version("sqlite")
    finally:
        await runner.cleanup()


async def test_store_down_is_not_ready_but_still_alive(tmp_path: Path) -> None:
    runner, base, svc = await start_gateway(tmp_path)
    try:
        await svc.store.close()
        status, body = await _get(base, "/readyz")
        assert status == 503
        assert body["ready"] is False
        assert body["checks"]["store"] == {
            "ok": False,
            "ms": body["checks"]["store"]["ms"],
            "reason": "unavailable",
        }
        assert body["checks"]["migrations"]["reason"] == "store_unavailable"
        assert body["checks"]["keyring"]["ok"] is True
        assert str(tmp_path) not in str(body)  # never a server path
        # liveness does not depend on the store: an orchestrator must not restart the node
        status, body = await _get(base, "/healthz")
        assert status == 200 and body["ok"] is True
    finally:
        await runner.cleanup()


async def test_pending_migration_is_not_ready(tmp_path: Path) -> None:
    runner, base, _svc = await start_gateway(tmp_path)
    try:
        conn = sqlite3.connect(tmp_path / "data" / "cipherdesk.db", isolation_level=None)
        try:
            conn.execute(
                "DELETE FROM schema_version WHERE version = ?", (latest_version("sqlite"),)
            )
        finally:
            conn.close()
        status, body = await _get(base, "/readyz")
        assert status == 503
        assert body["checks"]["migrations"] == {"ok": False, "ms": 0.0, "reason": "pending"}
        assert body["checks"]["store"]["ok"] is True
    finally:
        await runner.cleanup()


async def test_shutdown_flips_readiness_before_sockets_close(tmp_path: Path) -> None:
    runner, base, _svc = await start_gateway(tmp_path)
    try:
        app = runner.app
        await app.on_shutdown.send(app)  # what SIGTERM triggers first
        status, body = await _get(base, "/readyz")
        assert status == 503
        assert body["checks"]["draining"] == {"ok": False, "ms": 0.0, "reason": "shutting_down"}
    finally:
        await runner.cleanup()


class _TcpProxy:
    """A loopback TCP proxy we can cut: Redis 'goes away' for the gateway only."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.server: asyncio.base_events.Server | None = None
        self.pipes: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.pipes |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for pipe in list(self.pipes):
            pipe.close()
        self.pipes.clear()


@pytest.fixture
async def redis_proxy(redis_url: str) -> AsyncIterator[_TcpProxy]:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    proxy = _TcpProxy(port)
    await proxy.start()
    yield proxy
    await proxy.cut()


@pytest.mark.services
async def test_bus_loss_is_not_ready(
    tmp_path: Path, redis_proxy: _TcpProxy, redis_prefix: str
) -> None:
    bus_url = f"redis://127.0.0.1:{redis_proxy.port}/0?prefix={redis_prefix}"
    runner, base, _svc = await start_gateway(tmp_path, bus={"url": bus_url})
    try:
        status, body = await _get(base, "/readyz")
        assert status == 200, body
        await redis_proxy.cut()
        for _ in range(100):  # the bus notices the dropped connection (event, not timer)
            status, body = await _get(base, "/readyz")
            if status == 503:
                break
            await asyncio.sleep(0.05)
        assert status == 503
        assert body["checks"]["bus"]["reason"] == "disconnected"
        assert body["checks"]["store"]["ok"] is True
    finally:
        await runner.cleanup()


async def test_cli_health_probe_exit_status(tmp_path: Path) -> None:
    runner, base, svc = await start_gateway(tmp_path)

    async def cli(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli",
            "health",
            *args,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return proc.returncode or 0, out.decode()

    try:
        code, out = await cli("--ready", "--url", base)
        assert code == 0, out
        await svc.store.close()
        code, out = await cli("--ready", "--url", base)
        assert code == 2
        assert "failing: migrations, store" in out
        code, out = await cli("--url", base)  # liveness still fine
        assert code == 0, out
    finally:
        await runner.cleanup()
