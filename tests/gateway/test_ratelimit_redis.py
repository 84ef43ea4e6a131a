"""The Redis rate limiter against real Redis servers (no mocks).

- decisions match the in-memory limiter exactly for the same clock;
- two OS processes on one Redis share one budget exactly;
- a Redis that dies mid-test degrades to local limits (still limiting, counted, logged
  once, nothing raised) and is used again once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from gateway.metrics import Metrics
from gateway.protocol import Ack, Notice
from gateway.ratelimit.limits import (
    Decision,
    MemoryRateLimiter,
    Rate,
    RateLimiter,
    RedisRateLimiter,
)
from tests.services import RedisServer, run_redis, start_throwaway_redis, wait_for_port

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parents[2]


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
async def client(redis_url: str, redis_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        keys = [k async for k in client.scan_iter(match=redis_prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
def throwaway() -> Iterator[RedisServer]:
    """A private Redis this test may kill; never the shared one."""
    server = start_throwaway_redis()
    procs = [server.proc]
    server.procs = procs  # type: ignore[attr-defined]  # restarts are appended here
    try:
        yield server
    finally:
        for proc in procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(10)


def restart_on_same_port(server: RedisServer) -> None:
    proc = run_redis(server.port)
    server.procs.append(proc)  # type: ignore[attr-defined]
    wait_for_port(server.port, proc, "Redis")


# --------------------------------------------------------------------------- decisions


async def test_redis_limiter_burst_then_exact_retry_after(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    clock = FakeClock()
    limiter = RedisRateLimiter(client, prefix=redis_prefix, clock=clock)
    assert isinstance(limiter, RateLimiter)
    rate = Rate(20, 10.0)
    for expected_remaining in range(19, -1, -1):
        assert await limiter.hit("ip", rate) == Decision(True, 0.0, expected_remaining)
    assert await limiter.hit("ip", rate) == Decision(False, 0.5, 0)
    clock.advance(0.25)
    assert await limiter.hit("ip", rate) == Decision(False, 0.25, 0)
    clock.advance(0.25)
    assert await limiter.hit("ip", rate) == Decision(True, 0.0, 0)
    assert not limiter.degraded

    # the key expires when its state stops mattering (10.5 s ahead of the fake clock)
    ttl = await client.pttl(redis_prefix + "ip")
    assert 0 < ttl <= 10_501

    await limiter.reset("ip")
    assert await client.exists(redis_prefix + "ip") == 0
    assert await limiter.hit("ip", rate) == Decision(True, 0.0, 19)


async def test_redis_matches_memory_decision_for_decision(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    clock = FakeClock(50_000.0)
    memory = MemoryRateLimiter(clock=clock)
    remote = RedisRateLimiter(client, prefix=redis_prefix, clock=clock)
    rates = [Rate(20, 10.0), Rate.parse("3/s"), Rate(1024, 1.0, 4096), Rate.parse("5/m")]
    rng = random.Random(5)
    outcomes: set[bool] = set()
    for step in range(600):
        clock.advance(rng.choice([0.0, 0.0, 0.001, 0.1, 1 / 3, 0.5, 2.0]))
        rate = rng.choice(rates)
        key = f"{rate}:{rng.randrange(3)}"
        cost = rng.randrange(1, 1500) if rate.burst == 4096 else rng.choice([0, 1, 1, 1, 2])
        expected = memory.hit_now(key, rate, cost)
        got = await remote.hit(key, rate, cost)
        assert got == expected, (step, key, cost)  # bit-identical floats
        outcomes.add(got.allowed)
    assert outcomes == {True, False}
    assert not remote.degraded


async def test_redis_limiter_key_isolation_and_cost(
    client: aioredis.Redis, redis_prefix: str
) -> None:
    clock = FakeClock()
    limiter = RedisRateLimiter(client, prefix=redis_prefix, clock=clock)
    bytes_rate = Rate(1024, 1.0, burst=4096)
    assert await limiter.hit("conn:a", bytes_rate, cost=3072) == Decision(True, 0.0, 1024)
    assert await limiter.hit("conn:a", bytes_rate, cost=1500) == Decision(False, 476 / 1024, 1024)
    assert await limiter.hit("conn:b", bytes_rate, cost=4096) == Decision(True, 0.0, 0)
    assert await limiter.hit("conn:a", bytes_rate, cost=5000) == Decision(False, float("inf"), 0)
    assert await limiter.hit("conn:a", bytes_rate, cost=0) == Decision(True, 0.0, 1024)


async def test_redis_server_clock_is_the_default(client: aioredis.Redis, redis_prefix: str) -> None:
    """Without a test clock the script reads Redis TIME: node clocks play no part."""
    limiter = RedisRateLimiter(client, prefix=redis_prefix)
    rate = Rate(3, 3600.0)
    assert [(await limiter.hit("k", rate)).allowed for _ in range(4)] == [True, True, True, False]
    refused = await limiter.hit("k", rate)
    assert not refused.allowed
    assert 1199.0 < refused.retry_after <= 1200.0  # 3600/3 s minus the elapsed instant
    assert 0 < await client.pttl(redis_prefix + "k") <= 3_600_001


async def test_one_evalsha_round_trip_per_decision(throwaway: RedisServer) -> None:
    limiter = RedisRateLimiter.from_url(throwaway.url, prefix="cd:rl:")
    admin = aioredis.Redis.from_url(throwaway.url, decode_responses=True)
    try:
        await limiter.hit("warm", Rate(5, 1.0))  # first call loads the script
        await admin.config_resetstat()
        for i in range(25):
            await limiter.hit(f"k{i % 3}", Rate(5, 1.0))
        stats = await admin.info("commandstats")
        assert stats["cmdstat_evalsha"]["calls"] == 25
        assert "cmdstat_script" not in stats
        assert "cmdstat_eval" not in stats
    finally:
        await admin.aclose()
        await limiter.aclose()


async def test_concurrent_decisions_share_one_call_and_spend_in_order(
    throwaway: RedisServer,
) -> None:
    """Decisions asked for while a call is on the wire leave together in the next one (group
    commit): 60 connections asking at once cost one EVALSHA, not 60, and the budget is spent
    in the order they asked, exactly as one-by-one calls would."""
    limiter = RedisRateLimiter.from_url(throwaway.url, prefix="cd:rl:")
    admin = aioredis.Redis.from_url(throwaway.url, decode_responses=True)
    try:
        await limiter.hit("warm", Rate(5, 1.0))  # first call loads the script
        await admin.config_resetstat()
        rate = Rate(5, 3600.0)
        decisions = await asyncio.gather(*(limiter.hit("shared", rate) for _ in range(60)))
        stats = await admin.info("commandstats")
        assert stats["cmdstat_evalsha"]["calls"] == 1
        assert [d.allowed for d in decisions] == [True] * 5 + [False] * 55
        assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
        # Past MAX_HITS_PER_CALL the queue leaves in several calls; one caller's hits
        # (a hit_many) are never split between two calls.
        await admin.config_resetstat()
        many = await asyncio.gather(
            *(limiter.hit_many([(f"a{i}", rate, "x"), (f"b{i}", rate, "y")]) for i in range(200))
        )
        stats = await admin.info("commandstats")
        assert stats["cmdstat_evalsha"]["calls"] == 2  # 128 callers (256 hits), then 72
        assert all(d.allowed and d.remaining == 4 for pair in many for d in pair)
    finally:
        await admin.aclose()
        await limiter.aclose()


async def test_a_caller_that_goes_away_does_not_stall_the_others(
    throwaway: RedisServer,
) -> None:
    """A connection closed while its decision is on the wire (its task cancelled) leaves the
    batch's other callers their answers, and the limiter keeps deciding."""
    limiter = RedisRateLimiter.from_url(throwaway.url, prefix="cd:rl:")
    try:
        rate = Rate(100, 60.0)
        gone = asyncio.ensure_future(limiter.hit("gone", rate))
        staying = asyncio.ensure_future(limiter.hit("staying", rate))
        await asyncio.sleep(0)  # both queued, the call not answered yet
        gone.cancel()
        assert (await staying).allowed
        assert gone.cancelled()
        assert (await limiter.hit("after", rate)).allowed
        assert not limiter.degraded
    finally:
        await limiter.aclose()


async def test_a_failed_call_decides_every_waiting_caller_locally() -> None:
    """Redis dying with decisions queued: each caller gets a local decision (never an error,
    never "allowed" for free), the outage counts once per failed call."""
    server = start_throwaway_redis()
    metrics = Metrics()
    limiter = RedisRateLimiter.from_url(server.url, metrics=metrics, retry_interval=60.0)
    try:
        await limiter.hit("warm", Rate(5, 1.0))
        assert server.proc is not None
        server.proc.terminate()
        server.proc.wait(10)
        rate = Rate(2, 60.0)
        with capture_logs() as logs:
            decisions = await asyncio.gather(*(limiter.hit("k", rate) for _ in range(5)))
        assert [d.allowed for d in decisions] == [True, True, False, False, False]
        assert limiter.degraded
        assert metrics.value("cipherdesk_ratelimit_backend_errors_total") == 1
        assert [e["event"] for e in logs] == ["ratelimit.redis_unavailable"]
    finally:
        await limiter.aclose()


# --------------------------------------------------------------------------- two processes


_WORKER = """
import asyncio, json, sys
from gateway.ratelimit.limits import Rate, RedisRateLimiter

async def main(url, prefix):
    limiter = RedisRateLimiter.from_url(url, prefix=prefix)
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    sys.stdin.readline()  # start together with the other process
    rate = Rate(50, 86400.0)  # refills one unit per 28.8 minutes: none during the test
    async def burst():
        return [(await limiter.hit("shared", rate, scope="test")).allowed for _ in range(20)]
    results = await asyncio.gather(*(burst() for _ in range(5)))
    print(json.dumps({"allowed": sum(map(sum, results)), "degraded": limiter.degraded,
                      "hits": sum(map(len, results))}))
    await limiter.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def test_two_processes_share_one_budget(redis_url: str, redis_prefix: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, redis_url, redis_prefix],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [json.loads(proc.communicate(timeout=60)[0]) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert [proc.returncode for proc in procs] == [0, 0]
    assert [o["hits"] for o in outputs] == [100, 100]
    assert not any(o["degraded"] for o in outputs)
    assert sum(o["allowed"] for o in outputs) == 50  # exactly one budget, not two
    asyncio.run(_cleanup(redis_url, redis_prefix))


async def _cleanup(url: str, prefix: str) -> None:
    client = aioredis.Redis.from_url(url)
    await client.delete(prefix + "shared")
    await client.aclose()


# --------------------------------------------------------------------------- outage


async def test_redis_down_degrades_to_local_limits_and_recovers(
    throwaway: RedisServer,
) -> None:
    clock = FakeClock()
    metrics = Metrics()
    limiter = RedisRateLimiter.from_url(
        throwaway.url, prefix="cd:rl:", clock=clock, retry_interval=5.0, metrics=metrics
    )
    admin = aioredis.Redis.from_url(throwaway.url)
    rate = Rate(5, 10.0)
    errors = "cipherdesk_ratelimit_backend_errors_total"
    try:
        assert await limiter.hit("ip", rate) == Decision(True, 0.0, 4)
        assert await admin.exists("cd:rl:ip") == 1

        throwaway.proc.kill()  # Redis dies mid-test
        throwaway.proc.wait(10)

        with capture_logs() as logs:
            decisions = [await limiter.hit("ip", rate, scope="ws_connect") for _ in range(7)]
        # the fresh local fallback still limits: 5 allowed, then refused with retry-after
        assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
        assert decisions[-1] == Decision(False, 2.0, 0)
        assert limiter.degraded
        assert metrics.value(errors) == 1  # Redis is not retried on every hit
        assert metrics.value("cipherdesk_ratelimit_degraded") == 1
        assert metrics.value("cipherdesk_rate_limited_total", {"scope": "ws_connect"}) == 2
        assert [e["event"] for e in logs] == ["ratelimit.redis_unavailable"]
        assert logs[0]["log_level"] == "warning"

        clock.advance(5.0)  # retry interval passed, Redis still down: one more error, no log
        with capture_logs() as logs:
            # 5 s = 2.5 intervals refilled: two more hits, then 1 s to wait
            assert await limiter.hit("ip", rate) == Decision(True, 0.0, 1)
            assert await limiter.hit("ip", rate) == Decision(True, 0.0, 0)
            assert await limiter.hit("ip", rate) == Decision(False, 1.0, 0)
        assert logs == []
        assert metrics.value(errors) == 2
        await limiter.reset("other")  # cleanup calls do not raise either

        restart_on_same_port(throwaway)
        await admin.aclose()
        admin = aioredis.Redis.from_url(throwaway.url)
        clock.advance(5.0)
        with capture_logs() as logs:
            # a fresh Redis: full budget again, and the state lives in Redis
            assert await limiter.hit("ip", rate) == Decision(True, 0.0, 4)
        assert await admin.exists("cd:rl:ip") == 1
        assert not limiter.degraded
        assert metrics.value("cipherdesk_ratelimit_degraded") == 0
        assert [e["event"] for e in logs] == ["ratelimit.redis_recovered"]
        assert metrics.value(errors) == 3  # the reset() above failed too; no new errors
    finally:
        await admin.aclose()
        await limiter.aclose()


async def test_unreachable_redis_from_the_start_never_raises() -> None:
    from tests.services import free_port

    metrics = Metrics()
    limiter = RedisRateLimiter.from_url(
        f"redis://127.0.0.1:{free_port()}/0", clock=FakeClock(), metrics=metrics
    )
    rate = Rate(2, 60.0)
    with capture_logs():
        got = [(await limiter.hit("k", rate)).allowed for _ in range(3)]
    assert got == [True, True, False]
    assert metrics.value("cipherdesk_ratelimit_backend_errors_total") == 1
    await limiter.aclose()


async def test_clients_decoding_responses_work_too(redis_url: str, redis_prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        limiter = RedisRateLimiter(client, prefix=redis_prefix, clock=FakeClock())
        assert await limiter.hit("k", Rate(1, 4.0)) == Decision(True, 0.0, 0)
        assert await limiter.hit("k", Rate(1, 4.0)) == Decision(False, 4.0, 0)
        assert not limiter.degraded
    finally:
        await client.delete(redis_prefix + "k")
        await client.aclose()


async def test_hit_many_is_one_round_trip_and_matches_single_hits() -> None:
    """Several scopes per message cost one script call, decided like hit().

    A private Redis so that its command counter sees only this test."""
    import redis.asyncio as aioredis

    from gateway.ratelimit.limits import Rate, RedisRateLimiter
    from tests.services import start_throwaway_redis

    server = start_throwaway_redis()
    client = aioredis.Redis.from_url(server.url)
    try:
        limiter = RedisRateLimiter(client)
        chat, cust = Rate(3, 60.0), Rate(2, 60.0)
        await limiter.hit_many([("warm", chat, "c")])  # loads the script once
        before = await client.info("commandstats")
        results = [
            await limiter.hit_many([("chat:x", chat, "c"), ("cust:y", cust, "u")]) for _ in range(4)
        ]
        after = await client.info("commandstats")
        assert [[d.allowed for d in r] for r in results] == [
            [True, True],
            [True, True],
            [True, False],
            [False, False],
        ]
        calls = after["cmdstat_evalsha"]["calls"] - before["cmdstat_evalsha"]["calls"]
        assert calls == 4  # one script call per batch and nothing else per key
        assert set(after) - {"cmdstat_info"} <= set(before) | {"cmdstat_info"}
    finally:
        await client.aclose()
        assert server.proc is not None
        server.proc.terminate()
        server.proc.wait(10)


async def test_gateway_limiter_keys_in_redis_hold_no_client_address(
    tmp_path, redis_url: str, redis_prefix: str
) -> None:
    """The gateway's per-address budgets (WebSocket connects, customer messages) are keyed
    by a keyed hash of the address: before, ``wsc:127.0.0.1`` and ``cust:127.0.0.1`` sat in
    Redis in plain text (the login budget was fixed the same way)."""
    from gateway.sdk.client import CustomerClient
    from tests.gateway.helpers import start_gateway

    runner, base, svc = await start_gateway(
        tmp_path, ratelimit={"url": redis_url, "prefix": redis_prefix}
    )
    customer = CustomerClient(base, "demo", origin=base, gateway_key=svc.identity.verify_key_b64)
    raw = aioredis.Redis.from_url(redis_url)
    try:
        await customer.connect()
        await customer.open()
        await customer.send_text("hello")
        keys = [k.decode() for k in await raw.keys(f"{redis_prefix}*")]
    finally:
        await raw.aclose()
        await customer.aclose()
        await runner.cleanup()
    kinds = {k[len(redis_prefix) :].split(":", 1)[0] for k in keys}
    assert {"wsc", "cust"} <= kinds, keys
    assert not [k for k in keys if "127.0.0.1" in k], keys


async def _answers(client: Any, prefix: str, count: int) -> tuple[list[Ack], list[Notice]]:
    """The next ``count`` acks and notices of the messages ``prefix``0, ``prefix``1, ..."""
    answers = [
        await client.wait_for(
            lambda f: isinstance(f, Ack | Notice) and (f.id or "").startswith(prefix)
        )
        for _ in range(count)
    ]
    return [a for a in answers if isinstance(a, Ack)], [a for a in answers if isinstance(a, Notice)]


def _assert_spent_in_order(
    acks: list[Ack], notices: list[Notice], prefix: str, *, allowed: int, sent: int
) -> None:
    """The first ``allowed`` messages were stored and acked in the order sent, the rest
    refused with a notice each: the budget was spent in the order sent."""
    assert [a.id for a in acks] == [f"{prefix}{n}" for n in range(allowed)]
    assert [a.seq for a in acks] == sorted(a.seq for a in acks)
    assert [(n.id, n.action) for n in notices] == [
        (f"{prefix}{n}", "limited") for n in range(allowed, sent)
    ]


async def test_a_socket_reads_on_while_redis_decides_and_its_order_holds(
    tmp_path, redis_url: str, redis_prefix: str
) -> None:
    """With the Redis limiter, a customer's messages are decided while the socket reads on
    (each used to wait a round trip before the next frame was read): they are still stored
    and acked in the order sent, the chat's budget is spent in that order, and the ones
    past it are refused with a notice (sent when decided, as before: it does not wait for
    the acks of the stored ones ahead of it)."""
    from gateway.protocol import CustomerMsg
    from gateway.sdk.client import CustomerClient
    from tests.gateway.helpers import start_gateway

    runner, base, svc = await start_gateway(
        tmp_path,
        ratelimit={
            "url": redis_url,
            "prefix": redis_prefix,
            "limits": {"messages_per_chat": "6/10m", "messages_per_customer": "1000/m"},
        },
    )
    assert svc.guard.decides_remotely
    customer = CustomerClient(base, "demo", origin=base, gateway_key=svc.identity.verify_key_b64)
    try:
        await customer.connect()
        await customer.open()
        for n in range(8):  # all sent before the first is decided
            await customer.send(CustomerMsg(id=f"m{n}", text=f"hello {n}"))
        acks, notices = await _answers(customer, "m", 8)
    finally:
        await customer.aclose()
        await runner.cleanup()
    _assert_spent_in_order(acks, notices, "m", allowed=6, sent=8)


async def test_an_agent_socket_reads_on_while_redis_decides_and_its_order_holds(
    tmp_path, redis_url: str, redis_prefix: str
) -> None:
    """The same for an agent's replies: decided while the console's socket reads on (each
    reply used to wait a round trip for its decision before the next frame was read),
    stored and acked in the order sent, the agent's budget spent in that order, the
    replies past it refused with a notice."""
    from gateway.protocol import AgentMsg
    from tests.gateway.helpers import accepted_chat, start_gateway

    runner, base, svc = await start_gateway(
        tmp_path,
        ratelimit={
            "url": redis_url,
            "prefix": redis_prefix,
            "limits": {"messages_per_agent": "6/10m"},
        },
    )
    assert svc.guard.decides_remotely
    # Hold every reply's decision until all eight have been asked for: a session that
    # waits for each decision before reading on never asks for the second.
    limiter, asked, all_asked = svc.guard.limiter, [], asyncio.Event()
    real_hit = limiter.hit

    async def held_hit(key: str, *args: Any, **kwargs: Any) -> Any:
        if key.startswith("agent:"):
            asked.append(key)
            if len(asked) < 8:
                await all_asked.wait()
            else:  # the last one: the seven woken before it go first, in order
                all_asked.set()
                await asyncio.sleep(0)
        return await real_hit(key, *args, **kwargs)

    try:
        async with accepted_chat(svc, base) as (_customer, agent, chat):
            limiter.hit = held_hit  # type: ignore[method-assign]
            for n in range(8):
                await agent.send(AgentMsg(id=f"a{n}", chat=chat, text=f"reply {n}"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_asked.wait(), 5)
            assert len(asked) == 8, f"{len(asked)} decision(s) asked for while reading on"
            acks, notices = await _answers(agent, "a", 8)
            stored = await svc.store.messages_after(chat, 0)
    finally:
        await runner.cleanup()
    _assert_spent_in_order(acks, notices, "a", allowed=6, sent=8)
    assert [m.seq for m in stored if m.sender == "agent"] == [a.seq for a in acks]
