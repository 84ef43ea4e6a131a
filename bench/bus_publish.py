"""CPU per published bus event: the Redis bus (group commit) against plain redis-py.

    .venv/bin/python bench/bus_publish.py [--redis-url redis://127.0.0.1:6379/0] [-n 4000]

The baseline, measured in the same run on the same Redis, is what ``RedisBus.publish`` did
before issue 18's group commit: the same sealed payload (``RedisBus.payload``), then one
redis-py ``PUBLISH`` per event through a bounded connection pool, awaited by each
publisher. The measured path is ``RedisBus.publish``
itself (sealing included), whose events leave in pipelined batches while earlier calls
are on the wire (``gateway/group_commit.py``). Each is run with 1 publisher (an idle
node: every event pays a round trip either way) and with 20 concurrent publishers (a busy
node: many connections publishing at once). Figures: this process's CPU time per event
(user + system, ``time.process_time``) and wall time per event, and the ratio to the
baseline at the same concurrency. Nothing subscribes to the channel: delivery is
bench/multinode.py's subject.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from redis.asyncio import BlockingConnectionPool, Redis

from crypto.envelope import Keyring
from gateway.bus.base import BusEvent, chat_topic
from gateway.bus.redis import RedisBus
from gateway.protocol import Msg

TEXT = "Hello, I would like to know when my parcel will arrive. Thank you!"


async def measure(
    publish: Callable[[int], Awaitable[None]], n: int, concurrency: int
) -> tuple[float, float]:
    """(CPU µs, wall µs) per event for ``n`` events from ``concurrency`` publishers."""

    async def publisher(first: int, count: int) -> None:
        for i in range(first, first + count):
            await publish(i)

    share = n // concurrency
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(publisher(k * share, share) for k in range(concurrency)))
    done = share * concurrency
    return (
        (time.process_time() - cpu) / done * 1e6,
        (time.perf_counter() - wall) / done * 1e6,
    )


async def run(args: argparse.Namespace) -> None:
    bus = RedisBus(args.redis_url, keyring=Keyring.generate(), prefix="cd:bench:")
    await bus.start()
    plain = Redis.from_pool(BlockingConnectionPool.from_url(args.redis_url, max_connections=16))
    topic = chat_topic("bench")
    channel = bus.channel(topic)

    def event(i: int) -> BusEvent:
        return BusEvent(
            kind="frame", frame=Msg(seq=i, sender="customer", text=TEXT, ts=1.0, id=f"m{i}")
        )

    async def baseline(i: int) -> None:
        # The bus's own payload (encode + seal, as RedisBus.publish), then one PUBLISH.
        await plain.publish(channel, bus.payload(topic, event(i)))

    async def grouped(i: int) -> None:
        await bus.publish(topic, event(i))

    print(
        f"bus publish: {args.n} events per figure, best of {args.rounds} rounds, "
        f"python {sys.version.split()[0]}"
    )
    try:
        await measure(baseline, 200, 1)  # connections opened, script caches warm
        await measure(grouped, 200, 1)
        for concurrency in (1, 20):
            best: dict[str, tuple[float, float]] = {}
            for _ in range(args.rounds):
                for name, path in (("baseline", baseline), ("bus", grouped)):
                    figure = await measure(path, args.n, concurrency)
                    if name not in best or figure[0] < best[name][0]:
                        best[name] = figure
            base_cpu = best["baseline"][0]
            for name, label in (
                ("baseline", "one PUBLISH per event (before)"),
                ("bus", "RedisBus.publish (group commit)"),
            ):
                cpu, wall = best[name]
                print(
                    f"  {concurrency:2} publisher(s)  {label:<32} CPU {cpu:7.1f} µs/event  "
                    f"wall {wall:7.1f} µs/event   x{cpu / base_cpu:.2f}"
                )
        print(f"  pipelined calls made by the bus: {bus.publish_calls}")
    finally:
        await plain.aclose()
        await bus.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("-n", type=int, default=4000, help="events per figure")
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
