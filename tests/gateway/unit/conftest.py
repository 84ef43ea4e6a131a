"""Fixtures of the per-class unit tests: each service built directly from its parts (a
real store on SQLite or PostgreSQL, the in-memory bus, the master keyring in tmp_path, one
injected clock), without ``build_services``, HTTP or sockets — so a test names exactly the
collaborators the class under test depends on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from crypto.envelope import Keyring
from gateway.audit import Auditor
from gateway.bus import MemoryBus
from gateway.chats import ChatService
from gateway.config import Config, load_config
from gateway.keyfiles import load_or_create_keyring
from gateway.logins import LoginService
from gateway.metrics import Metrics
from gateway.plugin_host import PluginHost
from gateway.policy import PolicyRegistry
from gateway.policy_lists import keyword_lists_loader
from gateway.protocol import Notice
from gateway.ratelimit.guard import Guard
from gateway.ratelimit.limits import Limits, MemoryRateLimiter
from gateway.store import Store
from gateway.store.base import AuditEvent, Tenant
from gateway.tenants import TenantDirectory
from gateway.transcripts import ChatKeys
from plugins.registry import Registry, default_registry
from tests.gateway.helpers import FakeClock
from tests.gateway.store.conftest import store as store  # the store on ``store_url``

TENANT = "acme"


@pytest.fixture
def store_url(service_store_url: str) -> str:
    """SQLite in tmp_path, then PostgreSQL (the gateway suite's parametrized URL)."""
    return service_store_url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    return load_or_create_keyring(tmp_path / "master.key", None)


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    b = MemoryBus()
    await b.start()
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """Defaults, with cheap argon2 (the tests are about the rules, not the cost)."""
    return load_config(
        None,
        environ={},
        overrides={
            "server": {"host": "127.0.0.1", "port": 8080, "data_dir": str(tmp_path / "data")},
            "auth": {"argon2_memory_kib": 1024, "argon2_time_cost": 1},
        },
    )


@dataclass
class AuditLog:
    """The audit events the service under test wrote, in order (an Auditor listener)."""

    events: list[AuditEvent] = field(default_factory=list)

    async def __call__(self, event: AuditEvent) -> None:
        self.events.append(event)

    def actions(self) -> list[str]:
        return [e.action for e in self.events]

    def details(self, action: str) -> list[dict[str, object]]:
        return [dict(e.details) for e in self.events if e.action == action]


@pytest.fixture
def audit() -> AuditLog:
    return AuditLog()


@pytest.fixture
def auditor(store: Store, clock: FakeClock, audit: AuditLog) -> Auditor:
    a = Auditor(store, clock)
    a.listeners.append(audit)
    return a


@pytest.fixture
def tenants(store: Store, keyring: Keyring, clock: FakeClock) -> TenantDirectory:
    return TenantDirectory(store, keyring, clock)


@pytest.fixture
async def tenant(store: Store, clock: FakeClock) -> Tenant:
    """The tenant every test works in (one allowed origin, no identity mode, default queue)."""
    t = Tenant(id=TENANT, name="Acme", allowed_origins=["https://shop.example"], created_at=clock())
    await store.create_tenant(t)
    return t


@pytest.fixture
def limits() -> Limits:
    return Limits()


@pytest.fixture
def limiter(clock: FakeClock) -> MemoryRateLimiter:
    return MemoryRateLimiter(clock=clock)


@pytest.fixture
def logins(
    store: Store,
    config: Config,
    auditor: Auditor,
    limiter: MemoryRateLimiter,
    limits: Limits,
    bus: MemoryBus,
    keyring: Keyring,
    clock: FakeClock,
) -> LoginService:
    return LoginService(
        store=store,
        config=config,
        auditor=auditor,
        limiter=limiter,
        limits=limits,
        metrics=Metrics(),
        bus=bus,
        keyring=keyring,
        clock=clock,
    )


class FakeConnection:
    """What :class:`gateway.ratelimit.guard.Guard` uses of a socket: its id and ``send``."""

    def __init__(self, conn_id: str = "conn-1") -> None:
        self.conn_id = conn_id
        self.sent: list[Notice] = []

    def send(self, frame: Notice) -> None:
        self.sent.append(frame)


GuardFactory = Callable[..., Guard]


@pytest.fixture
def make_guard(tenants: TenantDirectory, clock: FakeClock, config: Config) -> GuardFactory:
    """A Guard with the given limits (``[limits]`` config values, e.g.
    ``messages_per_chat="2/10s"``), its own limiter and
    metrics, on the test clock: each call is a fresh node."""

    def make(**overrides: object) -> Guard:
        limits = Limits.from_dict(overrides)
        metrics = Metrics()
        limiter = MemoryRateLimiter(clock=clock, metrics=metrics)
        return Guard(limits, limiter, metrics, tenants, config.websocket, clock)

    return make


@pytest.fixture
def registry() -> Registry:
    """The built-in plugins; a test registers its own factories on top."""
    return default_registry(discover=False)


@pytest.fixture
async def plugins(
    store: Store, keyring: Keyring, registry: Registry, clock: FakeClock
) -> AsyncIterator[PluginHost]:
    host = PluginHost(store, keyring, ChatKeys(store, keyring), registry, clock)
    try:
        yield host
    finally:
        await host.aclose()


@pytest.fixture
def chats(
    store: Store,
    bus: MemoryBus,
    keyring: Keyring,
    tenants: TenantDirectory,
    auditor: Auditor,
    clock: FakeClock,
    plugins: PluginHost,
    config: Config,
) -> ChatService:
    return ChatService(
        store=store,
        bus=bus,
        keys=plugins.keys,
        tenants=tenants,
        policies=PolicyRegistry(
            operator_files=config.policy.keyword_files,
            lists_loader=keyword_lists_loader(store),
            build_timeout=config.policy.build_timeout,
        ),
        auditor=auditor,
        clock=clock,
        plugins=plugins,
    )
