"""Relay throughput with abuse limits on vs off, plus the limiter's cost per decision.

    .venv/bin/python bench/limits.py [--pairs 10] [--messages 300] [--window 4] [--rounds 3]
                                     [--redis-url redis://127.0.0.1:6379/0] [--no-redis]

Reuses ``bench/relay.py`` (the real gateway in this process, SDK clients, N customer→agent
pairs, ``--window`` messages in flight) and runs it in interleaved rounds:

* **off**: the gateway's ``Guard`` is bypassed on this app (connect admission, per-frame
  byte rate, per-message chat/customer/agent rates all return "allowed" without a
  decision) — the gateway as if issue 5 did not exist;
* **on (memory)**: every decision is taken by ``MemoryRateLimiter`` (the default). One
  loopback address plays every customer, so the per-IP budgets are set high enough not to
  refuse (``bench/relay.py``'s ``NO_LIMITS``); the decisions themselves — what costs — run
  exactly as in production: 3 per customer message (bytes, chat, customer), 1 per agent
  message, 1 + concurrency caps per connect;
* **on (redis)**: the same decisions on ``RedisRateLimiter`` (decisions asked for while a
  call is on the wire share the next ``EVALSHA``), when a Redis answers at ``--redis-url``.

``--replies``: the agents send and the customers receive (1 decision per message, the
agent's). Figures are the median of the rounds; the ratio on/off is taken per round (same round,
same machine load) and its median reported. Targets: memory on ≥ 95 % of off (issue 5),
Redis on ≥ 80 % of off (issue 18). A last memory round times the guard's per-message
entry points (``GuardClock``): the limits' own cost per message, against the time a message
takes with limits off -- the ratio that cost allows, which the rounds' spread hides. Then the
per-decision costs from ``bench/ratelimit.py`` (memory: < 5 µs; Redis: ≈ one PING).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import ratelimit as ratelimit_bench  # bench/ratelimit.py
import relay  # bench/relay.py
from aiohttp import web

_MODE: dict[str, Any] = {"mode": "on", "redis_url": None}
_real_start_site = relay.start_site
_real_gateway_config = relay.gateway_config


def _bypass_guard(app: web.Application) -> None:
    """Limits off: the Guard's entry points answer "allowed" without deciding anything."""
    from gateway.services import SERVICES

    guard = app[SERVICES].guard

    async def admit(kind: str, ip: str) -> None:
        return None

    async def frame(*args: Any) -> None:
        return None

    async def allowed(*args: Any) -> bool:
        return True

    async def no_refusal(*args: Any) -> None:
        return None

    guard.admit_connection = admit  # type: ignore[method-assign]
    guard.customer_frame = frame  # type: ignore[method-assign]
    guard.inbound_bytes = frame  # type: ignore[method-assign]
    guard.customer_message = allowed  # type: ignore[method-assign]
    guard.agent_message = allowed  # type: ignore[method-assign]
    # what the sessions ask for a message since they read on while it is decided
    guard.customer_message_refusal = no_refusal  # type: ignore[method-assign]
    guard.agent_message_refusal = no_refusal  # type: ignore[method-assign]


class GuardClock:
    """Time spent inside the guard's per-message entry points (the frame's byte rate, the
    message's decision) in a memory round of its own, and how many messages were decided:
    the limits' own cost per message, measured where the sessions pay it. A difference of
    two throughput runs cannot show a cost of a few per cent -- the rounds' spread is larger
    (0.87-1.12 on one day, bench/HISTORY.md) -- this can.

    A call is timed only when it runs to its end without suspending (the memory limiter
    never suspends; a tenant record read from the store does, and its wall time would hold
    other tasks' work): those are counted apart. The clock's own cost (driving the call and
    two clock reads) is measured the same way around an entry point that does nothing, and
    taken off."""

    def __init__(self) -> None:
        self.on = False
        self.seconds = 0.0
        self.calls = 0
        self.decided = 0
        self.suspended = 0

    def _timed(self, method: Any, decides: bool) -> Any:
        clock = time.perf_counter
        owner = self

        class Entry:
            """One call, driven here: timed when its first step finishes it."""

            def __init__(self, args: tuple[Any, ...]) -> None:
                self.args = args

            def __await__(self) -> Any:
                started = clock()
                coro = method(*self.args)
                try:
                    waiting = coro.send(None)
                except StopIteration as done:
                    owner.seconds += clock() - started
                    owner.calls += 1
                    owner.decided += decides
                    return done.value
                owner.suspended += 1
                while True:  # suspended: hand each awaited future to the loop, untimed
                    try:
                        sent = yield waiting
                    except BaseException as exc:
                        try:
                            waiting = coro.throw(exc)
                        except StopIteration as done:
                            return done.value
                    else:
                        try:
                            waiting = coro.send(sent)
                        except StopIteration as done:
                            return done.value

        return lambda *args: Entry(args)

    def wrap(self, app: web.Application) -> None:
        from gateway.services import SERVICES

        guard = app[SERVICES].guard
        guard.inbound_bytes = self._timed(guard.inbound_bytes, False)  # type: ignore[method-assign]
        for name in ("customer_message_refusal", "agent_message_refusal"):
            setattr(guard, name, self._timed(getattr(guard, name), True))

    async def overhead(self, n: int = 200_000) -> float:
        """Seconds the clock adds to one call: an entry point that does nothing, timed and
        not (the least of 5 rounds each)."""

        async def nothing(*args: Any) -> None:
            return None

        timed = GuardClock()._timed(nothing, False)

        async def rounds(entry: Any) -> float:
            best = float("inf")
            for _ in range(5):
                started = time.perf_counter()
                for _ in range(n):
                    await entry(1, 2)
                best = min(best, time.perf_counter() - started)
            return best / n

        return await rounds(timed) - await rounds(nothing)

    async def per_message(self) -> float:
        """Microseconds in the guard per message decided without suspending, the clock's own
        cost taken off."""
        own = self.seconds - self.calls * await self.overhead()
        return 1e6 * own / max(self.decided, 1)


GUARD_CLOCK = GuardClock()


async def _start_site(app: web.Application, port: int) -> web.AppRunner:
    runner = await _real_start_site(app, port)
    from gateway.services import SERVICES

    if _MODE["mode"] == "off" and SERVICES in app:
        _bypass_guard(app)
    elif _MODE["mode"] == "on" and GUARD_CLOCK.on and SERVICES in app:
        GUARD_CLOCK.wrap(app)
    return runner


def _gateway_config(data_dir: str, port: int) -> Any:
    config = _real_gateway_config(data_dir, port)
    if _MODE["mode"] == "redis":
        config.ratelimit.url = _MODE["redis_url"]
    return config


relay.start_site = _start_site
relay.gateway_config = _gateway_config


async def _redis_ok(url: str) -> bool:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        await client.ping()
        return True
    except Exception:
        return False
    finally:
        await client.aclose()


#: Least ratio on/off per mode: issue 5 (memory) and issue 18 (Redis, one shared budget).
TARGETS = {"on": 0.95, "redis": 0.8}


async def _run(mode: str, args: argparse.Namespace) -> relay.Figures:
    _MODE["mode"] = mode
    return await relay.bench_gateway(
        args.pairs, args.messages, args.window, args.warmup, replies=args.replies
    )


async def run_relay(args: argparse.Namespace) -> None:
    modes = ["off", "on"]
    if not args.no_redis and await _redis_ok(args.redis_url):
        _MODE["redis_url"] = args.redis_url
        modes.append("redis")
    print(
        f"relay with limits on vs off{' (agent replies)' if args.replies else ''}: "
        f"{args.pairs} pairs x {args.messages} msgs, window "
        f"{args.window}, {args.rounds} interleaved rounds (median), python "
        f"{sys.version.split()[0]}"
    )
    figures: dict[str, list[relay.Figures]] = {m: [] for m in modes}
    for r in range(args.rounds):
        order = modes if r % 2 == 0 else modes[::-1]  # no mode always runs first
        for mode in order:
            figures[mode].append(await _run(mode, args))
    names = {"off": "off", "on": "on memory", "redis": "on redis"}
    for mode in modes:
        rates = [f.rate for f in figures[mode]]
        best = (
            figures[mode][rates.index(statistics.median(rates))]
            if len(rates) % 2
            else figures[mode][0]
        )
        print(
            f"  {names[mode]:<10} {statistics.median(rates):8.0f} msg/s (rounds: "
            f"{', '.join(f'{x:.0f}' for x in rates)})   p50 {best.pct(0.5):6.2f} ms   "
            f"p99 {best.pct(0.99):6.2f} ms"
        )
    for mode in modes[1:]:
        ratios = [on.rate / off.rate for on, off in zip(figures[mode], figures["off"], strict=True)]
        med = statistics.median(ratios)
        verdict = "meets" if med >= TARGETS[mode] else "MISSES"
        print(
            f"  ratio {names[mode]}/off: {med:.3f} (rounds: "
            f"{', '.join(f'{x:.3f}' for x in ratios)}) — {verdict} the >= {TARGETS[mode]} target"
        )
    # the memory limiter's own cost (a round of its own: the clock slows the round it is
    # in), against the time a message takes with limits off
    GUARD_CLOCK.on = True
    await _run("on", args)
    GUARD_CLOCK.on = False
    spent = await GUARD_CLOCK.per_message()
    per_message = 1e6 / statistics.median(f.rate for f in figures["off"])
    print(
        f"  time in the guard (memory): {spent:.1f} µs per message decided "
        f"({GUARD_CLOCK.decided} decided; {GUARD_CLOCK.suspended} calls suspended, not "
        f"timed), against {per_message:.0f} µs per message with "
        f"limits off: the ratio its own work allows is {1 - spent / per_message:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument(
        "--replies", action="store_true", help="agents send, customers receive (agent limits)"
    )
    parser.add_argument(
        "--no-decisions",
        action="store_true",
        help="skip the per-decision figures of bench/ratelimit.py",
    )
    args = parser.parse_args()
    relay.quiet_logs()
    asyncio.run(run_relay(args))
    if args.no_decisions:
        return
    ratelimit_bench.report(
        "cost per decision (bench/ratelimit.py), memory:", ratelimit_bench.bench_memory(200_000, 5)
    )
    if not args.no_redis and _MODE["redis_url"]:
        ratelimit_bench.report(
            f"cost per decision, redis ({args.redis_url}):",
            asyncio.run(ratelimit_bench.bench_redis(args.redis_url, 10_000, 50, 5)),
        )


if __name__ == "__main__":
    main()
