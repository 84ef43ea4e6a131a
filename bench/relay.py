"""End-to-end relay cost of the gateway against a bare websocket relay, in the same run.

    .venv/bin/python bench/relay.py [--pairs 20] [--messages 200] [--window 4]
    .venv/bin/python bench/relay.py --idle 1000

Relay mode (default) starts, in this process, (1) the real gateway
(``gateway.app.create_app`` on a temporary SQLite data dir, AppRunner on a free loopback
port) and (2) a baseline: a bare aiohttp websocket server that forwards each text frame
of a customer socket to its paired agent socket (no crypto, no policy, no storage, no
bus). N customer/agent pairs then push M messages each, customer → agent, with at most
``--window`` messages in flight per pair. Figures: delivered messages/s and p50/p99
latency from the customer's send to the agent's receipt, for both, and the ratio
pipeline/baseline. The gateway runs twice: ``gateway+echo`` with customers that ask for
their own messages back (``key.echo``, the protocol's default) and ``gateway`` without,
as the widget connects. A further run (``e2e``) switches the demo tenant to end-to-end mode
(issue 13: certified agent devices, the customer's end sealing and the agent's end opening
every message) and reports e2e/inspect. Clients run in the same process and event loop as
the servers, so all figures include client-side costs (for the gateway: sealing and
opening frames; for e2e also the ends' message sealing and opening).

``--webhook`` adds a ``gateway+webhook`` pass with the demo tenant's webhook plugin
delivering every message to a loopback sink in a third process (bench/README.md).

Idle mode (``--idle N``) starts ``cipherdesk serve`` in a subprocess (so server and
client memory are separate), opens a warm-up batch of customer sockets, reads the
server's VmRSS, opens N more idle customer sockets (handshake done, chat open), reads
VmRSS again and reports the difference per connection.

Rate limits are lifted for the benchmark (one loopback address plays every customer);
argon2 is cheapened because agent creation is set-up, not the measured path.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from aiohttp import WSMsgType, web
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from gateway.event_loop import EVENT_LOOPS
from gateway.protocol import AgentMsg, CustomerMsg, Msg
from gateway.sdk.client import AgentClient, CustomerClient

REPO = str(Path(__file__).resolve().parents[1])
TEXT = "Hello, I would like to know when my parcel will arrive. Thank you!"
TEXTS = [TEXT]
"""What the customers send, in turn: the one line above (``--texts fixed``), or the
policy bench's corpus of realistic Chinese and English chat lines (``--texts varied``:
new words in most messages, as in real chats, which the search index and the policy see)."""


def text_for(pair: int, i: int) -> str:
    return TEXTS[(pair * 7919 + i) % len(TEXTS)]


NO_LIMITS: dict[str, Any] = {
    # 100000/s is the finest rate the limiter accepts (one unit per 10 µs).
    "ws_connect_per_ip": "100000/s",
    "concurrent_per_ip": 10_000_000,
    "concurrent_per_tenant": 10_000_000,
    "global_connections": 10_000_000,
    "messages_per_chat": "100000/s",
    "messages_per_customer": "100000/s",
    "messages_per_agent": "100000/s",
    "bytes_per_connection": "100000/s burst=100000000",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def quiet_logs() -> None:
    """Warnings only: per-connection info logs would dominate the measurement."""
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.getLogger("aiohttp").setLevel(logging.WARNING)


# --------------------------------------------------------------------------- the load


@dataclass(slots=True)
class Pair:
    """One customer→agent path: ``send(tag)`` on one end, ``recv() -> tag`` on the other."""

    send: Callable[[str, str], Awaitable[None]]  # (tag, text)
    recv: Callable[[], Awaitable[str]]


@dataclass(slots=True)
class Figures:
    delivered: int
    seconds: float
    latencies: list[float]
    # CPU seconds (user, system) the server process spent in the run (--split only).
    server_cpu: tuple[float, float] | None = None

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0

    def line(self, name: str) -> str:
        text = (
            f"{name:<12} {self.delivered:>7} msgs in {self.seconds:6.2f} s "
            f"{self.rate:>9.0f} msg/s   p50 {self.pct(0.50):7.2f} ms   "
            f"p99 {self.pct(0.99):7.2f} ms"
        )
        if self.server_cpu is not None:
            user, system = (1e6 * t / self.delivered for t in self.server_cpu)
            busy = sum(self.server_cpu) / self.seconds
            text += f"   server CPU {user + system:5.0f} µs/msg (sys {system:.0f}), {busy:.0%}"
        return text


def process_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of process ``pid``, all its threads (/proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    ticks = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / ticks, int(fields[12]) / ticks


async def drive(
    pairs: list[Pair], messages: int, window: int, phase: str, server_pid: int | None = None
) -> Figures:
    """Every pair sends ``messages`` with at most ``window`` in flight; returns figures
    (with the CPU time of process ``server_pid`` over the run, when given)."""
    latencies: list[float] = []

    async def one(index: int, pair: Pair) -> None:
        sent_at: dict[str, float] = {}
        slots = asyncio.Semaphore(window)

        async def sender() -> None:
            for i in range(messages):
                await slots.acquire()
                tag = f"{phase}-{index}-{i}"
                sent_at[tag] = time.perf_counter()
                await pair.send(tag, text_for(index, i))

        async def receiver() -> None:
            for _ in range(messages):
                tag = await pair.recv()
                latencies.append(time.perf_counter() - sent_at.pop(tag))
                slots.release()

        await asyncio.gather(sender(), receiver())

    cpu_before = process_cpu(server_pid) if server_pid else None
    start = time.perf_counter()
    await asyncio.gather(*(one(i, p) for i, p in enumerate(pairs)))
    seconds = time.perf_counter() - start
    figures = Figures(len(latencies), seconds, latencies)
    if server_pid and cpu_before:
        after = process_cpu(server_pid)
        figures.server_cpu = (after[0] - cpu_before[0], after[1] - cpu_before[1])
    return figures


# -------------------------------------------------------------------------- baseline


def relay_app() -> web.Application:
    """Forward every text frame from ``/relay/<pair>/customer`` to ``/relay/<pair>/agent``."""
    sockets: dict[str, dict[str, web.WebSocketResponse]] = {}

    async def handler(request: web.Request) -> web.WebSocketResponse:
        pair, role = request.match_info["pair"], request.match_info["role"]
        # Same socket settings as the gateway (gateway/ws/connection.py new_websocket).
        ws = web.WebSocketResponse(compress=False, max_msg_size=64 * 1024, autoping=True)
        await ws.prepare(request)
        slot = sockets.setdefault(pair, {})
        slot[role] = ws
        try:
            async for msg in ws:
                if role == "customer" and msg.type == WSMsgType.TEXT:
                    peer = slot.get("agent")
                    if peer is not None:
                        await peer.send_str(msg.data)
        finally:
            slot.pop(role, None)
        return ws

    app = web.Application()
    app.router.add_get("/relay/{pair}/{role}", handler)
    return app


async def start_site(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def bench_baseline(
    n: int, messages: int, window: int, warmup: int, server: dict[str, Any] | None = None
) -> Figures:
    """``server``: a relay already running in the server process (``--split``)."""
    port = server["relay_port"] if server else None
    runner = None
    if port is None:
        port = free_port()
        runner = await start_site(relay_app(), port)
    conns: list[ClientConnection] = []
    try:
        pairs = []
        for i in range(n):
            base = f"ws://127.0.0.1:{port}/relay/{i}"
            agent = await ws_connect(f"{base}/agent", compression=None, proxy=None)
            customer = await ws_connect(f"{base}/customer", compression=None, proxy=None)
            conns += [agent, customer]
            pairs.append(_baseline_pair(customer, agent))
        await asyncio.sleep(0.05)  # both ends registered on the relay
        if warmup:
            await drive(pairs, warmup, window, "warm")
        return await drive(pairs, messages, window, "run", server and server["pid"])
    finally:
        for ws in conns:
            with contextlib.suppress(Exception):
                await ws.close()
        if runner is not None:
            await runner.cleanup()


def _baseline_pair(customer: ClientConnection, agent: ClientConnection) -> Pair:
    async def send(tag: str, text: str) -> None:
        await customer.send(json.dumps({"t": "msg", "id": tag, "text": text}))

    async def recv() -> str:
        return str(json.loads(await agent.recv())["id"])

    return Pair(send, recv)


# --------------------------------------------------------------------------- gateway


def gateway_config(data_dir: str, port: int, deliveries: int | None = None) -> Any:
    """``deliveries``: ``plugins.deliveries_per_plugin`` (None: the default)."""
    from gateway.config import load_config

    overrides: dict[str, Any] = {
        "server": {"data_dir": data_dir, "port": port, "host": "127.0.0.1"},
        "ratelimit": {"limits": NO_LIMITS},
        "auth": {"argon2_memory_kib": 8192, "argon2_time_cost": 1},
    }
    if deliveries is not None:
        overrides["plugins"] = {"deliveries_per_plugin": deliveries}
    return load_config(environ={}, overrides=overrides)


async def agent_session(svc: Any, index: int) -> str:
    """A confirmed agent of the demo tenant and a live session token for it (the
    password + TOTP login itself is not part of what is measured)."""
    from auth.tokens import hash_token, new_session_token
    from gateway.store.base import Agent, AgentSession

    password = secrets.token_urlsafe(24)
    email = f"bench{index}-{secrets.token_hex(4)}@example.com"
    create = getattr(getattr(svc, "logins", None), "create_agent", None)
    if create is not None:
        creds = await create(email, "demo", "agent", password, f"Bench {index}", confirmed=True)
        agent = creds.agent
    else:
        from auth.passwords import PasswordHasher

        now = svc.clock()
        agent = Agent(
            id=f"agt_bench{index}_{secrets.token_hex(4)}",
            tenant_id="demo",
            email=email,
            display_name=f"Bench {index}",
            role="agent",
            password_hash=PasswordHasher().hash(password),
            totp_confirmed=True,
            created_at=now,
            password_changed_at=now,
        )
        await svc.store.create_agent(agent)
    token = new_session_token()
    now = svc.clock()
    await svc.store.create_session(
        AgentSession(
            token_hash=hash_token(token),
            agent_id=agent.id,
            tenant_id=agent.tenant_id,
            created_at=now,
            last_seen_at=now,
            ip="127.0.0.1",
        )
    )
    return token


async def bench_gateway(
    n: int,
    messages: int,
    window: int,
    warmup: int,
    server: dict[str, Any] | None = None,
    *,
    echo: bool = False,
    replies: bool = False,
) -> Figures:
    """``server``: ports, verify key and agent tokens of a gateway already running in the
    server process (``--split``); otherwise the gateway runs in this process. ``echo``:
    customers ask for their own messages back (``key.echo``; the widget does not).
    ``replies``: the agents send and the customers receive (an agent's replies take the
    agent's rate limit and policy direction)."""
    if server is not None:
        base = f"http://127.0.0.1:{server['gateway_port']}"
        tokens = server["tokens"]
        return await _drive_gateway(
            base,
            server["key"],
            tokens,
            messages,
            window,
            warmup,
            server["pid"],
            echo=echo,
            replies=replies,
        )
    from gateway.app import create_app
    from gateway.services import SERVICES

    with tempfile.TemporaryDirectory(prefix="cipherdesk-bench-") as data_dir:
        port = free_port()
        runner = await start_site(create_app(gateway_config(data_dir, port)), port)
        try:
            svc = runner.app[SERVICES]
            tokens = [await agent_session(svc, i) for i in range(n)]
            return await _drive_gateway(
                f"http://127.0.0.1:{port}",
                svc.identity.verify_key_b64,
                tokens,
                messages,
                window,
                warmup,
                echo=echo,
                replies=replies,
            )
        finally:
            await runner.cleanup()


async def _drive_gateway(
    base: str,
    key: str,
    tokens: list[str],
    messages: int,
    window: int,
    warmup: int,
    server_pid: int | None = None,
    *,
    echo: bool = False,
    replies: bool = False,
) -> Figures:
    clients: list[Any] = []
    try:
        pairs = []
        for token in tokens:
            customer = CustomerClient(base, "demo", origin=base, gateway_key=key, echo=echo)
            # without its own replies echoed, as the console asks (gateway/web/console.js)
            agent = AgentClient(base, token=token, origin=base, gateway_key=key, echo=False)
            clients += [customer, agent]
            await customer.connect()
            welcome = await customer.open(profile={"name": "Bench", "topic": "parcel"})
            await agent.connect()
            await agent.accept(welcome.chat)
            pairs.append(
                _reply_pair(customer, agent, welcome.chat)
                if replies
                else _gateway_pair(customer, agent)
            )
        return await _measure(pairs, clients, messages, window, warmup, server_pid)
    finally:
        await _close_all(clients)


async def _measure(
    pairs: list[Pair],
    clients: list[Any],
    messages: int,
    window: int,
    warmup: int,
    server_pid: int | None,
) -> Figures:
    """Warm up, then the measured run; the clients' unread frames are dropped after."""
    if warmup:
        await drive(pairs, warmup, window, "warm")
    figures = await drive(pairs, messages, window, "run", server_pid)
    for c in clients:
        c.drain()
    return figures


async def _close_all(clients: list[Any]) -> None:
    for c in clients:
        with contextlib.suppress(Exception):
            await c.aclose()


async def setup_e2e(svc: Any, n: int) -> dict[str, Any]:
    """Switch the demo tenant to e2e mode (chats opened from now on are e2e) with a tenant
    key made here, and give ``n`` new agents a certified device each. Returns what the
    load generator needs: the verify key and (token, device id, device secret) per agent."""
    import nacl.public

    from crypto.e2e import DeviceCertificate, TenantSigningKey
    from crypto.encoding import b64encode

    signing = TenantSigningKey.generate()
    tenant = await svc.store.get_tenant("demo")
    tenant.settings = {**tenant.settings, "mode": "e2e", "e2e_verify_key": signing.verify_key}
    await svc.store.update_tenant(tenant)
    svc.tenants.invalidate("demo")
    agents = []
    now = int(time.time())
    for i in range(n):
        token = await agent_session(svc, 10_000 + i)
        ctx = await svc.sessions.authenticate(token)
        device = nacl.public.PrivateKey.generate()
        registered = await svc.e2e.register_device(
            ctx.agent, b64encode(bytes(device.public_key)), "bench"
        )
        signed = signing.certify(
            DeviceCertificate(
                tenant="demo",
                agent=ctx.agent.id,
                name=ctx.agent.display_name,
                role=ctx.agent.role,
                device=registered.id,
                public_key=registered.public_key,
                issued_at=now,
                expires_at=now + 86_400,
            )
        )
        await svc.store.certify_e2e_device(
            registered.id, "demo", signed.body, signed.sig, now + 86_400.0
        )
        agents.append((token, registered.id, bytes(device).hex()))
    return {"verify_key": signing.verify_key, "agents": agents}


async def bench_gateway_e2e(
    n: int,
    messages: int,
    window: int,
    warmup: int,
    server: dict[str, Any] | None = None,
    ask: Callable[[str], Awaitable[Any]] | None = None,
) -> Figures:
    """The same load in end-to-end mode (issue 13): the demo tenant in ``e2e`` mode, each
    agent with a certified device; the customer's end seals each message (client cost, as
    in the widget) and the agent's end opens and checks it, so the figure is what e2e
    costs end to end, next to inspect mode. ``server``/``ask``: a gateway in the server
    process (``--split``), asked over the pipe to set up e2e."""
    if server is not None and ask is not None:
        base = f"http://127.0.0.1:{server['gateway_port']}"
        setup = await ask("e2e")
        return await _drive_e2e(base, server["key"], setup, messages, window, warmup, server["pid"])
    from gateway.app import create_app
    from gateway.services import SERVICES

    with tempfile.TemporaryDirectory(prefix="cipherdesk-bench-") as data_dir:
        port = free_port()
        runner = await start_site(create_app(gateway_config(data_dir, port)), port)
        try:
            svc = runner.app[SERVICES]
            setup = await setup_e2e(svc, n)
            base = f"http://127.0.0.1:{port}"
            return await _drive_e2e(
                base, svc.identity.verify_key_b64, setup, messages, window, warmup
            )
        finally:
            await runner.cleanup()


async def _drive_e2e(
    base: str,
    key: str,
    setup: dict[str, Any],
    messages: int,
    window: int,
    warmup: int,
    server_pid: int | None = None,
) -> Figures:
    import nacl.public

    from gateway.sdk.e2e import E2EAgentClient, E2ECustomerClient

    clients: list[Any] = []
    try:
        pairs = []
        for token, device_id, secret in setup["agents"]:
            customer = E2ECustomerClient(
                base, "demo", origin=base, tenant_key=setup["verify_key"], gateway_key=key
            )
            agent = E2EAgentClient(
                base,
                token=token,
                origin=base,
                gateway_key=key,
                device=nacl.public.PrivateKey(bytes.fromhex(secret)),
                device_id=device_id,
            )
            clients += [customer, agent]
            await customer.connect()
            welcome = await customer.open(profile={"name": "Bench", "topic": "parcel"})
            await agent.connect()
            await agent.accept(welcome.chat)
            await agent.keys_ready(welcome.chat)
            pairs.append(_e2e_pair(customer, agent, welcome.chat))
        return await _measure(pairs, clients, messages, window, warmup, server_pid)
    finally:
        await _close_all(clients)


def _e2e_pair(customer: Any, agent: Any, chat: str) -> Pair:
    from crypto.e2e import seal_message
    from gateway.protocol import CustomerSealedMsg

    async def send(tag: str, text: str) -> None:
        epoch = customer.secrets.epoch
        sealed = seal_message(
            customer.secrets.keys[epoch],
            chat=chat,
            sender="customer",
            msg_id=tag,
            epoch=epoch,
            text=text,
        )
        await customer.send(CustomerSealedMsg(id=tag, c=sealed.c, fc=sealed.fc, e=epoch))

    async def recv() -> str:
        frame = await agent.wait_for(lambda f: isinstance(f, Msg) and f.sender == "customer")
        agent.read(frame)  # the agent's end opens and checks it, as the console would
        return str(frame.id)

    return Pair(send, recv)


def _server_process(conn: Any, pairs: int, event_loop: str, deliveries: int | None) -> None:
    """``--split``: both servers (gateway and bare relay) in their own process and core,
    on ``event_loop`` (as ``server.event_loop``), the load generator in the parent — as in
    production, where clients are elsewhere."""
    from gateway.event_loop import new_event_loop

    quiet_logs()

    async def main() -> None:
        from gateway.app import create_app
        from gateway.services import SERVICES

        with tempfile.TemporaryDirectory(prefix="cipherdesk-bench-") as data_dir:
            gport, bport = free_port(), free_port()
            gateway = await start_site(
                create_app(gateway_config(data_dir, gport, deliveries)), gport
            )
            relay = await start_site(relay_app(), bport)
            svc = gateway.app[SERVICES]
            tokens = [await agent_session(svc, i) for i in range(pairs)]
            conn.send(
                {
                    "gateway_port": gport,
                    "relay_port": bport,
                    "key": svc.identity.verify_key_b64,
                    "tokens": tokens,
                    "pid": os.getpid(),
                }
            )
            loop = asyncio.get_running_loop()
            while (request := await loop.run_in_executor(None, conn.recv)) != "stop":
                if request == "e2e":
                    conn.send(await setup_e2e(svc, pairs))
                else:  # ("webhook", url or None)
                    conn.send(await set_webhook(svc, request[1]))
            await relay.cleanup()
            await gateway.cleanup()

    with asyncio.Runner(loop_factory=lambda: new_event_loop(event_loop)) as runner:
        runner.run(main())


WEBHOOK_SECRET = "bench-webhook-secret-" + "x" * 24


async def set_webhook(svc: Any, url: str | None) -> bool:
    """``--webhook``: the demo tenant's webhook plugin on (delivering every message to
    ``url``, a loopback sink: the operator's private-network allowance, as the CLI gives
    it) or off (``None``). Runs in the server process."""
    if url is None:
        return bool(await svc.plugins.set_enabled("demo", "webhook", False))
    await svc.plugins.configure(
        "demo", "webhook", {"url": url, "secret": WEBHOOK_SECRET}, allow_private=True
    )
    return True


def _sink_process(conn: Any) -> None:
    """``--webhook``: a helpdesk stand-in in its own process, so neither the gateway's CPU
    figure nor the load generator pays for it: answers every POST with 200 and counts
    them; the pipe asks for the count ("count") or ends it ("stop")."""

    async def main() -> None:
        received = 0

        async def accept(request: web.Request) -> web.Response:
            nonlocal received
            await request.read()
            received += 1
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_post("/hook", accept)
        port = free_port()
        runner = await start_site(app, port)
        conn.send(f"http://127.0.0.1:{port}/hook")
        loop = asyncio.get_running_loop()
        while await loop.run_in_executor(None, conn.recv) == "count":
            conn.send(received)
        await runner.cleanup()

    asyncio.run(main())


async def bench_webhook(
    args: argparse.Namespace, server: dict[str, Any], ask: Callable[[Any], Awaitable[Any]]
) -> Figures:
    """The gateway with the demo tenant's webhook plugin on: every message is also an
    outbox row written in its commit and a signed POST the dispatcher makes (the path
    every deployment with a helpdesk plugin takes). Prints how many deliveries the sink
    had when the load ended and how long the dispatcher took to catch up."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    sink = ctx.Process(target=_sink_process, args=(child,), daemon=True)
    sink.start()
    child.close()
    loop = asyncio.get_running_loop()

    async def sink_says(request: str) -> Any:
        parent.send(request)
        return await loop.run_in_executor(None, parent.recv)

    try:
        url = await loop.run_in_executor(None, parent.recv)
        await ask(("webhook", url))
        before = await sink_says("count")
        figures = await bench_gateway(
            args.pairs, args.messages, args.window, args.warmup, server=server
        )
        ended = time.perf_counter()
        at_end = delivered = await sink_says("count") - before
        caught_up = ended
        while time.perf_counter() - caught_up < 2.0 and time.perf_counter() - ended < 120:
            await asyncio.sleep(0.1)  # until nothing arrived for 2 s
            now = await sink_says("count") - before
            if now != delivered:
                delivered, caught_up = now, time.perf_counter()
        messages = args.pairs * (args.messages + args.warmup)
        print(
            f"  webhook: {messages} messages sent; the sink had {at_end} deliveries when the "
            f"load ended and {delivered} (messages and chat events) {caught_up - ended:.1f} s "
            "later"
        )
        await ask(("webhook", None))
        return figures
    finally:
        parent.send("stop")
        sink.join(10)


def _gateway_pair(customer: CustomerClient, agent: AgentClient) -> Pair:
    async def send(tag: str, text: str) -> None:
        # Fire and go on, as the widget does: acks come back on their own (and are
        # buffered, unread); the outbox/await-ack path is what send_text adds.
        await customer.send(CustomerMsg(id=tag, text=text))

    async def recv() -> str:
        frame = await agent.wait_for(lambda f: isinstance(f, Msg) and f.sender == "customer")
        return str(frame.id)

    return Pair(send, recv)


def _reply_pair(customer: CustomerClient, agent: AgentClient, chat: str) -> Pair:
    """The agent→customer path of one chat: the agent's replies, fired and gone on from as
    the console does."""

    async def send(tag: str, text: str) -> None:
        await agent.send(AgentMsg(id=tag, chat=chat, text=text))

    async def recv() -> str:
        frame = await customer.wait_for(lambda f: isinstance(f, Msg) and f.sender == "agent")
        return str(frame.id)

    return Pair(send, recv)


async def run_relay(args: argparse.Namespace) -> None:
    print(
        f"relay: {args.pairs} pairs x {args.messages} msgs ({args.texts} texts), "
        f"window {args.window}, "
        f"warm-up {args.warmup}/pair, {os.cpu_count()} CPUs, python {sys.version.split()[0]}"
    )
    server: dict[str, Any] | None = None
    proc = parent = None
    if args.split:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        proc = ctx.Process(
            target=_server_process,
            args=(child, args.pairs, args.event_loop, args.webhook_deliveries),
            daemon=True,
        )
        proc.start()
        child.close()  # the child's end lives in the child: its death is EOF here
        while not parent.poll(0.2):  # a server that failed to start must not hang the bench
            if not proc.is_alive():
                raise SystemExit(f"the server process exited ({proc.exitcode}); see above")
            await asyncio.sleep(0)
        server = parent.recv()
        print(
            f"servers in a separate process on the {args.event_loop} event loop; "
            "load generator in this one"
        )

    async def ask(request: Any) -> Any:
        assert parent is not None
        parent.send(request)
        return await asyncio.get_running_loop().run_in_executor(None, parent.recv)

    webhook: Figures | None = None
    try:
        base = await bench_baseline(
            args.pairs,
            args.messages,
            args.window,
            args.warmup,
            server=server,
        )
        print(base.line("baseline"), flush=True)
        echoed = await bench_gateway(
            args.pairs, args.messages, args.window, args.warmup, server=server, echo=True
        )
        print(echoed.line("gateway+echo"), flush=True)
        pipe = await bench_gateway(
            args.pairs, args.messages, args.window, args.warmup, server=server
        )
        print(pipe.line("gateway"), flush=True)
        if args.webhook and server is not None:
            webhook = await bench_webhook(args, server, ask)
            print(webhook.line("gateway+webhook"), flush=True)

        e2e = await bench_gateway_e2e(
            args.pairs, args.messages, args.window, args.warmup, server=server, ask=ask
        )
        print(e2e.line("e2e"), flush=True)
    finally:
        if proc is not None and parent is not None:
            parent.send("stop")
            proc.join(20)
    print(
        f"ratio gateway/baseline: throughput {pipe.rate / base.rate:.3f}   "
        f"p50 {pipe.pct(0.5) / base.pct(0.5):.2f}x   p99 {pipe.pct(0.99) / base.pct(0.99):.2f}x"
    )
    print(
        f"ratio gateway/gateway+echo: throughput {pipe.rate / echoed.rate:.3f}   "
        f"p50 {pipe.pct(0.5) / echoed.pct(0.5):.2f}x   p99 {pipe.pct(0.99) / echoed.pct(0.99):.2f}x"
    )
    if webhook is not None:
        print(
            f"ratio gateway+webhook/gateway: throughput {webhook.rate / pipe.rate:.3f}   "
            f"p50 {webhook.pct(0.5) / pipe.pct(0.5):.2f}x   "
            f"p99 {webhook.pct(0.99) / pipe.pct(0.99):.2f}x"
        )
    print(
        f"ratio e2e/inspect: throughput {e2e.rate / pipe.rate:.3f}   "
        f"p50 {e2e.pct(0.5) / pipe.pct(0.5):.2f}x   p99 {e2e.pct(0.99) / pipe.pct(0.99):.2f}x"
    )


# ---------------------------------------------------------------------------- idle


def vm_rss_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc status")


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def serve_command() -> list[str]:
    script = Path(sys.executable).with_name("cipherdesk")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from gateway.cli.main import main; main()"]


async def wait_healthy(base: str, proc: subprocess.Popen[bytes], deadline: float) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"cipherdesk serve exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{base}/healthz") as resp:
                    if resp.status == 200:
                        async with http.get(f"{base}/.well-known/cipherdesk.json") as wk:
                            return dict(await wk.json())
            await asyncio.sleep(0.2)
    raise RuntimeError("gateway did not become healthy in time")


async def open_idle(base: str, key: str, count: int, into: list[CustomerClient]) -> None:
    gate = asyncio.Semaphore(32)

    async def one() -> None:
        async with gate:
            client = CustomerClient(base, "demo", origin=base, gateway_key=key)
            await client.connect()
            await client.open()
            into.append(client)

    await asyncio.gather(*(one() for _ in range(count)))


async def settle_rss(pid: int, seconds: float = 1.0) -> int:
    await asyncio.sleep(seconds)
    return vm_rss_kib(pid)


async def run_idle(args: argparse.Namespace) -> None:
    n, warm = args.idle, args.idle_warmup
    fds = raise_fd_limit(2 * (n + warm) + 512)
    if fds < n + warm + 256:
        raise SystemExit(f"open-file limit {fds} is too low for {n} idle sockets")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIPHERDESK_")}
    limits = ", ".join(f"{k} = {json.dumps(v)}" for k, v in NO_LIMITS.items())
    env["CIPHERDESK_RATELIMIT_LIMITS"] = "{" + limits + "}"
    env["PYTHONPATH"] = REPO
    clients: list[CustomerClient] = []
    with (
        tempfile.TemporaryDirectory(prefix="cipherdesk-idle-") as data_dir,
        tempfile.TemporaryFile() as server_log,
    ):
        cmd = [*serve_command(), "serve", "--port", str(port), "--data-dir", data_dir]
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before any load
            [*cmd, "--log-level", "warning"], env=env, stdout=server_log, stderr=server_log
        )
        try:
            well_known = await wait_healthy(base, proc, time.monotonic() + 30)
            key = well_known["verify_key"]
            rss_start = vm_rss_kib(proc.pid)
            await open_idle(base, key, warm, clients)  # imports, caches, pools warmed
            rss_warm = await settle_rss(proc.pid)
            client_warm = vm_rss_kib()
            start = time.perf_counter()
            await open_idle(base, key, n, clients)
            opened = time.perf_counter() - start
            rss_idle = await settle_rss(proc.pid)
            client_idle = vm_rss_kib()
            alive = sum(c.connected for c in clients)
            per_conn = (rss_idle - rss_warm) / n
            print(
                f"idle: server pid {proc.pid}, {alive}/{n + warm} sockets alive "
                f"(handshake + chat open); {n} opened in {opened:.2f} s "
                f"({n / opened:.0f}/s)"
            )
            print(
                f"server VmRSS: start {rss_start / 1024:.1f} MiB, after {warm} warm-up "
                f"{rss_warm / 1024:.1f} MiB, after +{n} idle {rss_idle / 1024:.1f} MiB"
            )
            print(f"server RSS per idle connection: {per_conn:.1f} KiB")
            print(
                f"client (SDK) RSS per idle connection: {(client_idle - client_warm) / n:.1f} KiB"
            )
        except BaseException:
            server_log.seek(0)
            sys.stderr.write(server_log.read().decode(errors="replace")[-4000:])
            raise
        finally:
            for c in clients:
                with contextlib.suppress(Exception):
                    await c.aclose()
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=20, help="customer/agent pairs")
    parser.add_argument("--messages", type=int, default=500, help="messages per pair")
    parser.add_argument("--window", type=int, default=4, help="messages in flight per pair")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up messages per pair")
    parser.add_argument(
        "--split",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run both servers in a separate process from the load generator "
        "(default; --no-split runs everything in one event loop)",
    )
    parser.add_argument(
        "--texts",
        choices=["fixed", "varied"],
        default="fixed",
        help="one line for every message (default, comparable with earlier figures) or "
        "realistic lines from bench/filter.py's corpus",
    )
    parser.add_argument(
        "--event-loop",
        choices=EVENT_LOOPS,
        default="uvloop",
        help="the servers' event loop with --split (server.event_loop; default uvloop)",
    )
    parser.add_argument(
        "--webhook",
        action="store_true",
        help="also run the gateway with the demo tenant's webhook plugin delivering every "
        "message to a loopback sink in its own process (with --split)",
    )
    parser.add_argument(
        "--webhook-deliveries",
        type=int,
        default=None,
        help="plugins.deliveries_per_plugin for the gateway (default: the config's, 4)",
    )
    parser.add_argument(
        "--idle", type=int, default=0, help="idle mode: open N idle customer sockets"
    )
    parser.add_argument(
        "--idle-warmup", type=int, default=50, help="sockets opened before the RSS baseline"
    )
    args = parser.parse_args()
    if args.texts == "varied":
        from bench.filter import build_corpus

        TEXTS[:] = [line for line, _ in build_corpus(5000, seed=7)]
    quiet_logs()
    if args.idle:
        asyncio.run(run_idle(args))
    else:
        asyncio.run(run_relay(args))


if __name__ == "__main__":
    main()
