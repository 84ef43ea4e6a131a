"""Abuse protection over real sockets, one gateway node (issue 5).

Every test runs the real gateway (``start_gateway``: ``create_app`` on a free loopback
port) and talks to it with the SDK (``gateway/sdk/client.py``) or raw ``websockets``. Limits are
configured tight ("N per hour") instead of sleeping: a refill never happens within a test,
so every decision is exact.

Two client IPs on one machine: all of 127.0.0.0/8 is loopback on Linux, so a client whose
socket is bound to 127.0.0.2 is seen by the gateway (``request.remote``) as a different
address than one bound to 127.0.0.3. :class:`Bound` clients do that through ``local_addr``.

The slow-reader test runs ``cipherdesk serve`` as a subprocess so that the server's RSS can
be read from ``/proc/<pid>/status`` apart from the test's own memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect as raw_connect
from websockets.exceptions import ConnectionClosed

import gateway.sdk.client as sdk
from gateway.protocol import (
    Ack,
    AgentMsg,
    ChatEvent,
    CloseCode,
    Msg,
    Notice,
    Pong,
)
from gateway.sdk.client import AgentClient, ClosedError, CustomerClient
from tests.e2e.conftest import SocketGateway, queue_with
from tests.e2e.procs import Cluster, Node
from tests.gateway.helpers import eventually, start_gateway
from tests.services import unavailable

ROOT = Path(__file__).resolve().parents[2]
FLOOD_IP = "127.0.0.2"
HONEST_IP = "127.0.0.3"
RETRY_AFTER = re.compile(r"retry-after=(\d+)")


def _loopback_aliases_work() -> bool:
    try:
        with socket.socket() as s:
            s.bind((FLOOD_IP, 0))
        return True
    except OSError:
        return False


@pytest.fixture
def loopback_aliases() -> None:
    """Source addresses across 127.0.0.0/8 (Linux routes the whole block to loopback)."""
    if not sys.platform.startswith("linux") or not _loopback_aliases_work():
        unavailable("needs 127.0.0.0/8 routed to loopback (Linux)")


needs_aliases = pytest.mark.usefixtures("loopback_aliases")


# --------------------------------------------------------------- clients with a source IP

_SOURCE_IP: contextvars.ContextVar[str | None] = contextvars.ContextVar("source_ip", default=None)
_real_ws_connect = sdk.ws_connect


def _ws_connect_from_source(*args: Any, **kwargs: Any) -> Any:
    """``websockets.connect`` binding the client socket to the current source IP, if any."""
    ip = _SOURCE_IP.get()
    if ip is not None:
        kwargs.setdefault("local_addr", (ip, 0))
    return _real_ws_connect(*args, **kwargs)


@pytest.fixture(autouse=True)
def _bindable_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sdk, "ws_connect", _ws_connect_from_source)


class _Bound:
    source_ip: str | None = None

    async def connect(self) -> Any:
        token = _SOURCE_IP.set(self.source_ip)
        try:
            return await super().connect()  # type: ignore[misc]
        finally:
            _SOURCE_IP.reset(token)


class BoundCustomer(_Bound, CustomerClient):
    """A customer whose socket leaves from ``source_ip``."""

    def __init__(self, *args: Any, source_ip: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.source_ip = source_ip


# ----------------------------------------------------------------------------- fixtures


@dataclass
class Gateway(SocketGateway):
    """The shared in-process gateway, with customers bound to a chosen source address."""

    @property
    def ws_base(self) -> str:
        return self.base.replace("http://", "ws://")

    def customer(  # type: ignore[override]
        self, source_ip: str | None = None, *, origin: str | None = None
    ) -> BoundCustomer:
        return BoundCustomer(
            self.base,
            "demo",
            origin=self.base if origin is None else origin,
            gateway_key=self.svc.identity.verify_key_b64,
            source_ip=source_ip,
        )

    async def agent_token(self, email: str) -> str:
        await self.login(email)
        return self.tokens[email]

    def limited(self, scope: str) -> float:
        return self.svc.metrics.value("cipherdesk_rate_limited_total", {"scope": scope})

    async def scrape(self, token: str | None = None) -> tuple[int, str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.base}/metrics", headers=headers) as resp,
        ):
            return resp.status, await resp.text()


@contextlib.asynccontextmanager
async def gateway(tmp_path: Path, **overrides: Any) -> AsyncIterator[Gateway]:
    runner, base, svc = await start_gateway(tmp_path, **overrides)
    try:
        yield Gateway(base, svc, tmp_path)
    finally:
        await runner.cleanup()


async def _queued(agent: AgentClient, chat: str) -> None:
    """Wait until ``chat`` is in the queue the agent sees (generous: a loaded machine)."""
    await queue_with(agent, chat, within=20)


def _retry_after(reason: str | None) -> int:
    found = RETRY_AFTER.search(reason or "")
    assert found, f"no retry-after in close reason {reason!r}"
    return int(found.group(1))


def _sample(text: str, name: str, **labels: str) -> float | None:
    """One sample's value from a Prometheus text exposition (None when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == (f"{name}{{{want}}}" if labels else name):
            return float(value)
    return None


# ------------------------------------------------------------- 1. flood vs. honest chat


@needs_aliases
async def test_flood_from_one_ip_is_limited_while_another_ip_chats(tmp_path: Path) -> None:
    limits = {
        "ws_connect_per_ip": "6/h",
        "messages_per_customer": "4/h",  # keyed by the customer's IP
        "messages_per_chat": "1000/h",
        "strike_threshold": 3,
        "strike_window": 3600,
    }
    async with gateway(tmp_path, ratelimit={"limits": limits}) as gw:
        agent = await gw.agent("alice@example.com")

        async def flood() -> dict[str, Any]:
            out: dict[str, Any] = {}
            # (a) message flood from one socket: 4 acks, notices, then 4429 on strikes
            spammer = gw.customer(FLOOD_IP)
            await spammer.connect()
            await spammer.open(profile={"name": "Spam Bot"})
            results: list[Any] = []
            with pytest.raises(ClosedError) as closed:
                for i in range(20):
                    results.append(await spammer.send_text(f"buy cheap watches #{i}"))
            out["results"], out["msg_close"] = results, closed.value
            # (b) connect flood: the budget (6/h, one already spent) runs out, then 4429
            accepted, refusals = 0, []
            for _ in range(10):
                bot = gw.customer(FLOOD_IP)
                try:
                    await bot.connect()
                    accepted += 1
                    await bot.aclose()
                except ClosedError as exc:
                    refusals.append(exc)
            out["accepted"], out["refusals"] = accepted, refusals
            return out

        async def honest() -> list[Any]:
            customer = gw.customer(HONEST_IP)
            await customer.connect()
            welcome = await customer.open(profile={"name": "Ada"})
            await _queued(agent, welcome.chat)
            await agent.accept(welcome.chat)
            await customer.wait_for(lambda f: isinstance(f, ChatEvent) and f.event == "joined")
            got: list[Any] = []
            for i in range(4):  # as many as the flood's whole budget: a budget of its own
                got.append(await customer.send_text(f"question {i}"))
                msg = await agent.wait_for(
                    lambda f, i=i: isinstance(f, Msg) and f.text == f"question {i}"
                )
                assert msg.chat == welcome.chat
                await agent.send_text(welcome.chat, f"answer {i}")
                reply = await customer.wait_for(
                    lambda f, i=i: isinstance(f, Msg) and f.text == f"answer {i}"
                )
                assert reply.sender == "agent"
            closed = await customer.close(csat=5)
            assert closed is not None and closed.event == "closed"
            await customer.aclose()
            return got

        flood_out, honest_acks = await asyncio.gather(flood(), honest())

        results = flood_out["results"]
        assert [type(r) for r in results[:4]] == [Ack] * 4
        notices = results[4:]
        assert len(notices) == 2, results  # two notices, the third strike closes
        for notice in notices:
            assert isinstance(notice, Notice) and notice.action == "limited"
            assert notice.retry_after and notice.retry_after > 0
        close = flood_out["msg_close"]
        assert close.code == CloseCode.RATE_LIMITED, close
        assert 1 <= _retry_after(close.reason) <= 900

        assert flood_out["accepted"] == 5, "6 connects per hour, one spent by the spammer"
        refusals = flood_out["refusals"]
        assert len(refusals) == 5
        for exc in refusals:
            assert exc.code == CloseCode.RATE_LIMITED
            assert 1 <= _retry_after(exc.reason) <= 600

        # the honest customer on the other IP was never limited
        assert all(isinstance(a, Ack) for a in honest_acks), honest_acks
        assert gw.limited("ws_connect") == 5
        assert gw.limited("messages_per_customer") == 3
        assert gw.limited("messages_per_chat") == 0

        # and is still welcome after the flood, while the flooding IP is still refused
        late = gw.customer(HONEST_IP)
        await late.connect()
        await late.aclose()
        with pytest.raises(ClosedError) as again:
            await gw.customer(FLOOD_IP).connect()
        assert again.value.code == CloseCode.RATE_LIMITED
        await agent.aclose()


@needs_aliases
async def test_gateway_sees_each_source_address(tmp_path: Path) -> None:
    """The premise of the flood test: a bound socket's address is what the gateway keys on."""
    async with gateway(tmp_path, ratelimit={"limits": {"ws_connect_per_ip": "1/h"}}) as gw:
        for ip in (FLOOD_IP, HONEST_IP, "127.0.0.4"):
            client = gw.customer(ip)
            await client.connect()  # each address has its own single connect
            await client.aclose()
        for ip in (FLOOD_IP, HONEST_IP):
            with pytest.raises(ClosedError) as refused:
                await gw.customer(ip).connect()
            assert refused.value.code == CloseCode.RATE_LIMITED


# ----------------------------------------------------------------------------- 2. Origin


async def test_wrong_or_missing_origin_is_refused(tmp_path: Path) -> None:
    async with gateway(tmp_path) as gw:
        for origin in ("https://evil.example", "http://127.0.0.1:1", "null", ""):
            with pytest.raises(ClosedError) as refused:
                await gw.customer(origin=origin).connect()
            assert refused.value.code == CloseCode.FORBIDDEN, origin
            assert "origin" in (refused.value.reason or "")

        token = await gw.agent_token("alice@example.com")
        key = gw.svc.identity.verify_key_b64
        for kwargs in (
            {"token": token, "origin": "https://evil.example"},  # bearer + foreign origin
            {"cookie": token, "origin": "https://evil.example"},  # CSWSH with the cookie
            {"cookie": token},  # cookie without Origin
        ):
            with pytest.raises(ClosedError) as refused:
                await AgentClient(gw.base, gateway_key=key, **kwargs).connect()
            assert refused.value.code == CloseCode.FORBIDDEN, kwargs

        # the same credentials from the right origin work
        ok = gw.customer()
        await ok.connect()
        await ok.aclose()
        agent = AgentClient(gw.base, cookie=token, origin=gw.base, gateway_key=key)
        assert (await agent.connect()).agent
        await agent.aclose()
        assert (
            gw.svc.metrics.value("cipherdesk_connections_refused_total", {"reason": "origin"}) == 7
        )


# -------------------------------------------------------------------- 3. oversized frames


async def test_oversized_frame_is_closed_with_1009(tmp_path: Path) -> None:
    async with gateway(tmp_path, websocket={"max_frame_bytes": 8192}) as gw:
        url = f"{gw.ws_base}/ws/customer?tenant=demo"
        # before the handshake: a giant "key" frame
        async with raw_connect(url, origin=gw.base, compression=None) as ws:
            await ws.recv()  # hello
            await ws.send("x" * 20_000)
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == CloseCode.TOO_BIG

        # after the handshake, through the SDK's socket
        customer = gw.customer()
        await customer.connect()
        await customer.open()
        assert customer._ws is not None
        await customer._ws.send('{"t":"sealed","n":2,"c":"' + "A" * 12_000 + '"}')
        code, _ = await customer.wait_closed(5)
        assert code == CloseCode.TOO_BIG

        # a message fragmented into small frames is still judged by its total size
        async with raw_connect(url, origin=gw.base, compression=None) as ws:
            await ws.recv()
            await ws.send(iter(["y" * 4000] * 4))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == CloseCode.TOO_BIG

        # a frame under the limit is fine
        ok = gw.customer()
        await ok.connect()
        await ok.open()
        assert isinstance(await ok.send_text("z" * 3000), Ack)
        await ok.aclose()


async def test_byte_flood_below_frame_size_gets_4429(tmp_path: Path) -> None:
    limits = {"bytes_per_connection": "4096/h burst=4096", "messages_per_chat": "1000/h"}
    async with gateway(tmp_path, ratelimit={"limits": limits}) as gw:
        customer = gw.customer()
        await customer.connect()
        await customer.open()
        with pytest.raises(ClosedError) as closed:
            for _ in range(10):
                await customer.send_text("w" * 1500)
        assert closed.value.code == CloseCode.RATE_LIMITED
        assert _retry_after(closed.value.reason) >= 1
        assert gw.limited("bytes_per_connection") == 1


# ------------------------------------------------------------------- 5. global connection cap


async def test_global_connection_cap_refuses_cleanly(tmp_path: Path) -> None:
    async with gateway(tmp_path, ratelimit={"limits": {"global_connections": 3}}) as gw:
        held = [gw.customer() for _ in range(3)]
        for client in held:
            await client.connect()
        for _ in range(2):
            with pytest.raises(ClosedError) as refused:
                await gw.customer().connect()
            assert refused.value.code == CloseCode.TRY_AGAIN_LATER
            assert _retry_after(refused.value.reason) >= 1
        # the cap counts agents too
        token = await gw.agent_token("alice@example.com")
        with pytest.raises(ClosedError) as agent_refused:
            await AgentClient(gw.base, token=token).connect()
        assert agent_refused.value.code == CloseCode.TRY_AGAIN_LATER
        # the held connections are unaffected
        await held[0].open()
        assert isinstance(await held[0].send_text("still fine"), Ack)
        # a freed slot is usable again
        await held[1].aclose()
        await eventually(lambda: gw.svc.guard.concurrency.count("global") == 2, "two slots held")
        again = gw.customer()
        await again.connect()
        assert gw.limited("global_connections") == 3
        assert (
            gw.svc.metrics.value("cipherdesk_connections_refused_total", {"reason": "capacity"})
            == 3
        )
        for client in (again, held[0], held[2]):
            await client.aclose()
        await eventually(lambda: gw.svc.guard.concurrency.count("global") == 0, "every slot freed")


# ----------------------------------------------------------- 6. handshake and idle timeouts


async def test_handshake_timeout_closes_1008(tmp_path: Path) -> None:
    async with gateway(tmp_path, websocket={"handshake_timeout": 1.0}) as gw:
        url = f"{gw.ws_base}/ws/customer?tenant=demo"
        start = time.monotonic()  # before the server can start its timer
        async with raw_connect(url, origin=gw.base, compression=None) as ws:
            await ws.recv()  # hello; then silence
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 20)
            elapsed = time.monotonic() - start
        assert ws.close_code == CloseCode.POLICY
        assert ws.close_reason == "handshake timeout"
        # Never early; late only by scheduling delay (a loaded 2-core machine: seconds).
        assert 1.0 <= elapsed < 15


async def test_handshake_timeout_holds_against_pings(tmp_path: Path) -> None:
    """Slowloris on the handshake: aiohttp's ``receive(timeout=)`` restarts its timer on
    every ping it answers itself; the gateway's deadline must not."""
    async with gateway(tmp_path, websocket={"handshake_timeout": 0.5}) as gw:
        url = f"{gw.ws_base}/ws/customer?tenant=demo"
        async with raw_connect(url, origin=gw.base, compression=None, ping_interval=None) as ws:
            await ws.recv()

            async def keep_pinging() -> None:
                while True:
                    with contextlib.suppress(Exception):
                        await ws.ping()
                    await asyncio.sleep(0.1)

            pinger = asyncio.create_task(keep_pinging())
            try:
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 15)
            except TimeoutError:
                raise AssertionError("still open 15 s after a 0.5 s handshake timeout") from None
            finally:
                pinger.cancel()
        assert ws.close_code == CloseCode.POLICY


async def test_idle_timeout_closes_a_silent_socket(tmp_path: Path) -> None:
    # 1.5 s: a ping every 0.2 s keeps well inside it even when the machine is loaded.
    async with gateway(tmp_path, websocket={"idle_timeout": 1.5, "heartbeat": 0}) as gw:
        customer = gw.customer()
        customer.open_timeout = 5
        await customer.connect()
        await customer.open()
        start = time.monotonic()
        code, reason = await customer.wait_closed(20)
        assert code == CloseCode.GOING_AWAY and reason == "idle timeout"
        assert time.monotonic() - start < 15  # the idle timeout, not the 600 s default
        # activity keeps a socket open past the idle timeout (2.4 s of pings > 1.5 s)
        busy = gw.customer()
        await busy.connect()
        await busy.open()
        for _ in range(12):
            await asyncio.sleep(0.2)
            await busy.ping()
        assert busy.connected
        await busy.aclose()


async def test_idle_timeout_holds_with_heartbeat_on(tmp_path: Path) -> None:
    """Heartbeat pongs are not activity: with heartbeat < idle_timeout (as by default,
    30 s vs 600 s) an idle socket must still be closed."""
    async with gateway(tmp_path, websocket={"idle_timeout": 0.6, "heartbeat": 0.2}) as gw:
        customer = gw.customer()
        await customer.connect()
        await customer.open()
        try:
            code, reason = await customer.wait_closed(3)
        except TimeoutError:
            raise AssertionError("idle socket still open 3 s after a 0.6 s idle timeout") from None
        finally:
            await customer.aclose()
        assert code == CloseCode.GOING_AWAY and reason == "idle timeout"


# --------------------------------------------------------------------------- 7. /metrics


async def test_metrics_count_limited_requests_by_scope(tmp_path: Path) -> None:
    limits = {"ws_connect_per_ip": "3/h", "messages_per_chat": "2/h"}
    async with gateway(tmp_path, ratelimit={"limits": limits}) as gw:
        customer = gw.customer()
        await customer.connect()
        await customer.open()
        sent = [await customer.send_text(f"m{i}") for i in range(4)]
        assert [type(s) for s in sent] == [Ack, Ack, Notice, Notice]
        await customer.aclose()
        for _ in range(2):
            with contextlib.suppress(ClosedError):
                c = gw.customer()
                await c.connect()
                await c.aclose()
        for _ in range(3):
            with pytest.raises(ClosedError):
                await gw.customer().connect()

        status, text = await gw.scrape()  # loopback, no token configured
        assert status == 200
        assert _sample(text, "cipherdesk_rate_limited_total", scope="ws_connect") == 3
        assert _sample(text, "cipherdesk_rate_limited_total", scope="messages_per_chat") == 2
        assert _sample(text, "cipherdesk_ratelimit_degraded") == 0
        assert "cipherdesk_ws_closed_total" in text


async def test_metrics_need_the_configured_token(tmp_path: Path) -> None:
    secret = "metrics-token-0123456789"
    async with gateway(tmp_path, metrics={"token": secret}) as gw:
        status, body = await gw.scrape()
        assert status == 403 and "cipherdesk_" not in body
        status, body = await gw.scrape("wrong-token")
        assert status == 403 and "cipherdesk_" not in body
        status, body = await gw.scrape(secret)
        assert status == 200 and "cipherdesk_ratelimit_degraded" in body


@needs_aliases
async def test_metrics_without_token_are_loopback_only(tmp_path: Path) -> None:
    """No token configured: only loopback peers may scrape. 127.0.0.2 is loopback too —
    what is checked is that the peer, not a forwarded header, decides."""
    async with gateway(tmp_path) as gw:
        status, _ = await gw.scrape()
        assert status == 200
        async with (
            aiohttp.ClientSession(headers={"X-Forwarded-For": "203.0.113.9"}) as http,
            http.get(f"{gw.base}/metrics") as resp,
        ):
            assert resp.status == 200  # XFF from an untrusted peer is ignored


# ----------------------------------------------------------- 4. slow reader, bounded memory


def _vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def _scrape(base: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


SLOW_QUEUE = 8
#: How much of the server's log the slow-reader tests search (the whole log, in practice).
SERVER_LOG_LINES = 100_000
SLOW_TEXT = "x" * 3900  # ~5.3 KB sealed: fills the socket buffers with few messages
RSS_BOUND_MIB = 8
AFTER_CUTOFF = 2500  # ~9.3 MiB more into the chat once the slow socket is gone


async def _connections(base: str, kind: str) -> float | None:
    return _sample(await _scrape(base), "cipherdesk_connections", kind=kind)


async def _until_async(probe: Any, want: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while (got := await probe()) != want:
        if time.monotonic() > deadline:
            raise AssertionError(f"still {got!r}, not {want!r}, after {within} s")
        await asyncio.sleep(0.1)


def _stop_reading(client: CustomerClient) -> Any:
    """Stop reading the client's socket for good (until :func:`_read_again`): the kernel
    buffers fill and the server's writes block. ``websockets`` pauses/resumes the transport
    itself for flow control, so its ``resume_reading`` is disabled meanwhile.

    The client's own keepalive is stopped too: a client that does not read cannot see
    pongs, and websockets would fail the connection itself after ``ping_timeout`` (20 s) —
    on a loaded machine the test outlasts that and saw 1006 instead of the server's 1008.
    A stalled browser tab does not ping either."""
    assert client._ws is not None
    if client._ws.keepalive_task is not None:
        client._ws.keepalive_task.cancel()
    transport = client._ws.transport
    transport.pause_reading()
    transport.resume_reading = lambda: None
    return transport


def _read_again(transport: Any) -> None:
    del transport.resume_reading
    transport.resume_reading()


@dataclass
class SlowSetup:
    node: Node
    agent: AgentClient
    reader: CustomerClient  # stops reading
    honest: CustomerClient  # keeps reading
    chat: str


@contextlib.asynccontextmanager
async def slow_reader_setup(
    tmp_path: Path, grace: float, event_loop: str = "uvloop"
) -> AsyncIterator[SlowSetup]:
    """A ``cipherdesk serve`` subprocess with a tiny send queue, an agent that has accepted
    the slow customer's chat, and an honest customer on the same node. ``grace`` is how
    long the server waits for a cut-off reader to make read progress before aborting it;
    ``event_loop`` is the server's ``server.event_loop``."""
    from tests.e2e.procs import login as totp_login

    cluster = Cluster(
        tmp_path / "serve",
        store_url=f"sqlite:///{tmp_path / 'serve' / 'cipherdesk.db'}",
        config_toml=(
            f'[server]\nevent_loop = "{event_loop}"\n'
            f"[websocket]\nsend_queue = {SLOW_QUEUE}\nslow_consumer_grace = {grace}\n"
            '[ratelimit.limits]\nmessages_per_agent = "100000/s"\n'
            'bytes_per_connection = "100000/s burst=1000000000"\n'
        ),
    )
    cluster.workdir.mkdir()
    email, password = "flood@example.com", "slow reader test passphrase 42"
    # the agent exists before the server starts: one SQLite writer at a time
    secret = await asyncio.to_thread(cluster.add_agent, email, password)
    (node,) = await cluster.start(1, within=60)
    try:
        key = cluster.verify_key
        agent = AgentClient(
            node.url, token=await totp_login(node.url, email, password, secret), gateway_key=key
        )
        await agent.connect()
        reader = CustomerClient(node.url, "demo", origin=node.url, gateway_key=key)
        honest = CustomerClient(node.url, "demo", origin=node.url, gateway_key=key)
        try:
            await reader.connect()
            welcome = await reader.open()
            await _queued(agent, welcome.chat)
            await agent.accept(welcome.chat)
            await reader.wait_for(lambda f: isinstance(f, ChatEvent) and f.event == "joined")
            await honest.connect()
            await honest.open()
            for i in range(50):  # warm the message path (store, policy, bus) up
                await agent.send_text(welcome.chat, f"warm-up {i}")
            await reader.ping()  # barrier: every warm-up frame is queued before the pong
            reader.drain()
            yield SlowSetup(node, agent, reader, honest, welcome.chat)
        finally:
            for client in (agent, reader, honest):
                await client.aclose()
    finally:
        cluster.stop()


async def _flood(s: SlowSetup, count: int | None, tag: str) -> int:
    """Agent → chat, big messages without waiting for acks, paced by a ping every 25.
    ``count=None``: until the server logs the slow consumer. Returns messages sent."""
    for i in range(count or 20_000):
        await s.agent.send(AgentMsg(chat=s.chat, id=f"{tag}-{i}", text=SLOW_TEXT))
        if i % 25 == 24:
            await s.agent.ping()  # the server has handled everything before it
            s.agent.drain()
            if count is None and "slow_consumer" in s.node.log_tail(SERVER_LOG_LINES):
                return i + 1
    if count is None:
        raise AssertionError(f"never cut off:\n{s.node.log_tail(SERVER_LOG_LINES)}")
    await s.agent.ping()
    return count


# ~15 s idle, over 100 s on a 2-core machine under heavy load (measured: load 16).
@pytest.mark.timeout(480)
async def test_slow_reader_is_cut_off_and_memory_stays_bounded(tmp_path: Path) -> None:
    # The reader reads again only after the second flood; on a loaded machine that took
    # longer than the default 7 s grace and the server aborted it (1006, not 1008). The
    # grace is far longer than the test here, so the close frame is always waiting for it.
    async with slow_reader_setup(tmp_path, grace=120.0) as s:
        rss_before = _vm_rss_kib(s.node.proc.pid)
        transport = _stop_reading(s.reader)
        cut_at = await _flood(s, None, "flood")
        # the chat goes on; the server's memory does not follow the flood
        await _flood(s, AFTER_CUTOFF, "after")
        assert isinstance(await s.honest.ping(), Pong)
        rss_after = _vm_rss_kib(s.node.proc.pid)
        flooded_mib = (cut_at + AFTER_CUTOFF) * len(SLOW_TEXT) / 2**20
        growth_mib = (rss_after - rss_before) / 1024
        print(
            f"\nslow reader: send_queue={SLOW_QUEUE}, cut off after {cut_at} messages "
            f"({cut_at * len(SLOW_TEXT) / 2**20:.1f} MiB); flood {flooded_mib:.1f} MiB in "
            f"total; server RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MiB "
            f"(+{growth_mib:.1f})"
        )
        assert flooded_mib > RSS_BOUND_MIB
        assert growth_mib < RSS_BOUND_MIB

        # once it reads again, the client drains what was in flight and learns why
        _read_again(transport)
        code, reason = await s.reader.wait_closed(15)
        assert (code, reason) == (CloseCode.POLICY, "slow consumer")
        got = sum(isinstance(f, Msg) for f in s.reader.drain())
        assert 0 < got < cut_at  # what was in the socket buffers and the bounded queue
        metrics = await _scrape(s.node.url)
        assert _sample(metrics, "cipherdesk_ws_closed_total", code="1008") == 1
        await _until_async(lambda: _connections(s.node.url, "customer"), 1.0, within=5)


# ~15 s idle, over 100 s on a 2-core machine under heavy load (measured: load 16).
@pytest.mark.timeout(480)
@pytest.mark.parametrize("event_loop", ["uvloop", "asyncio"])
async def test_slow_reader_socket_is_released_without_its_cooperation(
    tmp_path: Path, event_loop: str
) -> None:
    """A slow consumer that never reads again must not hold its socket, slot and handler
    until the idle timeout (aiohttp's close would wait on its full buffer forever). On
    both event loops: uvloop's transport is not an ``asyncio.WriteTransport`` subclass, and
    a check that assumed it once left the socket in place there."""
    async with slow_reader_setup(tmp_path, grace=1.0, event_loop=event_loop) as s:
        _stop_reading(s.reader)
        await _flood(s, None, "flood")
        # never reads again: the server must still free the connection (slot, socket)
        # within 4 x grace (+ 0.5 s checks); the margin is for a loaded machine
        await _until_async(lambda: _connections(s.node.url, "customer"), 1.0, within=30)
