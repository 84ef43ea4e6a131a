"""A node running two worker processes (``server.workers = 2``) on one port.

One real ``cipherdesk serve`` with PostgreSQL and Redis: the supervisor starts two
workers sharing the port (SO_REUSEPORT). Asserted:

- new connections are answered by both workers (the ``X-Cipherdesk-Worker`` header);
- a customer whose socket is on one worker chats, both ways, with an agent on the other;
- a killed worker is restarted by the supervisor and answers again, while the chat
  carries on;
- SIGTERM to the supervisor stops the whole node cleanly (exit 0, no worker left);
- with SQLite the node says why it runs one process, and runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from gateway.protocol import Ack, ChatEvent, Msg
from gateway.sdk.client import AgentClient, CustomerClient
from gateway.workers import WORKER_HEADER
from tests.e2e.procs import PUBLIC_URL, Cluster, Node, login

pytestmark = [pytest.mark.services, pytest.mark.timeout(180)]

PASSWORD = "two workers test passphrase 42"
CONFIG = """
[server]
workers = 2
shutdown_timeout = 2.0

[ratelimit.limits]
ws_connect_per_ip = "10000/60s"
concurrent_per_ip = 1000
login_per_ip = "1000/60s"
"""


def answering_worker(node: Node) -> str:
    """Which worker answers a new connection (urllib opens one per request)."""
    with urllib.request.urlopen(f"{node.url}/healthz", timeout=5) as resp:
        return resp.headers[WORKER_HEADER]


async def both_workers_answer(node: Node, within: float = 30.0) -> set[str]:
    seen: set[str] = set()
    deadline = time.monotonic() + within
    while seen != {"0", "1"}:
        assert time.monotonic() < deadline, f"only workers {seen} answered"
        with contextlib.suppress(OSError):
            seen.add(await asyncio.to_thread(answering_worker, node))
    return seen


def worker_pids(node: Node) -> list[int]:
    """The supervisor's children (its workers), from /proc."""
    assert node.proc is not None
    parent = node.proc.pid
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [int(pid) for pid in children]


async def customer_on_worker(node: Node, key: str, worker: str, tries: int = 60) -> CustomerClient:
    """A connected customer whose socket the given worker accepted."""
    for _ in range(tries):
        client = CustomerClient(node.url, "demo", origin=PUBLIC_URL, gateway_key=key)
        await client.connect()
        if client.upgrade_headers.get(WORKER_HEADER) == worker:
            return client
        await client.aclose()
    raise AssertionError(f"no customer socket landed on worker {worker} in {tries} tries")


@pytest.fixture
async def node(tmp_path: Path, postgres_dsn: str, redis_url: str, redis_prefix: str):
    cluster = Cluster(
        tmp_path,
        store_url=postgres_dsn,
        bus_url=f"{redis_url}?prefix={redis_prefix}bus:",
        ratelimit_url=redis_url,
        config_toml=CONFIG,
        extra_env={"CIPHERDESK_RATELIMIT_PREFIX": f"{redis_prefix}rl:"},
    )
    try:
        await cluster.start(1, within=60)
        yield cluster, cluster.nodes[0]
    finally:
        cluster.stop()


async def test_two_workers_share_the_port_chat_across_them_and_survive_a_worker_kill(
    node: tuple[Cluster, Node],
) -> None:
    cluster, gw = node
    assert await both_workers_answer(gw) == {"0", "1"}
    assert len(worker_pids(gw)) == 2
    key = cluster.verify_key
    secret = cluster.add_agent("wanda@example.com", PASSWORD)
    token = await login(gw.url, "wanda@example.com", PASSWORD, secret)

    agent = AgentClient(gw.url, token=token, gateway_key=key)
    await agent.connect()
    agent_worker = agent.upgrade_headers[WORKER_HEADER]
    other = "1" if agent_worker == "0" else "0"
    customer = await customer_on_worker(gw, key, other)
    try:
        welcome = await customer.open(profile={"name": "across workers"})
        assert welcome.chat is not None
        await agent.accept(welcome.chat)
        await customer.wait_for(
            lambda f: isinstance(f, ChatEvent) and f.event == "joined", timeout=10
        )
        assert isinstance(await customer.send_text("hello from worker " + other, "c1"), Ack)
        got = await agent.wait_for(lambda f: isinstance(f, Msg) and f.id == "c1", timeout=10)
        assert got.text == "hello from worker " + other
        assert isinstance(await agent.send_text(welcome.chat, "hi back", "a1"), Ack)
        back = await customer.wait_for(lambda f: isinstance(f, Msg) and f.id == "a1", timeout=10)
        assert back.text == "hi back"

        # Kill the customer's worker: the supervisor starts a new one on the same port.
        before = set(worker_pids(gw))
        victim = next(pid for pid in before if worker_index_of(pid) == other)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not (len(set(worker_pids(gw)) - before) == 1 and len(worker_pids(gw)) == 2):
            assert time.monotonic() < deadline, "the killed worker was not restarted"
            await asyncio.sleep(0.05)
        assert await both_workers_answer(gw) == {"0", "1"}

        # The customer comes back (to whichever worker) and the chat carries on.
        welcome = await customer.reconnect()
        assert welcome is not None and welcome.chat == customer.chat
        assert isinstance(await customer.send_text("still there?", "c2"), Ack)
        got = await agent.wait_for(lambda f: isinstance(f, Msg) and f.id == "c2", timeout=10)
        assert got.text == "still there?"
        history = await agent.history(welcome.chat, 0)
        assert [m.id for m in history] == ["c1", "a1", "c2"]
    finally:
        await customer.aclose()
        await agent.aclose()

    # SIGTERM to the supervisor: every worker drains and the node exits 0.
    pids = worker_pids(gw)
    assert gw.proc is not None
    gw.proc.terminate()
    assert gw.proc.wait(30) == 0
    for pid in pids:
        assert gone(pid), f"worker {pid} left behind"


def worker_index_of(pid: int) -> str:
    """The ``--worker-index`` value on a worker's command line."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[-2].decode()


def gone(pid: int) -> bool:
    """The process no longer exists (or is a zombie waiting for its reaper)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_sqlite_node_says_why_it_runs_one_process(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, store_url="", config_toml=CONFIG)
    try:
        await cluster.start(1, within=60)
        gw = cluster.nodes[0]
        assert WORKER_HEADER not in await asyncio.to_thread(_headers, gw)
        assert worker_pids(gw) == []
        assert "running one process: store.url is SQLite" in gw.log_tail()
    finally:
        cluster.stop()


def _headers(node: Node) -> dict[str, str]:
    with urllib.request.urlopen(f"{node.url}/healthz", timeout=5) as resp:
        return dict(resp.headers)
