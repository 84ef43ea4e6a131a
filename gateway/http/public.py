"""Unauthenticated HTTP surface and the middlewares every response goes through.

* ``GET /.well-known/cipherdesk.json`` publishes the gateway's Ed25519 verify key so a
  widget can pin it (``data-gateway-key``) and detect a key-swapping middlebox.
* ``GET /metrics`` (Prometheus) only with the
  configured bearer token, or from loopback when none is set.
* :class:`ApiError`, the documented JSON error every HTTP module raises. Security headers
  and the catch-all error middleware live in :mod:`gateway.http.security`.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from gateway.protocol import PROTOCOL_VERSION
from gateway.services import SERVICES, Services

log = structlog.get_logger("cipherdesk.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(web.HTTPException):
    """An error a client can act on: HTTP status + stable ``code`` + human ``message``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.status_code = status
        super().__init__(
            text=web.json_response({"error": {"code": code, "message": message, **extra}}).text,
            content_type="application/json",
            headers=headers,
        )


async def well_known(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    return web.json_response(
        {
            "protocol": PROTOCOL_VERSION,
            "verify_key": svc.identity.verify_key_b64,
            "key_id": svc.identity.key_id,
            "modes": ["inspect"],
            "endpoints": {"customer": "/ws/customer", "agent": "/ws/agent"},
        },
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


def _metrics_allowed(request: web.Request, svc: Services) -> bool:
    token = svc.config.metrics.token
    if token:
        presented = request.headers.get("Authorization", "")
        return hmac.compare_digest(presented.encode(), f"Bearer {token}".encode())
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


async def metrics(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    if not svc.config.metrics.enabled:
        raise ApiError(404, "not_found", "metrics are disabled")
    if not _metrics_allowed(request, svc):
        raise ApiError(403, "forbidden", "metrics need the configured bearer token")
    body, content_type = svc.metrics.render()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/.well-known/cipherdesk.json", well_known)
    app.router.add_get("/metrics", metrics)
