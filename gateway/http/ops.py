"""The operations surface in one registration: readiness probes, the API contract, and
the query-parameter rule the contract relies on (issue 22)."""

from __future__ import annotations

from aiohttp import web

from gateway.http import health as http_health
from gateway.http import openapi
from gateway.http import query as http_query


def setup(app: web.Application) -> None:
    http_query.setup(app)
    http_health.setup_routes(app)
    openapi.setup_routes(app)
