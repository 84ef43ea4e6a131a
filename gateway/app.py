"""Building the aiohttp application: components wired once, routes registered once.

``create_app(config)`` is used by the CLI, the tests and the benchmarks alike, so the
code under test is the code that runs. Startup opens the store (migrations), loads or
creates the gateway's signing identity and master keyring in the data dir, makes sure
the demo tenant exists, and starts background workers (plugin outbox, retention).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from aiohttp import web

from auth.tokens import SessionLifetime
from crypto.envelope import Keyring
from crypto.identity import GatewayIdentity
from gateway.activation import ActivationMail
from gateway.api_tokens import ApiTokenService
from gateway.attachments.service import AttachmentService
from gateway.attachments.tickets import TicketBox
from gateway.audit import Auditor
from gateway.bus import Bus, open_bus
from gateway.chats import ChatService
from gateway.clientip import ClientIPResolver
from gateway.config import Config
from gateway.custom_roles import CustomRoleService
from gateway.customers import CustomerKeys
from gateway.datadir import IDENTITY_FILE, MASTER_KEY_FILE, prepare_data_dir
from gateway.derived_keys import address_hasher
from gateway.e2e import E2EService
from gateway.gc_pauses import CollectorPauses
from gateway.governance.auditchain import AuditKeys, Checkpointer
from gateway.governance.dormancy import DormancySweep
from gateway.governance.siem import SiemOutbox
from gateway.governance.wiring import build_governance
from gateway.housekeeping import Housekeeping
from gateway.http import public as http_public
from gateway.http import security as http_security
from gateway.http.routes import setup_routes
from gateway.invites import InviteService
from gateway.keyfiles import load_or_create_identity, load_or_create_keyring
from gateway.logins import LoginService
from gateway.metrics import Metrics
from gateway.notices import NoticeBook
from gateway.notify.mailer import Mailer
from gateway.oidc import OidcService, OidcSessionCheck
from gateway.passkeys import PasskeyService, relying_party
from gateway.plugin_host import PluginHost
from gateway.policy import PolicyRegistry
from gateway.policy_lists import keyword_lists_loader
from gateway.presence import open_presence
from gateway.protocol import CloseCode
from gateway.quality import QualityMetrics, SlaWatch
from gateway.ratelimit.guard import Guard
from gateway.ratelimit.limits import Limits, MemoryRateLimiter, RateLimiter, RedisRateLimiter
from gateway.reports import ReportBook
from gateway.retention import RetentionJob
from gateway.scim import ScimService
from gateway.search_index import KeyedHasher
from gateway.search_indexer import SearchIndexer
from gateway.services import SERVICES, BackgroundWorker, Services
from gateway.sessions import SessionAuthenticator
from gateway.staff_screen import StaffTextScreen
from gateway.store import open_store
from gateway.store.base import Store
from gateway.tenants import TenantDirectory, ensure_demo_tenant, normalize_origin
from gateway.transcripts import ChatKeys
from gateway.ws.agent import agent_ws
from gateway.ws.customer import customer_ws
from plugins.clamd import ClamdScanner
from plugins.outbox import Dispatcher
from plugins.registry import default_registry

log = structlog.get_logger("cipherdesk.app")


def console_origins(config: Config) -> set[str]:
    """Origins the console and admin pages are served from (the gateway's own)."""
    port = config.server.port
    urls = [config.base_url, f"http://localhost:{port}", f"http://127.0.0.1:{port}"]
    return {o for o in (normalize_origin(u) for u in urls) if o}


def _limiter(config: Config, metrics: Metrics, clock: Callable[[], float]) -> RateLimiter:
    """The shared limiter. Redis decides with its own clock (nodes may drift); the local
    one, and the fallback, use ``clock`` so tests that inject a clock drive refills."""
    url = config.ratelimit.url
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisRateLimiter.from_url(
            url,
            prefix=config.ratelimit.prefix,
            fallback=MemoryRateLimiter(clock=clock),
            metrics=metrics,
        )
    return MemoryRateLimiter(clock=clock, metrics=metrics)


async def build_services(config: Config, clock: Callable[[], float] = time.time) -> Services:
    # Everything that can be refused for a bad configuration is checked before anything
    # is opened, so a mistake never leaves a store thread or socket behind.
    limits = Limits.from_dict(config.ratelimit.limits)
    data_dir = config.data_dir
    prepare_data_dir(data_dir)
    identity = load_or_create_identity(data_dir / IDENTITY_FILE)
    keyring = load_or_create_keyring(data_dir / MASTER_KEY_FILE, config.master_key or None)
    store = open_store(config.store_url, data_dir)
    bus = open_bus(config.bus.url, keyring=keyring)
    await store.open()
    try:
        await bus.start()
        return await _wire(config, clock, limits, identity, keyring, store, bus)
    except BaseException:
        with contextlib.suppress(Exception):
            await bus.close()
        await store.close()
        raise


async def _wire(
    config: Config,
    clock: Callable[[], float],
    limits: Limits,
    identity: GatewayIdentity,
    keyring: Keyring,
    store: Store,
    bus: Bus,
) -> Services:
    metrics = Metrics()
    tenants = TenantDirectory(store, keyring, clock)
    audit_keys = AuditKeys(store, keyring, clock)
    await audit_keys.load()
    auditor = Auditor(store, clock, seal=audit_keys.seal)
    checkpointer = Checkpointer(store, identity, clock, config.audit.checkpoint_interval)
    lifetime = SessionLifetime(
        idle_timeout=config.auth.idle_timeout, absolute_lifetime=config.auth.absolute_lifetime
    )
    sessions = SessionAuthenticator(store, lifetime, clock)
    # Limits run on a monotonic clock unless a test injects one.
    limit_clock = time.monotonic if clock is time.time else clock
    limiter = _limiter(config, metrics, limit_clock)
    guard = Guard(
        limits,
        limiter,
        metrics,
        tenants,
        config.websocket,
        limit_clock,
        address_key=address_hasher(keyring),
    )
    presence = open_presence(config.bus.url)
    keys = ChatKeys(store, keyring)
    policies = PolicyRegistry(
        operator_files=config.policy.keyword_files,
        lists_loader=keyword_lists_loader(store),
        build_timeout=config.policy.build_timeout,
    )

    policy_counters: dict[tuple[str, str], Any] = {}

    def count_policy(direction: str, action: str) -> None:
        counter = policy_counters.get((direction, action))
        if counter is None:
            counter = metrics.messages_total.labels(direction=direction, action=action)
            policy_counters[(direction, action)] = counter
        counter.inc()

    plugin_host = PluginHost(
        store,
        keyring,
        keys,
        default_registry(),
        clock,
        allow_private_targets=config.plugins.allow_private_targets,
    )
    auditor.listeners.append(SiemOutbox(store, plugin_host, tenants))
    quality = QualityMetrics(metrics)
    gov = build_governance(
        config=config,
        store=store,
        bus=bus,
        keyring=keyring,
        auditor=auditor,
        tenants=tenants,
        metrics=metrics,
        clock=clock,
    )
    reports = ReportBook(
        store,
        identity,
        clock,
        on_issued=lambda kind: metrics.destruction_reports_total.labels(kind=kind).inc(),
    )
    e2e = E2EService(store=store, keyring=keyring, auditor=auditor, clock=clock)
    search = KeyedHasher(keyring)
    search_indexer = SearchIndexer(store, keys, search)
    chats = ChatService(
        store=store,
        bus=bus,
        keys=keys,
        tenants=tenants,
        policies=policies,
        auditor=auditor,
        clock=clock,
        on_policy=count_policy,
        plugins=plugin_host,
        reports=reports,
        customer_keys=CustomerKeys(keyring),
        search=search,
        search_indexer=search_indexer,
        notices=NoticeBook(store, auditor, clock),
        quality=quality,
        e2e=e2e,
        queue_listed=config.websocket.queue_listed,
    )

    async def count_delivery(plugin: str, result: Any) -> None:
        metrics.plugin_deliveries_total.labels(plugin=plugin, result=result.outcome).inc()
        await gov.on_delivery(plugin, result)

    dispatcher = Dispatcher(
        store,
        plugin_host.decode,
        plugin_host.plugin_for,
        clock=clock,
        on_result=count_delivery,
        paused=gov.plugins_paused,
        delivery_timeout=config.plugins.delivery_timeout,
        retry_window=config.plugins.retry_window_hours * 3600.0,
        concurrency_per_plugin=config.plugins.deliveries_per_plugin,
    )
    plugin_host.on_enqueued = dispatcher.notify
    retention = RetentionJob(
        store,
        chats,
        config.retention,
        clock,
        housekeeping=Housekeeping(store, config.auth, clock),
        audit_default_days=config.audit.retention_days,
        checkpointer=checkpointer,
        reports=reports,
        on_counted=lambda data_class, n: metrics.retention_total.labels(data_class=data_class).inc(
            n
        ),
    )
    logins = LoginService(
        store=store,
        config=config,
        auditor=auditor,
        limiter=limiter,
        limits=limits,
        metrics=metrics,
        bus=bus,
        keyring=keyring,
        clock=clock,
    )
    origins = console_origins(config)
    roles = CustomRoleService(store, auditor, logins, clock)
    staff_screen = StaffTextScreen(tenants, policies)
    oidc = OidcService(
        store,
        keyring,
        logins,
        roles,
        auditor,
        staff_screen,
        config.oidc,
        lambda: config.base_url,
        clock,
    )
    svc = Services(
        config=config,
        clock=clock,
        store=store,
        bus=bus,
        keyring=keyring,
        identity=identity,
        tenants=tenants,
        chats=chats,
        sessions=sessions,
        auditor=auditor,
        metrics=metrics,
        guard=guard,
        presence=presence,
        client_ip=ClientIPResolver(config.server.trusted_proxies),
        logins=logins,
        console_origin_allowed=lambda origin: normalize_origin(origin or "") in origins,
        policies=policies,
        keys=keys,
        plugins=plugin_host,
        dispatcher=dispatcher,
        retention=retention,
        reports=reports,
        audit_keys=audit_keys,
        checkpointer=checkpointer,
        governance=gov,
        api_tokens=ApiTokenService(store, auditor, clock),
        custom_roles=roles,
        scim=ScimService(
            store,
            logins,
            roles,
            auditor,
            ActivationMail(
                InviteService(
                    store=store, auditor=auditor, logins=logins, keyring=keyring, clock=clock
                ),
                Mailer(config.notify),
                auditor,
                config.base_url,
                clock,
            ),
            staff_screen,
            clock,
        ),
        staff_screen=staff_screen,
        oidc=oidc,
        e2e=e2e,
        passkeys=PasskeyService(
            store, logins, auditor, clock, relying_party(config.base_url, origins), tenants
        ),
        attachments=AttachmentService(
            config.attachments,
            TicketBox(keyring, clock, config.attachments.ticket_seconds),
            chats,
            auditor,
            ClamdScanner(config.attachments.clamd) if config.attachments.clamd else None,
        ),
        workers=[
            dispatcher,
            retention,
            search_indexer,
            checkpointer,
            gov.ledger,
            DormancySweep(logins, config.retention.interval_seconds, clock),
            SlaWatch(store, gov.alerts, clock, on_breach=quality.breached),
            OidcSessionCheck(oidc, config.oidc.check_interval),
        ],
        closers=[plugin_host.aclose, gov.notifier.aclose, oidc.aclose],
    )
    await presence.start()
    await ensure_demo_tenant(store, origins, clock())
    # Build the normalisation tables and the default engine now (about a second of CPU,
    # off the event loop) rather than stalling the first chat message.
    await asyncio.to_thread(policies.reload)  # operator keyword files: fail at start-up
    await policies.default_engine()
    return svc


async def close_services(svc: Services) -> None:
    for closer in svc.closers:
        with contextlib.suppress(Exception):
            await closer()
    with contextlib.suppress(Exception):
        await svc.presence.close()
    await svc.bus.close()
    aclose = getattr(svc.guard.limiter, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
    await svc.store.close()


def create_app(
    config: Config,
    *,
    clock: Callable[[], float] = time.time,
    services: Services | None = None,
    with_workers: bool = True,
) -> web.Application:
    """The application. Services are built on startup (inside the running loop)."""
    app = web.Application(client_max_size=256 * 1024, middlewares=http_security.middlewares())
    http_security.install(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        svc = services or await build_services(config, clock)
        app[SERVICES] = svc
        workers = list(svc.workers) if with_workers else []
        for worker in workers:
            await worker.start()
        pauses = CollectorPauses(svc.metrics.gc_pause_seconds)
        pauses.start()
        log.info(
            "gateway_started",
            base_url=config.base_url,
            store=config.store_url.split(":")[0],
            bus=config.bus.url.split(":")[0],
            key_id=svc.identity.key_id,
        )
        yield
        pauses.stop()
        await _stop_workers(workers)
        if services is None:
            await close_services(svc)

    async def going_away(app: web.Application) -> None:
        """Shutdown, before aiohttp waits for open handlers: tell every client to go (1001,
        they resume on another node or after the restart) and stop the workers, instead
        of holding sockets open for the whole shutdown timeout."""
        svc = app.get(SERVICES)
        if svc is None:
            return
        await _stop_workers(list(svc.workers) if with_workers else [])
        live = list(svc.connections)
        await asyncio.gather(
            *(conn.close(CloseCode.GOING_AWAY, "server restarting") for conn in live),
            return_exceptions=True,
        )

    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(going_away)
    app.router.add_get("/ws/customer", customer_ws)
    app.router.add_get("/ws/agent", agent_ws)
    http_public.setup_routes(app)
    setup_routes(app)
    return app


async def _stop_workers(workers: list[BackgroundWorker]) -> None:
    for worker in workers:
        with contextlib.suppress(Exception):
            await worker.stop()
