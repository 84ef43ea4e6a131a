"""Resilience drills: the store or the bus goes away mid-chat and comes back.

Each drill runs a real gateway on a real socket with its own throwaway server (never the
shared PostgreSQL/Redis the rest of the suite uses), breaks that server while a customer
and an agent are chatting, and checks the promise of the protocol:

- **nothing acknowledged is lost**: every acked message is in the store afterwards, once,
  with gap-free seqs; a message refused during the outage is re-sent by the client and
  stored once;
- **clients see documented codes**: a socket whose message could not be stored is closed
  ``1013`` (docs/PROTOCOL.md); HTTP answers ``503 unavailable`` with ``Retry-After``;
- **the gateway recovers without a restart**: the same process serves again once the
  server is back.

The figures (recovery time, messages refused and re-sent) are printed; run with ``-s``
to see them (the closing notes quote them).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from gateway.protocol import Ack, ChatEvent, CloseCode, Msg
from gateway.sdk.client import ClosedError, CustomerClient
from gateway.services import STORE_UNAVAILABLE_REASON
from tests.e2e.conftest import SocketGateway, queue_with, running_gateway
from tests.gateway.helpers import start_gateway
from tests.services import (
    PostgresServer,
    port_open,
    run_postgres,
    run_redis,
    start_throwaway_postgres,
    start_throwaway_redis,
    unavailable,
    wait_for_port,
)

pytestmark = [pytest.mark.services, pytest.mark.timeout(120)]


# ---------------------------------------------------------------------------- helpers


async def send_until_refused(customer: CustomerClient, msg_id: str, within: float = 20.0) -> int:
    """Send ``msg_id`` until the gateway closes the socket (it cannot store it); returns
    the close code. The message stays in the client's outbox, unacknowledged."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            await customer.send_text("sent during the outage", msg_id, timeout=10)
        except ClosedError as exc:
            return exc.code or 0
        # Stored before the outage began (a pooled connection was still good): next one.
        msg_id += "+"
    raise AssertionError("the gateway never refused a message during the outage")


async def reconnect_and_flush(customer: CustomerClient, within: float = 30.0) -> tuple[float, int]:
    """Reconnect (resume) until the gateway takes the re-sent messages again; returns
    (seconds until the outbox was stored, failed attempts)."""
    start = time.monotonic()
    failures = 0
    while True:
        try:
            await customer.reconnect()
            await customer.flush(timeout=5)
            return time.monotonic() - start, failures
        except (ClosedError, TimeoutError, ConnectionError, OSError):
            failures += 1
            assert time.monotonic() - start < within, "the gateway did not recover"
            await asyncio.sleep(0.05)


async def stored_history(gw: SocketGateway, email: str, chat: str) -> list[Msg]:
    """The chat as stored, read through a fresh agent socket."""
    fresh = await gw.connect(email)
    try:
        return await fresh.history(chat, 0)
    finally:
        await fresh.aclose()


def assert_exactly_once(history: list[Msg], must_have: set[str]) -> None:
    ids = [m.id for m in history]
    assert [m.seq for m in history] == list(range(1, len(history) + 1)), "seq gap"
    assert len(ids) == len(set(ids)), "a message was stored twice"
    assert must_have <= set(ids), f"acked messages lost: {must_have - set(ids)}"


async def say(customer: CustomerClient, msg_id: str, acked: set[str]) -> None:
    result = await customer.send_text(f"text {msg_id}", msg_id, timeout=10)
    assert isinstance(result, Ack), result
    acked.add(msg_id)


# ---------------------------------------------------------------------------- PostgreSQL


def stop_postgres_fast(workdir: Path, proc: subprocess.Popen) -> None:
    """Fast shutdown (SIGINT to the postmaster itself, not to ``runuser``): every client
    connection is cut at once, as when a DBA restarts the server."""
    pid_file = workdir / "data" / "postmaster.pid"
    if proc.poll() is None and pid_file.exists():
        os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
    proc.wait(30)


@pytest.fixture
def own_postgres() -> Iterator[tuple[PostgresServer, Path, list[subprocess.Popen]]]:
    """A throwaway PostgreSQL this test may stop and start (same data, same port)."""
    server, proc, workdir = start_throwaway_postgres()
    procs = [proc]
    try:
        yield server, workdir, procs
    finally:
        stop_postgres_fast(workdir, procs[-1])
        shutil.rmtree(workdir, ignore_errors=True)


async def test_postgres_restart_mid_chat_loses_nothing_and_recovers(
    tmp_path: Path, own_postgres: tuple[PostgresServer, Path, list[subprocess.Popen]]
) -> None:
    server, workdir, procs = own_postgres
    dsn = server.create_database()
    async with running_gateway(tmp_path, store={"url": dsn}) as gw:
        agent = await gw.agent("pat@example.com")
        customer, welcome = await gw.accepted_chat(agent)
        acked: set[str] = set()
        try:
            for n in range(5):
                await say(customer, f"before-{n}", acked)

            # Fast shutdown: every connection of the pool is cut, new ones are refused.
            stop_postgres_fast(workdir, procs[-1])
            code = await send_until_refused(customer, "outage-0")
            assert code == CloseCode.TRY_AGAIN_LATER
            assert customer.close_reason == STORE_UNAVAILABLE_REASON
            refused = len(customer.outbox)
            assert refused >= 1

            async with aiohttp.ClientSession() as http:
                async with http.get(
                    f"{gw.base}/api/me",
                    headers={"Authorization": f"Bearer {gw.tokens['pat@example.com']}"},
                ) as resp:
                    assert resp.status == 503
                    assert (await resp.json())["error"]["code"] == "unavailable"
                    assert resp.headers["Retry-After"] == "2"
                async with http.get(f"{gw.base}/readyz") as resp:
                    assert resp.status == 503

            procs.append(run_postgres(workdir, server.port))
            wait_for_port(server.port, procs[-1], "PostgreSQL", seconds=30)
            recovery, failed = await reconnect_and_flush(customer)
            assert not customer.outbox
            for n in range(3):
                await say(customer, f"after-{n}", acked)
            history = await stored_history(gw, "pat@example.com", welcome.chat)
            resent = {m.id for m in history if m.id.startswith("outage-")}
            assert len(resent) == refused
            assert_exactly_once(history, acked | resent)
            print(
                f"\ndrill postgres restart: {refused} message(s) refused with 1013 and re-sent, "
                f"recovery {recovery:.2f} s after the port reopened ({failed} failed attempts), "
                f"{len(history)} messages stored once"
            )
        finally:
            await customer.aclose()
            await agent.aclose()


# ---------------------------------------------------------------------------- Redis


@contextlib.asynccontextmanager
async def two_nodes(tmp_path: Path, dsn: str, redis_url: str) -> AsyncIterator[list[SocketGateway]]:
    """Two gateways in this process: one PostgreSQL, one Redis (bus, presence, limits)."""
    shared = {
        "store": {"url": dsn},
        "bus": {"url": redis_url},
        "ratelimit": {"url": redis_url},
    }
    nodes: list[SocketGateway] = []
    runners = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            if nodes:  # same master key and signing identity on both nodes
                for key_file in ("master.key", "gateway_ed25519.key"):
                    source = tmp_path / "a" / "data" / key_file
                    if source.exists():
                        (tmp_path / name / "data").mkdir(exist_ok=True, mode=0o700)
                        shutil.copyfile(source, tmp_path / name / "data" / key_file)
                        os.chmod(tmp_path / name / "data" / key_file, 0o600)
            runner, base, svc = await start_gateway(tmp_path / name, **shared)
            runners.append(runner)
            nodes.append(SocketGateway(base, svc, tmp_path / name))
        yield nodes
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


async def test_redis_restart_between_two_nodes_loses_nothing(
    tmp_path: Path, postgres_dsn: str
) -> None:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is needed to restart Redis")
    redis = start_throwaway_redis()
    assert redis.proc is not None
    procs = [redis.proc]
    try:
        async with two_nodes(tmp_path, postgres_dsn, redis.url) as (node_a, node_b):
            await node_b.login("rai@example.com")
            agent = await node_b.connect("rai@example.com")
            customer = node_a.customer()
            await customer.connect()
            welcome = await customer.open(profile={"name": "bus drill"})
            await queue_with(agent, welcome.chat)
            await agent.accept(welcome.chat)
            await customer.wait_for(
                lambda f: isinstance(f, ChatEvent) and f.event == "joined", timeout=10
            )
            acked: set[str] = set()
            try:
                await say(customer, "before", acked)
                await agent.wait_for(lambda f: isinstance(f, Msg) and f.id == "before", timeout=10)

                procs[-1].kill()
                procs[-1].wait(10)
                # The store still takes messages: they are acked although no bus carries them.
                for n in range(5):
                    await say(customer, f"outage-{n}", acked)

                back_at = time.monotonic()
                procs.append(run_redis(redis.port))
                wait_for_port(redis.port, procs[-1], "Redis")
                # Live delivery resumes once both buses are re-subscribed; the first
                # message that arrives fills the gap from the store.
                first_live = None
                for n in range(200):
                    await say(customer, f"after-{n}", acked)
                    with contextlib.suppress(TimeoutError):
                        await agent.wait_for(
                            lambda f, n=n: isinstance(f, Msg) and f.id == f"after-{n}",
                            timeout=0.1,
                        )
                        first_live = time.monotonic() - back_at
                        break
                assert first_live is not None, "live delivery never resumed"
                # Frames not waited for stay buffered: the gap fill put the outage's there.
                seen = {f.id for f in agent.drain() if isinstance(f, Msg)}
                assert {f"outage-{n}" for n in range(5)} <= seen, "the gap was not filled"
                history = await stored_history(node_b, "rai@example.com", welcome.chat)
                assert_exactly_once(history, acked)
                print(
                    f"\ndrill redis restart: 5 messages acked while Redis was down, 0 refused; "
                    f"first live delivery {first_live:.2f} s after Redis was back, "
                    f"the agent's gap filled from the store"
                )
            finally:
                await customer.aclose()
                await agent.aclose()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(10)


# ---------------------------------------------------------------------------- SQLite


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs mounted for the test: a data dir whose disk can really fill up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        unavailable("mounting a small tmpfs needs root")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write zeros until the disk is full; returns the filler file.

    Unbuffered: a buffered file keeps the bytes of the write that failed and tries them
    again when it is closed, outside the suppression (ENOSPC from ``close``, now and then)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        for size in (64 * 1024, 512):  # then the last partial blocks
            with contextlib.suppress(OSError):
                while out.write(b"\0" * size):
                    pass
    return filler


async def test_sqlite_disk_full_refuses_with_1013_and_recovers(
    tmp_path: Path, small_disk: Path
) -> None:
    async with running_gateway(tmp_path, server={"data_dir": str(small_disk / "data")}) as gw:
        agent = await gw.agent("sid@example.com")
        customer, welcome = await gw.accepted_chat(agent)
        acked: set[str] = set()
        try:
            for n in range(3):
                await say(customer, f"before-{n}", acked)
            filler = await asyncio.to_thread(fill, small_disk)
            code = await send_until_refused(customer, "full-0")
            assert code == CloseCode.TRY_AGAIN_LATER
            refused = len(customer.outbox)

            freed_at = time.monotonic()
            filler.unlink()
            recovery, failed = await reconnect_and_flush(customer)
            recovery_from_free = time.monotonic() - freed_at
            for n in range(3):
                await say(customer, f"after-{n}", acked)
            history = await stored_history(gw, "sid@example.com", welcome.chat)
            resent = {m.id for m in history if m.id.startswith("full-")}
            assert len(resent) == refused
            assert_exactly_once(history, acked | resent)
            assert port_open("127.0.0.1", int(gw.base.rsplit(":", 1)[1]))
            print(
                f"\ndrill sqlite disk full: {refused} message(s) refused with 1013 and re-sent, "
                f"recovery {recovery_from_free:.2f} s after space was freed "
                f"({failed} failed attempts, reconnect {recovery:.2f} s)"
            )
        finally:
            await customer.aclose()
            await agent.aclose()
