"""Shared helpers for gateway tests over real HTTP (no fixtures, plain functions).

``start_gateway`` runs the real ``create_app`` on a kernel-chosen local port; callers must
``await runner.cleanup()``. Pass ``clock=FakeClock(...)`` to make TOTP, lockout and
session expiry exact. argon2 runs with small parameters by default (tests are about
the flow, not the cost); pass ``auth={...}`` to override.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from auth.clock import ManualClock
from auth.totp import TotpVerifier
from gateway.app import create_app
from gateway.config import load_config
from gateway.sdk.client import AgentClient, CustomerClient
from gateway.services import SERVICES, Services
from gateway.store.base import Agent, Store, Tenant

DEFAULT_PASSWORD = "correct horse battery staple 42"
T0 = 1_700_000_000.0


class FakeClock(ManualClock):
    """A mutable clock (``clock.now``, ``clock.advance(s)``) shared with the gateway."""

    def __init__(self, start: float = T0) -> None:
        super().__init__(start)


def bound_socket() -> socket.socket:
    """A listening-ready TCP socket on 127.0.0.1, port chosen by the kernel. Handing the
    socket itself to the server (``web.SockSite``) leaves no window in which another
    process could take the port (unlike probing a free port, closing it, binding again)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


async def serve_app(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve a throwaway aiohttp app on 127.0.0.1 at a kernel-chosen port; returns the
    runner (``await runner.cleanup()``) and the port the server actually bound."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = bound_socket()
    try:
        await web.SockSite(runner, sock).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    return runner, sock.getsockname()[1]


async def eventually(predicate: Callable[[], object], what: str, within: float = 10.0) -> None:
    """Wait until ``predicate()`` holds, polling every 20 ms, or fail naming ``what`` after
    ``within`` seconds: for what the server does after the event the test caused, in its own
    time (a connection reset is noticed when its socket is next read)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)


def free_port() -> int:
    """A port nothing listens on right now: only for "nothing answers here" checks and
    for subprocesses that must be told a port (they retry on a collision)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_FAST_AUTH = {"argon2_memory_kib": 1024, "argon2_time_cost": 1}


async def start_gateway(
    tmp_path: Path, **config_overrides: Any
) -> tuple[web.AppRunner, str, Services]:
    """Run the gateway on 127.0.0.1:<port picked by the kernel, socket handed to the
    server>; returns (runner, base_url, services).

    ``config_overrides`` are config sections (``auth={"lock_after": 4}``,
    ``ratelimit={"limits": {...}}``, ``server={...}``); ``clock=`` is the gateway clock.
    """
    clock = config_overrides.pop("clock", None)
    sock = bound_socket()
    port = sock.getsockname()[1]
    overrides: dict[str, dict[str, Any]] = {
        "server": {"host": "127.0.0.1", "port": port, "data_dir": str(tmp_path / "data")},
        "auth": dict(_FAST_AUTH),
        # generous login rate limits: tests exercise the lockout, not the flood limits
        "ratelimit": {"limits": {"login_per_account": "1000/m", "login_per_ip": "1000/m"}},
    }
    for section, values in config_overrides.items():
        if section == "ratelimit" and "limits" in values:
            values = {**values, "limits": {**overrides["ratelimit"]["limits"], **values["limits"]}}
        overrides.setdefault(section, {}).update(values)
    try:
        config = load_config(None, environ={}, overrides=overrides)
        app = create_app(config, clock=clock) if clock is not None else create_app(config)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
    except BaseException:
        sock.close()
        raise
    site = web.SockSite(runner, sock)
    await site.start()
    return runner, f"http://127.0.0.1:{port}", app[SERVICES]


async def make_tenant(svc: Services, tenant_id: str, origins: list[str] | None = None) -> Tenant:
    tenant = Tenant(
        id=tenant_id, name=tenant_id.title(), allowed_origins=origins or [], created_at=svc.clock()
    )
    await svc.store.create_tenant(tenant)
    return tenant


async def make_agent(
    svc: Services,
    email: str,
    *,
    tenant: str = "demo",
    role: str = "agent",
    password: str = DEFAULT_PASSWORD,
    confirmed: bool = True,
) -> tuple[Agent, str, str]:
    """Create an agent through LoginService; returns (agent, totp_secret, password)."""
    creds = await svc.logins.create_agent(
        email, tenant, role, password, None, actor="test", confirmed=confirmed
    )
    return creds.agent, creds.totp_secret, password


def totp_code(secret: str, at: float) -> str:
    return TotpVerifier().current_code(secret, at)


async def login(
    session: aiohttp.ClientSession,
    base_url: str,
    email: str,
    password: str,
    secret: str,
    clock_time: float,
) -> str:
    """Log in with the TOTP code of ``clock_time``; returns the session token."""
    async with session.post(
        f"{base_url}/api/login",
        json={
            "email": email,
            "password": password,
            "otp": totp_code(secret, clock_time),
        },
    ) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return body["token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def record_erasures(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[tuple[str, bool]], list[int]]:
    """Record ``store``'s erasures as (chat id, shred) and, at each ``shred_erased``, how
    many chats had been erased by then; both still do their work."""
    erases: list[tuple[str, bool]] = []
    shreds: list[int] = []
    real_erase, real_shred = store.erase_chat, store.shred_erased

    async def erase_chat(chat_id: str, *, shred: bool = True) -> bool:
        erases.append((chat_id, shred))
        return await real_erase(chat_id, shred=shred)

    async def shred_erased() -> None:
        shreds.append(len(erases))
        await real_shred()

    monkeypatch.setattr(store, "erase_chat", erase_chat)
    monkeypatch.setattr(store, "shred_erased", shred_erased)
    return erases, shreds


@asynccontextmanager
async def accepted_chat(
    svc: Services, base: str, email: str = "ann@example.com"
) -> AsyncIterator[tuple[CustomerClient, AgentClient, str]]:
    """(customer, agent, chat id): a customer's chat accepted by a new agent's console
    (replies not echoed back, as the console asks); both sockets closed after."""
    _agent, secret, password = await make_agent(svc, email)
    async with aiohttp.ClientSession() as http:
        token = await login(http, base, email, password, secret, svc.clock())
    key = svc.identity.verify_key_b64
    customer = CustomerClient(base, "demo", origin=base, gateway_key=key)
    agent = AgentClient(base, token=token, gateway_key=key, echo=False)
    try:
        await customer.connect()
        welcome = await customer.open()
        await agent.connect()
        await agent.accept(welcome.chat)
        yield customer, agent, welcome.chat
    finally:
        await agent.aclose()
        await customer.aclose()
