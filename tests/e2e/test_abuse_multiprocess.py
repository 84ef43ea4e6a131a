"""Two real gateway processes, one rate-limit budget on Redis; Redis dies mid-test (issue 5).

Each node is ``python -m gateway.cli serve`` (``tests/e2e/procs.py``) with its own SQLite
data dir — the store is not what is tested here — and ``CIPHERDESK_RATELIMIT_URL`` pointing
at one Redis. The limits come from a TOML config file (a table cannot be set from the
environment): ``ws_connect_per_ip = "5/h"``, so no refill happens during a test.

Isolation on the shared Redis: the limiter's key prefix is not configurable, so every test
uses a fresh random loopback source address (127.x.y.z, all of 127/8 is loopback on Linux)
and deletes exactly its own keys (``cd:rl:wsc:<ip>``) before and after.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from gateway.protocol import Ack, CloseCode
from gateway.sdk.client import ClosedError
from tests.e2e.procs import PUBLIC_URL, Cluster, Node
from tests.e2e.test_abuse import (  # noqa: F401 - _bindable_sdk, loopback_aliases: fixtures
    BoundCustomer,
    _bindable_sdk,
    _retry_after,
    _sample,
    loopback_aliases,
    needs_aliases,
)
from tests.services import RedisServer, start_throwaway_redis

pytestmark = [pytest.mark.services, pytest.mark.timeout(120), needs_aliases]

CONFIG = """
[ratelimit.limits]
ws_connect_per_ip = "5/h"
concurrent_per_ip = 50
"""
KEY_PREFIX = "cd:rl:"  # RedisRateLimiter's default prefix (gateway/ratelimit/limits.py)


def random_loopback() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, ratelimit_url: str, nodes: int = 2) -> AsyncIterator[Cluster]:
    c = Cluster(tmp_path, store_url="", ratelimit_url=ratelimit_url, config_toml=CONFIG)
    try:
        await c.start(nodes)
        yield c
    finally:
        await asyncio.to_thread(c.stop)


def customer(c: Cluster, node: Node, ip: str) -> BoundCustomer:
    return BoundCustomer(
        node.url, "demo", origin=PUBLIC_URL, gateway_key=c.verify_key, source_ip=ip
    )


async def try_connect(c: Cluster, node: Node, ip: str) -> ClosedError | None:
    """One connect from ``ip`` to ``node``: None when admitted (then closed again)."""
    client = customer(c, node, ip)
    try:
        await client.connect()
    except ClosedError as exc:
        return exc
    await client.aclose()
    return None


async def scrape(node: Node) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{node.url}/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


@contextlib.asynccontextmanager
async def own_keys(redis_url: str, *ips: str) -> AsyncIterator[None]:
    keys = [f"{KEY_PREFIX}wsc:{ip}" for ip in ips]
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.delete(*keys)
        yield
    finally:
        with contextlib.suppress(Exception):
            await client.delete(*keys)
        await client.aclose()


def no_errors_logged(c: Cluster) -> None:
    for node in c.nodes:
        log = node.log_path.read_text(errors="replace")
        for bad in ("Traceback", "ws_internal_error", "http_internal_error"):
            assert bad not in log, f"{node.name} logged {bad}:\n{node.log_tail()}"


async def test_two_processes_share_one_connect_budget(tmp_path: Path, redis_url: str) -> None:
    ip = random_loopback()
    async with own_keys(redis_url, ip), cluster(tmp_path, redis_url) as c:
        a, b = c.nodes
        outcomes = [await try_connect(c, (a, b)[i % 2], ip) for i in range(10)]
        admitted = [o is None for o in outcomes]
        assert admitted == [True] * 5 + [False] * 5, outcomes
        for refusal in outcomes[5:]:
            assert refusal is not None and refusal.code == CloseCode.RATE_LIMITED
            assert 1 <= _retry_after(refusal.reason) <= 720
        # the refusals were decided on both nodes, by the shared budget
        for node, refused in ((a, 2), (b, 3)):  # attempts 6..10 alternate B, A, B, A, B
            metrics = await scrape(node)
            assert _sample(metrics, "cipherdesk_rate_limited_total", scope="ws_connect") == refused
            assert _sample(metrics, "cipherdesk_ratelimit_degraded") == 0
        # another address is not affected
        other = random_loopback()
        async with own_keys(redis_url, other):
            assert await try_connect(c, a, other) is None
        no_errors_logged(c)


@contextlib.contextmanager
def throwaway_redis() -> Iterator[RedisServer]:
    server = start_throwaway_redis()
    try:
        yield server
    finally:
        stop_redis(server)


def start_redis_on(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_redis(server: RedisServer) -> None:
    if server.proc is not None and server.proc.poll() is None:
        server.proc.terminate()
        server.proc.wait(10)


async def honest_chat(c: Cluster, node: Node, ip: str) -> None:
    client = customer(c, node, ip)
    await client.connect()
    welcome = await client.open(profile={"name": "Honest"})
    assert welcome.chat
    assert isinstance(await client.send_text("hello, is anyone there?"), Ack)
    await client.aclose()


async def test_redis_outage_degrades_to_local_limits(tmp_path: Path) -> None:
    with throwaway_redis() as redis_srv:
        async with cluster(tmp_path, redis_srv.url) as c:
            a, b = c.nodes
            shared_ip, honest_ip, flood_ip = (random_loopback() for _ in range(3))
            # shared while Redis is up: 3 on A + 2 on B spend the budget of 5
            for node in (a, a, a, b, b):
                assert await try_connect(c, node, shared_ip) is None
            refused = await try_connect(c, a, shared_ip)
            assert refused is not None and refused.code == CloseCode.RATE_LIMITED

            stop_redis(redis_srv)  # mid-test: the limiter's Redis is gone

            # honest clients keep being served on both nodes, without errors
            for node in (a, b):
                await honest_chat(c, node, honest_ip)
            # a flood is still limited, by each node on its own (N nodes: N x the budget)
            for node in (a, b):
                outcomes = [await try_connect(c, node, flood_ip) for _ in range(8)]
                assert [o is None for o in outcomes] == [True] * 5 + [False] * 3, outcomes
                for refusal in outcomes[5:]:
                    assert refusal is not None and refusal.code == CloseCode.RATE_LIMITED
            for node in (a, b):
                metrics = await scrape(node)
                assert _sample(metrics, "cipherdesk_ratelimit_degraded") == 1, node.name
                errors = _sample(metrics, "cipherdesk_ratelimit_backend_errors_total")
                assert errors is not None and errors >= 1
                log = node.log_path.read_text(errors="replace")
                assert "ratelimit.redis_unavailable" in log
            no_errors_logged(c)

            # Redis comes back on the same port: after the retry interval (5 s) the nodes
            # use it again
            revived = start_redis_on(redis_srv.port)
            try:
                await asyncio.sleep(5.5)
                for node in (a, b):
                    await honest_chat(c, node, honest_ip)
                    metrics = await scrape(node)
                    assert _sample(metrics, "cipherdesk_ratelimit_degraded") == 0, node.name
                no_errors_logged(c)
            finally:
                stop_redis(RedisServer(redis_srv.port, revived))
