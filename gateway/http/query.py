"""One value per query parameter on the JSON API.

``?plugin=a&plugin=b`` used to be read as ``a`` by some handlers and could be read as
``b`` by a proxy or log pipeline in front: two parties disagreeing about what a request
asks is how filters get bypassed. The API documents every query parameter as a single
value (``/api/openapi.json``), so a repeated one is refused with 400 ``bad_request``
naming it, before any handler runs. Found by schemathesis (tests/ops/test_api_fuzz.py).
"""

from __future__ import annotations

from aiohttp import web

from gateway.http.public import ApiError, Handler


@web.middleware
async def single_query_values(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        seen: set[str] = set()
        for name, _value in request.query.items():  # items(): iterating keys dedups them
            if name in seen:
                raise ApiError(
                    400,
                    "bad_request",
                    f"query parameter {name[:64]} is given more than once",
                    field=name[:64],
                )
            seen.add(name)
    return await handler(request)


def setup(app: web.Application) -> None:
    """Innermost middleware: errors it raises still pass the JSON-error middleware."""
    app.middlewares.append(single_query_values)
