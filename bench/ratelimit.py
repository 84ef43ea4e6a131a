"""Cost of one rate-limit decision, memory and Redis, against same-run baselines.

    .venv/bin/python bench/ratelimit.py [--redis-url redis://127.0.0.1:6379/0] [-n 200000]

Figures are µs per decision; each is followed by its ratio to a baseline measured in
the same run (a plain dict read+write for memory, a Redis ``PING`` round trip for Redis),
so numbers from different machines stay comparable. Targets (issue 5): < 5 µs per
in-memory decision; one round trip per sequential Redis decision (ratio to PING ≈ 1), and
concurrent decisions sharing calls (ratio well below 1: issue 18).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.metrics import Metrics
from gateway.ratelimit.limits import MemoryRateLimiter, Rate, RedisRateLimiter


def _per_op(seconds: float, n: int) -> float:
    return seconds / n * 1e6


def bench_memory(n: int, rounds: int) -> dict[str, float]:
    """Interleaved rounds, median per figure (see :func:`bench_redis`)."""
    keys = [f"ip:{i}" for i in range(1000)]
    flood_keys = [f"flood:{i}" for i in range(n)]
    rate = Rate(20, 10.0)  # 1000 hot keys hit n/1000 times each: mostly refusals
    per_round = max(n // rounds, 1)
    plain = MemoryRateLimiter()
    counted = MemoryRateLimiter(metrics=Metrics())
    flood = MemoryRateLimiter(max_keys=10_000)
    table: dict[str, float] = {}

    def baseline(r: int) -> None:
        for i in range(per_round):
            k = keys[i % 1000]
            table[k] = table.get(k, 0.0) + 1.0

    def hot(r: int) -> None:
        for i in range(per_round):
            plain.hit_now(keys[i % 1000], rate)

    def hot_metrics(r: int) -> None:
        for i in range(per_round):
            counted.hit_now(keys[i % 1000], rate, scope="bench")

    def new_keys(r: int) -> None:
        base = r * per_round
        for i in range(per_round):
            flood.hit_now(flood_keys[base + i], rate)  # insert + expiry/LRU eviction path

    async def run_async() -> None:
        for i in range(per_round):
            await plain.hit(keys[i % 1000], rate)

    figures = {
        "baseline dict read+write": baseline,
        "hit_now (1000 hot keys)": hot,
        "hit_now (1000 hot keys, metrics on)": hot_metrics,
        "hit_now (new key every hit, LRU at 10k)": new_keys,
        "await hit (async wrapper)": lambda r: asyncio.run(run_async()),
    }
    samples: dict[str, list[float]] = {name: [] for name in figures}
    for r in range(rounds):
        for name, fn in figures.items():
            t0 = time.perf_counter()
            fn(r)
            samples[name].append(_per_op(time.perf_counter() - t0, per_round))
    return {name: statistics.median(values) for name, values in samples.items()}


async def bench_redis(url: str, n: int, concurrency: int, rounds: int) -> dict[str, float]:
    """Rounds interleave the baseline and the limiter, and each figure is the median
    round, so load from other processes on the machine hits both alike."""
    import redis.asyncio as aioredis

    prefix = f"cdbench:{uuid.uuid4().hex[:8]}:"
    client = aioredis.Redis.from_url(url)
    limiter = RedisRateLimiter(client, prefix=prefix)
    rate = Rate(100_000, 1.0)
    per_round = max(n // rounds, 1)
    samples: dict[str, list[float]] = {}
    conc_name = f"hit ({concurrency} concurrent tasks, per decision)"

    async def ping_round() -> float:
        t0 = time.perf_counter()
        for _ in range(per_round):
            await client.ping()
        return _per_op(time.perf_counter() - t0, per_round)

    async def seq_round() -> float:
        t0 = time.perf_counter()
        for i in range(per_round):
            await limiter.hit(f"ip:{i % 1000}", rate)
        return _per_op(time.perf_counter() - t0, per_round)

    async def conc_round() -> float:
        each = max(per_round // concurrency, 1)

        async def worker(w: int) -> None:
            for i in range(each):
                await limiter.hit(f"ip:{(w * 7919 + i) % 1000}", rate)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        return _per_op(time.perf_counter() - t0, each * concurrency)

    try:
        await client.ping()
        await limiter.hit("warm", rate)
        for _ in range(rounds):
            for name, fn in (
                ("baseline PING round trip", ping_round),
                ("hit (EVALSHA, sequential)", seq_round),
                (conc_name, conc_round),
            ):
                samples.setdefault(name, []).append(await fn())
        assert not limiter.degraded, "Redis failed during the benchmark"

        # degraded path: Redis unreachable, decisions from the local fallback
        dead = RedisRateLimiter.from_url("redis://127.0.0.1:1/0", retry_interval=3600.0)
        await dead.hit("warm", rate)
        t0 = time.perf_counter()
        for i in range(n):
            await dead.hit(f"ip:{i % 1000}", rate)
        samples["hit while degraded (local fallback)"] = [_per_op(time.perf_counter() - t0, n)]
        await dead.aclose()
    finally:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=1000)]
        for i in range(0, len(keys), 500):
            await client.delete(*keys[i : i + 500])
        await client.aclose()
    return {name: statistics.median(values) for name, values in samples.items()}


def report(title: str, figures: dict[str, float]) -> None:
    baseline = next(iter(figures.values()))
    print(title)
    for name, us in figures.items():
        print(f"  {name:<44} {us:8.2f} µs   x{us / baseline:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("-n", type=int, default=500_000, help="memory decisions per figure")
    parser.add_argument("--redis-n", type=int, default=20_000, help="Redis decisions per figure")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--no-redis", action="store_true")
    args = parser.parse_args()

    print(f"python {sys.version.split()[0]}")
    report("memory (GCRA, MemoryRateLimiter):", bench_memory(args.n, args.rounds))
    if not args.no_redis:
        figures = asyncio.run(
            bench_redis(args.redis_url, args.redis_n, args.concurrency, args.rounds)
        )
        report(f"redis ({args.redis_url}, RedisRateLimiter):", figures)


if __name__ == "__main__":
    main()
