"""What request handlers share, and the lifecycle every websocket goes through.

:class:`Services` is plain wiring (built once in :mod:`gateway.app`), not a god-object:
each field is a component with its own job; handlers take what they need.
:func:`serve_connection` is the one place where a websocket is admitted, counted,
prepared, run, and mapped to its close code, so customer and agent endpoints cannot
drift apart on hygiene.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from aiohttp import web

from crypto.envelope import Keyring
from crypto.identity import GatewayIdentity
from gateway.audit import Auditor
from gateway.bus.base import Bus
from gateway.chats import ChatError, ChatService
from gateway.clientip import ClientIPResolver
from gateway.config import Config
from gateway.e2e import E2EService
from gateway.logs import error_location
from gateway.metrics import Metrics
from gateway.presence import Presence
from gateway.protocol import CloseCode
from gateway.ratelimit.guard import TENANT_FULL
from gateway.sessions import SessionAuthenticator
from gateway.store.base import Store, StoreUnavailable
from gateway.tenants import TenantDirectory
from gateway.ws.connection import (
    ConnectionClosed,
    ProtocolViolation,
    SecureConnection,
    new_websocket,
)

if TYPE_CHECKING:
    from gateway.api_tokens import ApiTokenService
    from gateway.attachments.service import AttachmentService
    from gateway.custom_roles import CustomRoleService
    from gateway.governance.auditchain import AuditKeys, Checkpointer
    from gateway.governance.wiring import Governance
    from gateway.logins import LoginService
    from gateway.oidc import OidcService
    from gateway.passkeys import PasskeyService
    from gateway.plugin_host import PluginHost
    from gateway.policy import PolicyRegistry
    from gateway.ratelimit.guard import Guard
    from gateway.reports import ReportBook
    from gateway.retention import RetentionJob
    from gateway.scim import ScimService
    from gateway.staff_screen import StaffTextScreen
    from gateway.transcripts import ChatKeys
    from plugins.outbox import Dispatcher

log = structlog.get_logger("cipherdesk.ws")


class BackgroundWorker(Protocol):
    """A periodic job of the node (outbox dispatcher, retention, checkpoints, dormancy):
    started after the services are built, stopped before they close."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(slots=True)
class Services:
    config: Config
    clock: Callable[[], float]
    store: Store
    bus: Bus
    keyring: Keyring
    identity: GatewayIdentity
    tenants: TenantDirectory
    chats: ChatService
    sessions: SessionAuthenticator
    auditor: Auditor
    metrics: Metrics
    guard: Guard
    presence: Presence
    client_ip: ClientIPResolver
    logins: LoginService
    console_origin_allowed: Callable[[str | None], bool]
    """True for the origins the agent console may be used from (CSRF defence in depth)."""
    policies: PolicyRegistry
    keys: ChatKeys
    plugins: PluginHost
    dispatcher: Dispatcher
    retention: RetentionJob
    reports: ReportBook
    audit_keys: AuditKeys
    checkpointer: Checkpointer
    governance: Governance
    api_tokens: ApiTokenService
    custom_roles: CustomRoleService
    scim: ScimService
    staff_screen: StaffTextScreen
    oidc: OidcService
    e2e: E2EService
    passkeys: PasskeyService
    attachments: AttachmentService
    workers: list[BackgroundWorker]
    closers: list[Callable[[], Awaitable[None]]]
    """Closed (errors suppressed) before presence, bus and store in ``close_services``."""
    connections: set[SecureConnection] = field(default_factory=set)
    """Live sockets of this node, told to go (1001) on shutdown."""
    draining: bool = False
    """Set when shutdown starts: ``/readyz`` answers 503 so balancers stop sending."""
    key_rotation_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One master-key rotation at a time on this node."""


SERVICES: web.AppKey[Services] = web.AppKey("cipherdesk_services", Services)


def peer_ip(request: web.Request, svc: Services) -> str:
    peer = request.remote or ""
    return svc.client_ip.resolve(peer, request.headers.get("X-Forwarded-For"))


Admit = Callable[[SecureConnection, str], Awaitable[Any]]
Body = Callable[[SecureConnection, Any, str], Awaitable[None]]


STORE_UNAVAILABLE_REASON = "service temporarily unavailable, reconnect shortly"
"""Close reason (code 1013) when the database cannot be reached or written."""


async def serve_connection(
    request: web.Request,
    svc: Services,
    kind: str,
    admit: Admit,
    body: Body,
    tenant_of: Callable[[Any], str],
) -> web.StreamResponse:
    """Admit → tenant slot → handshake/run → close with the right code; never leak a
    traceback. ``tenant_of`` names the tenant of what ``admit`` returned (its sockets are
    capped per node, ``limits.concurrent_per_tenant``)."""
    ip = peer_ip(request, svc)
    ws = new_websocket(svc.config.websocket)
    release = None
    tenant_release = None
    conn = SecureConnection(
        ws,
        identity=svc.identity,
        cfg=svc.config.websocket,
        bus=svc.bus,
        kind=kind,
        on_close=lambda code: svc.metrics.ws_closed_total.labels(code=str(code)).inc(),
    )
    try:
        await ws.prepare(request)
    except ConnectionError:
        log.info("ws_peer_gone", kind=kind, stage="upgrade")
        return ws
    conn.bind_transport(request.transport)
    live = svc.connections
    live.add(conn)
    try:
        refusal = await svc.guard.admit_connection(kind, ip)
        if refusal is not None:
            await conn.refuse(*refusal)
            return ws
        release = svc.guard.connection_opened(kind, ip)
        admitted = await admit(conn, ip)
        if admitted is None:
            return ws
        tenant_release = await svc.guard.tenant_slot(tenant_of(admitted))
        if tenant_release is None:
            await conn.refuse(*TENANT_FULL)
            return ws
        with structlog.contextvars.bound_contextvars(conn=conn.conn_id, kind=kind):
            await body(conn, admitted, ip)
        await conn.close(CloseCode.NORMAL, "bye")
    except ProtocolViolation as exc:
        log.info("ws_violation", kind=kind, close_code=exc.code, reason=exc.reason)
        await conn.close(exc.code, exc.reason, force=exc.code != CloseCode.NORMAL)
    except ChatError as exc:
        await conn.close(exc.close or CloseCode.POLICY, exc.message)
    except StoreUnavailable as exc:
        # Nothing unacknowledged was committed; the client reconnects and resends.
        log.warning("ws_store_unavailable", kind=kind, error=str(exc))
        await conn.close(CloseCode.TRY_AGAIN_LATER, STORE_UNAVAILABLE_REASON, force=True)
    except (ConnectionError, ConnectionClosed):
        # The peer left or reset the connection (e.g. right after the upgrade, before its
        # key frame): nothing to tell it, nothing wrong with the server.
        log.info("ws_peer_gone", kind=kind, stage="session")
        await conn.close(CloseCode.GOING_AWAY, "connection reset", force=True)
    except Exception as exc:
        ref = secrets.token_hex(6)
        log.error(
            "ws_internal_error",
            kind=kind,
            error=type(exc).__name__,
            where=error_location(exc),
            ref=ref,
        )
        await conn.close(CloseCode.INTERNAL, f"internal error (ref {ref})", force=True)
    finally:
        live.discard(conn)
        if tenant_release is not None:
            tenant_release()
        if release is not None:
            release()
        if not conn.closing:
            await conn.close(CloseCode.GOING_AWAY, "closing")
    return ws
