"""Liveness and readiness for orchestrators and load balancers.

Two questions, two endpoints, because the right reaction differs:

* ``GET /healthz`` — *is this process alive?* Answers from memory only (no store, no
  bus), so a database blip does not make an orchestrator kill and restart every node at
  once, which would turn a short outage into a long one. 200 ``{"ok": true, "status":
  "alive", "version": ...}`` while the event loop runs; 503 before services are built.
* ``GET /readyz`` — *should traffic be sent here?* 200 only when every check passes, 503
  otherwise, with one entry per check (``ok`` and, on failure, a short ``reason`` code;
  never an address, path or exception text — the log line has the detail):

  - ``store``: the database answers a query within :data:`CHECK_TIMEOUT` seconds;
  - ``migrations``: the schema is at (or, during a rolling upgrade, one compatible version
    past) the newest migration this code knows;
  - ``bus``: the message bus is connected (always true for the in-process bus);
  - ``keyring``: a master key is loaded and wraps/unwraps a data key;
  - ``draining``: the gateway is not shutting down (false from the moment SIGTERM
    arrives, so a load balancer stops sending new sockets before they are closed).

Both are unauthenticated and bounded: they reveal nothing beyond "up" and "which check
failed". Responses are ``Cache-Control: no-store`` (security headers middleware).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import msgspec
import structlog
from aiohttp import web

from crypto.envelope import new_data_key
from gateway.services import SERVICES, Services
from gateway.store.migrate import schema_ready
from gateway.version import package_version

log = structlog.get_logger("cipherdesk.health")

CHECK_TIMEOUT = 2.0


class Check(msgspec.Struct):
    """One readiness check: ``reason`` is a stable code on failure, null when ok."""

    ok: bool
    ms: float = 0.0
    reason: str | None = None


class Liveness(msgspec.Struct):
    ok: bool
    status: str
    version: str


class Readiness(msgspec.Struct):
    ready: bool
    checks: dict[str, Check]
    schema: int | None = None


def _version() -> str:
    return package_version()


async def healthz(request: web.Request) -> web.Response:
    """Liveness: answers from memory; 503 only before startup finished."""
    alive = request.app.get(SERVICES) is not None
    body = Liveness(ok=alive, status="alive" if alive else "starting", version=_version())
    return web.Response(
        body=msgspec.json.encode(body),
        status=200 if alive else 503,
        content_type="application/json",
    )


async def _timed(name: str, probe: Callable[[], Awaitable[str | None]]) -> Check:
    """Run ``probe`` (returns None when fine, else a reason code) with a deadline."""
    start = time.perf_counter()
    try:
        reason = await asyncio.wait_for(probe(), CHECK_TIMEOUT)
    except TimeoutError:
        reason = "timeout"
    except Exception as exc:
        log.warning("readiness_check_failed", check=name, error=type(exc).__name__)
        reason = "unavailable"
    ms = round((time.perf_counter() - start) * 1000, 2)
    return Check(ok=reason is None, ms=ms, reason=reason)


async def readiness(svc: Services, draining: bool) -> Readiness:
    """Run every check concurrently (also used by tests and ``cipherdesk`` tooling)."""
    schema: list[int] = []

    async def store() -> str | None:
        schema.append(await svc.store.schema_version())
        return None

    async def bus() -> str | None:
        connected = getattr(svc.bus, "connected", True)
        return None if connected else "disconnected"

    async def keyring() -> str | None:
        key = new_data_key()
        return None if svc.keyring.unwrap(svc.keyring.wrap(key)) == key else "mismatch"

    store_check, bus_check, key_check = await asyncio.gather(
        _timed("store", store), _timed("bus", bus), _timed("keyring", keyring)
    )
    if schema:
        migrations = Check(
            ok=schema_ready(schema[0]), reason=None if schema_ready(schema[0]) else "pending"
        )
    else:
        migrations = Check(ok=False, reason="store_unavailable")
    checks = {
        "store": store_check,
        "migrations": migrations,
        "bus": bus_check,
        "keyring": key_check,
        "draining": Check(ok=not draining, reason="shutting_down" if draining else None),
    }
    return Readiness(
        ready=all(c.ok for c in checks.values()),
        checks=checks,
        schema=schema[0] if schema else None,
    )


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 200 when every check passes, else 503 naming the failing checks."""
    svc: Services | None = request.app.get(SERVICES)
    if svc is None:
        body = Readiness(ready=False, checks={"startup": Check(ok=False, reason="starting")})
    else:
        body = await readiness(svc, svc.draining)
        if not body.ready:
            failing = sorted(k for k, c in body.checks.items() if not c.ok)
            log.info("not_ready", failing=failing)
    return web.Response(
        body=msgspec.json.encode(body),
        status=200 if body.ready else 503,
        content_type="application/json",
    )


async def _start_draining(app: web.Application) -> None:
    svc = app.get(SERVICES)
    if svc is not None:
        svc.draining = True


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    # First of the shutdown hooks (before sockets are closed with 1001): readiness flips
    # to 503 the moment shutdown starts.
    app.on_shutdown.insert(0, _start_draining)
