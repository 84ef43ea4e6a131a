"""Appends per second of the PostgreSQL store, against a bare commit loop in the same run.

    .venv/bin/python bench/store_append.py [--appenders 80] [--chats 20,80] [--seconds 5]

Why: a relaying node waits on ``append_message`` for every message, so the store's append
rate under concurrency bounds what one node (and several worker processes) can relay
(issue 18). Each run gives ``--appenders`` concurrent tasks, each appending one message
with one outbox event after another for ``--seconds``, spread over ``--chats`` chats (the
relay bench's 20 pairs with a window of 4 are 80 appenders on 20 chats). The baseline is
the same number of tasks each running the bare minimum PostgreSQL can do per message: one
transaction with one INSERT, on its own pooled connection — no seq, no lock, no outbox.

Printed per run: appends/s, p50/p99 latency, this process's CPU per append, transactions
the store sent, and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.store.postgres import PostgresStore
from tests.gateway.store.helpers import event, msg, setup_chat
from tests.services import postgres_server

Append = Callable[[int, int], Awaitable[None]]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _run(appenders: int, seconds: float, append: Append) -> tuple[int, list[float], float]:
    """Run ``appenders`` tasks calling ``append(task, n)`` until ``seconds`` pass; returns
    (appends, latencies in seconds, CPU seconds of this process)."""
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def one(task: int) -> None:
        n = 0
        while time.perf_counter() < stop:
            started = time.perf_counter()
            await append(task, n)
            latencies.append(time.perf_counter() - started)
            n += 1

    cpu = _cpu()
    await asyncio.gather(*(one(task) for task in range(appenders)))
    return len(latencies), latencies, _cpu() - cpu


def _report(name: str, seconds: float, done: int, latencies: list[float], cpu: float) -> float:
    rate = done / seconds
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"{name:<28} {rate:>8,.0f} appends/s  p50 {cuts[49] * 1e3:6.1f} ms"
        f"  p99 {cuts[98] * 1e3:6.1f} ms  client CPU {cpu / done * 1e6:5.0f} µs/append",
        flush=True,
    )
    return rate


async def bare_commits(dsn: str, appenders: int, seconds: float) -> float:
    """The baseline: one INSERT in its own transaction per message."""
    pool = await asyncpg.create_pool(dsn, min_size=appenders, max_size=appenders)
    try:
        await pool.execute("CREATE TABLE IF NOT EXISTS bare (k text PRIMARY KEY, body bytea)")

        async def append(task: int, n: int) -> None:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute("INSERT INTO bare VALUES ($1, $2)", f"{task}:{n}", b"x" * 80)

        done, latencies, cpu = await _run(appenders, seconds, append)
    finally:
        await pool.close()
    return _report("bare INSERT + COMMIT", seconds, done, latencies, cpu)


async def store_appends(dsn: str, appenders: int, chats: int, seconds: float) -> float:
    """The store's ``append_message`` with one outbox event, ``chats`` chats."""
    store = PostgresStore(dsn)
    await store.open()
    try:
        run = uuid.uuid4().hex[:6]
        chat_ids = [f"{run}-{i}" for i in range(chats)]
        for chat_id in chat_ids:
            await setup_chat(store, chat_id)

        async def append(task: int, n: int) -> None:
            chat_id = chat_ids[task % chats]
            key = f"{task}:{n}"
            await store.append_message(
                msg(key, chat_id=chat_id, body_sealed=b"x" * 80),
                [event(key, chat_id=chat_id)],
            )

        calls = store._appends.calls
        done, latencies, cpu = await _run(appenders, seconds, append)
        rate = _report(f"store, {chats} chats", seconds, done, latencies, cpu)
        print(f"{'':<28} {done / max(1, store._appends.calls - calls):8.1f} appends a transaction")
    finally:
        await store.close()
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--appenders", type=int, default=80)
    parser.add_argument("--chats", default="20,80", help="comma-separated chat counts")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with postgres_server() as server:
        dsn = server.create_database()
        try:
            baseline = await bare_commits(dsn, args.appenders, args.seconds)
            for chats in (int(c) for c in args.chats.split(",")):
                rate = await store_appends(dsn, args.appenders, chats, args.seconds)
                print(f"{'':<28} ratio to the baseline {rate / baseline:.2f}")
        finally:
            with contextlib.suppress(Exception):
                server.drop_database(dsn)


if __name__ == "__main__":
    asyncio.run(main())
