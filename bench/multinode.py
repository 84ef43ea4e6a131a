"""Relay figures for one node vs two nodes on PostgreSQL + Redis, and the Redis hop's cost.

    .venv/bin/python bench/multinode.py [--pairs 20] [--messages 300] [--window 4]

Three set-ups, each with real ``cipherdesk serve`` processes (tests/e2e/procs.py) on the
same fresh PostgreSQL database, measured with the load of bench/relay.py (``drive``: N
customer/agent pairs, M messages each, customer → agent, at most ``--window`` in flight
per pair; latency from the customer's send to the agent's receipt):

    1node-mem      customer and agent on node A, in-process bus
    1node-redis    customer and agent on node A, every event through Redis (the default)
    1node-rlf      same with ``local_first=1``: local delivery, Redis only for other nodes
    2nodes-redis   customers on node A, agents on node B
    2nodes-rlf     same with ``local_first=1``
    1node-2workers one node running ``server.workers = 2`` (gateway/workers.py: two
                   processes on one port, Redis bus and Redis rate limits); connections
                   spread over both workers by the kernel
    1node-redisrl  one worker with what each of those two uses: Redis bus and Redis rate
                   limits -- the fair baseline of 1node-2workers

Same store everywhere, so 1node-redis minus 1node-mem is the cost of the Redis hop (seal +
PUBLISH + subscriber read + open), and the 2-node rows add the second process
(and, on a 2-core machine, competition for the CPUs with PostgreSQL, Redis and the
clients). Agents and their sessions are created straight in the store with
bench/relay.py's ``agent_session`` (set-up, not measured); rate limits are lifted.
Needs PostgreSQL and Redis as the tests do (local servers or throwaway ones).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from relay import (
    NO_LIMITS,
    Figures,
    _gateway_pair,
    agent_session,
    drive,
    process_cpu,
    quiet_logs,
)

from gateway.sdk.client import AgentClient, CustomerClient
from tests.e2e.procs import PUBLIC_URL, Cluster, new_master_key
from tests.services import postgres_server, redis_server

SETUPS = (  # name, nodes, bus, worker processes per node, Redis rate limits
    ("1node-mem", 1, "", 1, False),
    ("1node-redis", 1, "redis", 1, False),
    ("1node-rlf", 1, "redis&local_first=1", 1, False),
    ("2nodes-redis", 2, "redis", 1, False),
    ("2nodes-rlf", 2, "redis&local_first=1", 1, False),
    # Workers need shared budgets (gateway/workers.py): Redis limits.
    ("1node-2workers", 1, "redis", 2, True),
    ("1node-redisrl", 1, "redis", 1, True),
)


def limits_toml() -> str:
    lines = ["[ratelimit.limits]"]
    limits = {**NO_LIMITS, "login_per_ip": "100000/s", "login_per_account": "100000/s"}
    for name, value in limits.items():
        lines.append(f'{name} = "{value}"' if isinstance(value, str) else f"{name} = {value}")
    lines += ["", "[auth]", "argon2_memory_kib = 8192", "argon2_time_cost = 1"]
    return "\n".join(lines) + "\n"


async def make_tokens(dsn: str, master_key: str, workdir: Path, n: int) -> list[str]:
    """N confirmed agents of the demo tenant with live sessions, via offline services."""
    from gateway.cli.main import offline_services
    from gateway.config import load_config

    config = load_config(
        environ={"CIPHERDESK_MASTER_KEY": master_key},
        overrides={
            "server": {"data_dir": str(workdir / "admin")},
            "store": {"url": dsn},
            "auth": {"argon2_memory_kib": 8192, "argon2_time_cost": 1},
        },
    )
    async with offline_services(config) as svc:
        return [await agent_session(svc, i) for i in range(n)]


def machine_cpu() -> tuple[float, float]:
    """(busy, idle) CPU seconds of the whole machine since boot, all CPUs (/proc/stat)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    ticks = os.sysconf("SC_CLK_TCK")
    return (sum(values[:8]) - idle) / ticks, idle / ticks


def session_cpu(session: int) -> float:
    """CPU seconds (user + system) of the live processes of ``session``: a node started in
    its own session (tests/e2e/procs.py) with its worker processes."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text()
        except OSError:  # the process ended while /proc was listed
            continue
        if int(fields[fields.rindex(")") + 2 :].split()[3]) == session:
            total += sum(process_cpu(int(stat.parent.name)))
    return total


def own_cpu() -> float:
    """CPU seconds of this process (the load generator), all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class CpuShares:
    """Where the machine's CPUs went during one measured run, as shares of one CPU: what
    says whether a set-up was short of CPU (a second worker cannot speed up a node whose
    machine is already busy with PostgreSQL, Redis and the load generator)."""

    seconds: float
    messages: int
    gateway: float
    load: float
    busy: float
    idle: float

    def line(self) -> str:
        rest = self.busy - self.gateway - self.load
        return (
            f"{'':12} CPU of {os.cpu_count()} CPUs over the run: gateway "
            f"{self.gateway / self.seconds:.0%} ({1e6 * self.gateway / self.messages:.0f} µs/msg), "
            f"load generator {self.load / self.seconds:.0%}, "
            f"PostgreSQL + Redis + the rest {rest / self.seconds:.0%}, "
            f"idle {self.idle / self.seconds:.0%}"
        )


async def measure(
    cluster: Cluster, tokens: list[str], args: argparse.Namespace
) -> tuple[Figures, CpuShares]:
    customer_node = cluster.nodes[0]
    agent_node = cluster.nodes[-1]
    key = cluster.verify_key
    clients: list[Any] = []
    try:
        pairs = []
        for token in tokens:
            customer = CustomerClient(customer_node.url, "demo", origin=PUBLIC_URL, gateway_key=key)
            agent = AgentClient(agent_node.url, token=token, gateway_key=key)
            clients += [customer, agent]
            await customer.connect()
            welcome = await customer.open(profile={"name": "Bench", "topic": "parcel"})
            await agent.connect()
            await agent.accept(welcome.chat)
            pairs.append(_gateway_pair(customer, agent))
        if args.warmup:
            await drive(pairs, args.warmup, args.window, "warm")
        sessions = [node.proc.pid for node in cluster.nodes if node.proc is not None]
        gateway0 = sum(map(session_cpu, sessions))
        load0, (busy0, idle0) = own_cpu(), machine_cpu()
        figures = await drive(pairs, args.messages, args.window, "run")
        busy1, idle1 = machine_cpu()
        shares = CpuShares(
            seconds=figures.seconds,
            messages=figures.delivered,
            gateway=sum(map(session_cpu, sessions)) - gateway0,
            load=own_cpu() - load0,
            busy=busy1 - busy0,
            idle=idle1 - idle0,
        )
        return figures, shares
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.aclose()


async def run(args: argparse.Namespace) -> None:
    print(
        f"multinode: {args.pairs} pairs x {args.messages} msgs, window {args.window}, "
        f"warm-up {args.warmup}/pair, {os.cpu_count()} CPUs, PostgreSQL store, "
        f"python {sys.version.split()[0]}",
        flush=True,
    )
    master_key = new_master_key()
    results: dict[str, Figures] = {}
    with (
        postgres_server() as pg,
        redis_server() as redis,
        tempfile.TemporaryDirectory(prefix="cipherdesk-mn-") as tmp,
    ):
        dsn = pg.create_database()
        try:
            tokens: list[str] | None = None
            for index, (name, nodes, bus_kind, workers, redis_limits) in enumerate(SETUPS):
                if args.only and name not in args.only:
                    continue
                workdir = Path(tmp) / f"setup{index}"
                workdir.mkdir()
                bus = "memory://"
                if bus_kind:
                    bus = f"{redis.url}?prefix=cdbench:{os.getpid()}:" + bus_kind[len("redis") :]
                cluster = Cluster(
                    workdir,
                    store_url=dsn,
                    bus_url=bus,
                    ratelimit_url=redis.url if redis_limits else "memory://",
                    master_key=master_key,
                    config_toml=limits_toml(),
                    extra_env={"CIPHERDESK_SERVER_WORKERS": str(workers)},
                )
                try:
                    await cluster.start(nodes)
                    if tokens is None:
                        tokens = await make_tokens(dsn, master_key, Path(tmp), args.pairs)
                    figures, shares = await measure(cluster, tokens, args)
                finally:
                    cluster.stop()
                results[name] = figures
                print(figures.line(name), flush=True)
                print(shares.line(), flush=True)
        finally:
            pg.drop_database(dsn)
    for name, base in (
        ("1node-redis", "1node-mem"),
        ("1node-rlf", "1node-mem"),
        ("2nodes-redis", "1node-redis"),
        ("2nodes-rlf", "1node-rlf"),
        ("1node-2workers", "1node-redis"),
        ("1node-redisrl", "1node-redis"),
        ("1node-2workers", "1node-redisrl"),
    ):
        if name in results and base in results:
            print(f"{name} vs {base}: {compare(results[name], results[base])}")


def compare(a: Figures, b: Figures) -> str:
    return (
        f"throughput x{a.rate / b.rate:.2f}, p50 {a.pct(0.5) - b.pct(0.5):+.2f} ms, "
        f"p99 {a.pct(0.99) - b.pct(0.99):+.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=20, help="customer/agent pairs")
    parser.add_argument("--messages", type=int, default=300, help="messages per pair")
    parser.add_argument("--window", type=int, default=4, help="messages in flight per pair")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up messages per pair")
    parser.add_argument(
        "--only", type=lambda v: set(v.split(",")), default=set(), help="comma-separated set-ups"
    )
    args = parser.parse_args()
    quiet_logs()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
