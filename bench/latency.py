"""Customer→agent latency with 1,000 concurrent chats at a realistic pace.

    .venv/bin/python bench/latency.py [--chats 1000] [--agents 50] [--seconds 60]
        [--customer-procs 2] [--store postgresql://…] [--redis redis://…] [--workers 2]
        [--echoes]

The gateway runs as ``cipherdesk serve`` in its own process (or a supervisor with
``--workers`` worker processes, which needs ``--store`` PostgreSQL and ``--redis``).
Customers run in ``--customer-procs`` load processes and the agents in one more, so the
load generator's CPU is not the server's. Set-up opens connections in batches (50 at a
time per process) so it never times out: customers connect and open their chats, the
agents process accepts them (each agent takes ``chats / agents`` chats).

Then, for ``--seconds``, each customer sends one message every 2–10 s (uniformly drawn)
and each agent answers every customer message at once. The message id carries the
sender's ``time.monotonic_ns()`` (CLOCK_MONOTONIC is one clock for all processes of a
machine), so the agents process measures customer→agent latency exactly, without
trusting a second clock. The measured window starts once the server has gone quiet after
the set-up (``settle``: opening and accepting 1,000 chats in seconds is a burst, not the
pacing being measured; ``--settle 0`` starts at once). The load processes stop their own
garbage collector for the measured window (``--keep-load-gc`` leaves it on): its pauses
are the harness's, not the gateway's. Reported: p50 / p99 / p99.9 latency, messages, set-up time and
the server's CPU (user+system of the server process and its workers over the run, from
/proc) as a share of one core.

Customers and agents connect as the widget and the console do, without the echo of their
own messages (``key.echo: false``); ``--echoes`` asks for it, to measure what it costs.

Rate limits are lifted (one loopback address plays every customer); agents and their
sessions are created in the store before the server starts (login is not measured).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import multiprocessing
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.relay import (
    NO_LIMITS,
    REPO,
    TEXT,
    free_port,
    quiet_logs,
    raise_fd_limit,
    serve_command,
    wait_healthy,
)

BATCH = 50
"""Connections opened at once per load process during set-up."""


# ---------------------------------------------------------------------------- set-up


def server_env(args: argparse.Namespace, data_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIPHERDESK_")}
    limits = ", ".join(f"{k} = {json.dumps(v)}" for k, v in NO_LIMITS.items())
    env.update(
        PYTHONPATH=REPO,
        CIPHERDESK_RATELIMIT_LIMITS="{" + limits + "}",
        CIPHERDESK_DATA_DIR=data_dir,
        CIPHERDESK_AUTH_ARGON2_MEMORY_KIB="8192",
        CIPHERDESK_AUTH_ARGON2_TIME_COST="1",
        CIPHERDESK_SERVER_WORKERS=str(args.workers),
    )
    if args.store:
        env["CIPHERDESK_STORE_URL"] = args.store
    if args.redis:
        env["CIPHERDESK_BUS_URL"] = args.redis
        env["CIPHERDESK_RATELIMIT_URL"] = args.redis
    return env


async def create_agents(count: int) -> list[str]:
    """Agents and live session tokens, written through the offline services (the same
    store the server will open; the environment names it)."""
    from bench.relay import agent_session
    from gateway.app import build_services, close_services
    from gateway.config import load_config

    svc = await build_services(load_config())
    try:
        return [await agent_session(svc, i) for i in range(count)]
    finally:
        await close_services(svc)


# ---------------------------------------------------------------------------- load


def quiet_load_gc(keep: bool) -> None:
    """Stop the load process's own garbage collections for the measured window (unless
    ``keep``): with hundreds of client connections alive, a full collection of the *load
    generator* pauses it for tens of milliseconds, and a pause between stamping a message
    and sending it (customers) or between receiving and stamping it (agents) was counted
    as the gateway's latency. The window is a minute; what cycles it leaves are freed when
    the process ends. The server keeps its collector (``cipherdesk serve`` as deployed)."""
    if not keep:
        gc.collect()
        gc.freeze()
        gc.disable()


def customers_process(
    base: str, key: str, count: int, seconds: float, keep_gc: bool, echo: bool, conn: Any
) -> None:
    """Open ``count`` chats, report their ids, then talk at the customers' pace."""
    quiet_logs()
    raise_fd_limit(count * 2 + 256)

    async def main() -> None:
        from gateway.protocol import CustomerMsg
        from gateway.sdk.client import CustomerClient

        clients: list[CustomerClient] = []
        gate = asyncio.Semaphore(BATCH)

        async def open_one(i: int) -> None:
            async with gate:
                client = CustomerClient(base, "demo", origin=base, gateway_key=key, echo=echo)
                await client.connect()
                await client.open(profile={"name": f"Customer {i}", "topic": "parcel"})
                clients.append(client)

        await asyncio.gather(*(open_one(i) for i in range(count)))
        conn.send([c.chat for c in clients])
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, conn.recv)  # "go"
        quiet_load_gc(keep_gc)
        end = time.monotonic() + seconds
        sent = 0

        async def talk(client: CustomerClient, n: int) -> None:
            nonlocal sent
            await asyncio.sleep(random.uniform(0, min(10.0, seconds)))
            seq = 0
            while time.monotonic() < end:
                msg_id = f"t{time.monotonic_ns()}-{n}-{seq}"
                await client.send(CustomerMsg(id=msg_id, text=TEXT))
                sent += 1
                seq += 1
                client.drain()  # acks and answers: not measured here
                await asyncio.sleep(min(random.uniform(2, 10), max(0.0, end - time.monotonic())))

        await asyncio.gather(*(talk(c, n) for n, c in enumerate(clients)))
        conn.send(sent)
        for c in clients:
            with contextlib.suppress(Exception):
                await c.aclose()

    asyncio.run(main())


def agents_process(
    base: str, key: str, tokens: list[str], keep_gc: bool, echo: bool, conn: Any
) -> None:
    """Accept the chats handed over, answer every customer message, measure latency."""
    quiet_logs()
    raise_fd_limit(len(tokens) * 2 + 256)

    async def main() -> None:
        from gateway.protocol import AgentMsg, Msg
        from gateway.sdk.client import AgentClient

        agents = [
            AgentClient(base, token=t, origin=base, gateway_key=key, echo=echo) for t in tokens
        ]
        gate = asyncio.Semaphore(BATCH)

        async def connect(agent: AgentClient) -> None:
            async with gate:
                await agent.connect()

        await asyncio.gather(*(connect(a) for a in agents))
        loop = asyncio.get_running_loop()
        chats: list[str] = await loop.run_in_executor(None, conn.recv)

        async def accept(agent: AgentClient, mine: list[str]) -> None:
            for chat in mine:
                await agent.accept(chat)

        await asyncio.gather(*(accept(a, chats[i :: len(agents)]) for i, a in enumerate(agents)))
        quiet_load_gc(keep_gc)
        conn.send("accepted")
        latencies: list[float] = []
        answered = 0
        stop = asyncio.Event()

        async def serve(agent: AgentClient) -> None:
            nonlocal answered
            while not stop.is_set():
                try:
                    frame = await agent.next_frame(timeout=0.5)  # every frame, in order
                except TimeoutError:
                    continue
                if not isinstance(frame, Msg) or frame.sender != "customer":
                    continue
                latencies.append((time.monotonic_ns() - int(frame.id[1:].split("-")[0])) / 1e6)
                reply = f"r{secrets.token_hex(6)}"
                await agent.send(AgentMsg(chat=frame.chat, id=reply, text="On its way today."))
                answered += 1

        tasks = [asyncio.create_task(serve(a)) for a in agents]
        await loop.run_in_executor(None, conn.recv)  # "stop"
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn.send((latencies, answered))
        for a in agents:
            with contextlib.suppress(Exception):
                await a.aclose()

    asyncio.run(main())


# ---------------------------------------------------------------------------- figures


def cpu_seconds(pid: int) -> float:
    """user+system CPU of ``pid`` and its live children (workers), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    with contextlib.suppress(FileNotFoundError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        with contextlib.suppress(FileNotFoundError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


async def settle(pid: int, limit: float, interval: float = 0.25, quiet: float = 0.05) -> float:
    """Wait until the server has worked through the set-up's aftermath; the seconds waited.

    Why: the agents' accept acks come back before the node has finished what the accepts
    set off (each one changes the queue of every console of the tenant), and with 1,000
    chats accepted in a few seconds that tail kept the server busy for most of a second
    more, with full collections and 100-230 ms event-loop stalls (that was while every
    change sent every console its whole queue; since consoles get ``queue_update`` frames
    with only what changed, the tail is shorter, and the collector's full collections
    while the heap grows with 1,000 connections are what remains of it). Started at once, the
    measured window caught it: the first messages of the window waited behind the set-up,
    which is not the realistic pacing being measured (p99 19-155 ms and p99.9 263-363 ms
    from run to run, against 2.6 ms and 5.1 ms once the tail had passed). Quiet means two
    consecutive ``interval`` s in which the server (and its workers) used less than
    ``quiet`` of one core; after ``limit`` seconds the window starts anyway."""
    start = time.monotonic()
    calm = 0
    before = cpu_seconds(pid)
    while calm < 2 and time.monotonic() - start < limit:
        await asyncio.sleep(interval)
        now = cpu_seconds(pid)
        calm = calm + 1 if now - before < quiet * interval else 0
        before = now
    return time.monotonic() - start


def pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run(args: argparse.Namespace) -> None:
    raise_fd_limit(4 * args.chats + 1024)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="cipherdesk-latency-") as data_dir:
        env = server_env(args, data_dir)
        os.environ.update({k: v for k, v in env.items() if k.startswith("CIPHERDESK_")})
        quiet_logs()
        tokens = await create_agents(args.agents)
        log = Path(data_dir) / "server.log"
        with log.open("wb") as out:
            server = subprocess.Popen(  # noqa: ASYNC220 - started once, before the load
                [*serve_command(), "serve", "--port", str(port), "--log-level", "warning"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        ctx = multiprocessing.get_context("spawn")
        procs: list[Any] = []
        try:
            key = (await wait_healthy(base, server, time.monotonic() + 60))["verify_key"]
            setup_start = time.monotonic()
            agent_end, agent_child = ctx.Pipe()
            agents = ctx.Process(
                target=agents_process,
                args=(base, key, tokens, args.keep_load_gc, args.echoes, agent_child),
            )
            agents.start()
            agent_child.close()  # the child's end lives in the child: its death is EOF here
            procs.append(agents)
            shares = [args.chats // args.customer_procs] * args.customer_procs
            shares[0] += args.chats - sum(shares)
            customer_ends = []
            for share in shares:
                end, child = ctx.Pipe()
                proc = ctx.Process(
                    target=customers_process,
                    args=(base, key, share, args.seconds, args.keep_load_gc, args.echoes, child),
                )
                proc.start()
                child.close()
                procs.append(proc)
                customer_ends.append(end)
            loop = asyncio.get_running_loop()
            chats: list[str] = []
            for end in customer_ends:
                chats += await loop.run_in_executor(None, end.recv)
            agent_end.send(chats)
            await loop.run_in_executor(None, agent_end.recv)  # "accepted"
            setup = time.monotonic() - setup_start
            print(
                f"latency: {len(chats)} chats, {args.agents} agents, set-up {setup:.1f} s "
                f"(batches of {BATCH}), {os.cpu_count()} CPUs, workers {args.workers}, "
                f"store {'PostgreSQL' if args.store else 'SQLite'}, load processes' GC "
                f"{'on' if args.keep_load_gc else 'off'}, echoes of own messages "
                f"{'on' if args.echoes else 'off (as the widget and console connect)'}",
                flush=True,
            )
            if args.settle:
                waited = await settle(server.pid, args.settle)
                print(
                    f"server quiet {waited:.1f} s after set-up (below 5% of a core for 0.5 s; "
                    f"--settle {args.settle:g} s at most), then the measured window",
                    flush=True,
                )
            cpu_start, wall_start = cpu_seconds(server.pid), time.monotonic()
            for end in customer_ends:
                end.send("go")
            sent = 0
            for end in customer_ends:
                sent += await loop.run_in_executor(None, end.recv)
            cpu = cpu_seconds(server.pid) - cpu_start
            wall = time.monotonic() - wall_start
            await asyncio.sleep(1.0)  # the last answers
            agent_end.send("stop")
            latencies, answered = await loop.run_in_executor(None, agent_end.recv)
        except BaseException:
            sys.stderr.write(log.read_text(errors="replace")[-4000:])
            raise
        finally:
            for proc in procs:
                proc.join(30)
                if proc.is_alive():
                    proc.kill()
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
    ordered = sorted(latencies)
    print(
        f"{sent} customer messages sent, {len(ordered)} received by agents, {answered} answered, "
        f"in {wall:.1f} s ({sent / wall:.0f} msg/s from customers)"
    )
    print(
        f"customer→agent latency: p50 {pct(ordered, 0.5):.1f} ms   p99 {pct(ordered, 0.99):.1f} ms"
        f"   p99.9 {pct(ordered, 0.999):.1f} ms   max {ordered[-1] if ordered else 0:.1f} ms"
    )
    print(
        f"server CPU: {cpu:.1f} s over {wall:.1f} s = {100 * cpu / wall:.0f}% of one core,"
        f" {cpu / max(1, sent + answered) * 1e6:.0f} µs per message (customers' and answers)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--customer-procs", type=int, default=2)
    parser.add_argument("--store", default="", help="postgresql://… (default SQLite)")
    parser.add_argument("--redis", default="", help="redis://… for the bus and limits")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--keep-load-gc",
        action="store_true",
        help="leave the load processes' garbage collector on while measuring (their pauses "
        "then count as latency; see quiet_load_gc)",
    )
    parser.add_argument(
        "--echoes",
        action="store_true",
        help="customers and agents ask for the echo of their own messages (the SDK's "
        "default); without it they connect as the widget and the console do",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=30.0,
        help="seconds at most to wait, after set-up, for the server to go quiet before the "
        "measured window (see settle); 0 starts the window at once",
    )
    args = parser.parse_args()
    if args.workers > 1 and not (args.store and args.redis):
        parser.error("--workers needs --store postgresql://… and --redis redis://…")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
