"""What every HTTP response of the gateway carries, errors included (issue 11, findings 9/11).

Two pieces, installed once by :func:`install`:

* :func:`add_security_headers` runs on aiohttp's ``on_response_prepare`` signal, i.e. for
  *every* response the application sends: handler results, ``HTTPException``\\ s raised
  anywhere (401/403/404/405/413/415/429 …), the JSON 500 of :func:`catch_all` and
  aiohttp's own error pages for routed requests. A middleware that decorates returned
  responses misses every raised one — that was the finding: error answers had no CSP,
  ``nosniff``, frame options or ``no-store``. Handlers that set their own value (a page
  with its own CSP, the public key document with its cache lifetime) keep it.
* :func:`catch_all` is the outermost middleware: client errors under ``/api/`` and
  ``/.well-known/`` become the documented JSON error (``{"error":{"code","message"}}``),
  and *any* unexpected exception on any path becomes ``500 {"error":{"code":"internal",
  "ref":…}}`` with exactly one log line (exception type, where it happened and the same
  ``ref``) — never a traceback in the body, never a multi-line traceback in the log.
  A client that disconnects mid-request is one info line, not an error.

Not covered: requests aiohttp rejects before routing (a malformed request line or
oversized headers) are answered by aiohttp's protocol layer, which no application hook
sees; deploy/nginx.conf fronts the gateway in production.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from gateway.http.public import ApiError
from gateway.logs import error_location
from gateway.services import SERVICES, Services
from gateway.store.base import StoreUnavailable

log = structlog.get_logger("cipherdesk.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Documented ``error.code`` per HTTP status for errors aiohttp raises itself.
STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}

_JSON_PREFIXES = ("/api/", "/.well-known/")


def security_headers(frame_ancestors: str) -> dict[str, str]:
    """The headers every response carries unless its handler chose its own value."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Content-Security-Policy": (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
            f"frame-ancestors {frame_ancestors}"
        ),
    }
    if frame_ancestors == "'none'":
        headers["X-Frame-Options"] = "DENY"
    return headers


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: see the module docstring."""
    if isinstance(response, web.WebSocketResponse):
        return  # the 101 upgrade: nothing a browser renders
    svc: Services | None = request.app.get(SERVICES)
    ancestors = svc.config.server.frame_ancestors if svc else "'none'"
    for name, value in security_headers(ancestors).items():
        response.headers.setdefault(name, value)


STORE_RETRY_AFTER = 2
"""Seconds a client is told to wait when the database is unavailable (HTTP 503)."""


@web.middleware
async def catch_all(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost middleware: documented JSON errors, one log line, no traceback."""
    try:
        return await handler(request)
    except ApiError:
        raise
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith(_JSON_PREFIXES):
            raise
        code = STATUS_CODES.get(exc.status, "error")
        raise ApiError(exc.status, code, exc.reason or code, headers=_kept_headers(exc)) from None
    except StoreUnavailable as exc:
        log.warning(
            "http_store_unavailable", method=request.method, path=request.path, error=str(exc)
        )
        raise ApiError(
            503,
            "unavailable",
            "the service is temporarily unavailable; retry shortly",
            headers={"Retry-After": str(STORE_RETRY_AFTER)},
        ) from None
    except ConnectionError:
        # The client went away mid-request: nothing to answer, nothing to alarm anyone.
        log.info("http_client_gone", method=request.method, path=request.path)
        raise ApiError(400, "bad_request", "connection closed") from None
    except Exception as exc:
        ref = secrets.token_hex(6)
        log.error(
            "http_internal_error",
            method=request.method,
            path=request.path,
            error=type(exc).__name__,
            where=error_location(exc),
            ref=ref,
        )
        raise ApiError(500, "internal", "internal error", ref=ref) from None


def _kept_headers(exc: web.HTTPException) -> dict[str, str]:
    """Headers of aiohttp's own exception worth keeping (e.g. ``Allow`` on a 405)."""
    return {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}


def install(app: web.Application) -> None:
    """Wire the header hook into ``app`` (the middleware goes in at construction)."""
    app.on_response_prepare.append(add_security_headers)


def middlewares() -> list[Any]:
    """The application's middlewares, outermost first."""
    return [catch_all]
