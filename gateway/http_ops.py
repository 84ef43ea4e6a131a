"""The operations surface in one registration: readiness probes, the API contract, and
the query-parameter rule the contract relies on (issue 22)."""

from __future__ import annotations

from aiohttp import web

from gateway import http_health, http_query, openapi


def setup(app: web.Application) -> None:
    http_query.setup(app)
    http_health.setup_routes(app)
    openapi.setup_routes(app)
