"""The OpenAPI 3.1 contract of every HTTP endpoint, generated from the code's types.

Why generated: a hand-written contract drifts. Here each operation is one
:func:`document` call (all of them in :mod:`gateway.http.contract`, one registry) naming the
msgspec ``Struct`` the handler decodes its body with (the same class, so request schemas
cannot drift), the Struct describing its answer, its query parameters and the statuses it
can return. :func:`build_document` turns that into OpenAPI with
``msgspec.json.schema_components``. Two tests keep it honest:

* ``tests/ops/test_openapi.py`` fails when a route registered on the aiohttp app has no
  :func:`document` entry, naming the route and the line to add;
* ``tests/ops/test_api_fuzz.py`` runs schemathesis against a real gateway: every response
  must match its documented status, content type and schema (response Structs forbid
  unknown fields, so a field added to a handler but not here fails too).

Served at ``GET /api/openapi.json`` (public: it describes the API, not its data) and
rendered into ``docs/API.md`` by ``python -m gateway.http.openapi --markdown``.
"""

from __future__ import annotations

import re
import sys
from functools import cache
from typing import Any

import msgspec
from aiohttp import web

from gateway.http import contract  # noqa: F401  (declares every operation on import)
from gateway.http.operations import JSON, REGISTRY, Operation
from gateway.version import package_version

OPENAPI_PATH = "/api/openapi.json"

#: Methods aiohttp adds by itself (HEAD for every GET) are documented through their GET.
IMPLICIT_METHODS = frozenset({"HEAD", "OPTIONS"})

_PARAM_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}")


class ErrorDetail(msgspec.Struct):
    """``code`` is stable (see the module docs of gateway/http/plumbing.py); ``field`` names the
    offending request field when known; ``retry_after`` (seconds) on some 429s."""

    code: str
    message: str
    field: str | None = None
    retry_after: int | None = None


class ErrorBody(msgspec.Struct, forbid_unknown_fields=True):
    """Every 4xx/5xx JSON answer."""

    error: ErrorDetail


_STATUS_TEXT = {
    200: "OK",
    201: "Created",
    304: "Not modified",
    400: "Bad request (`bad_request` or a specific code)",
    401: "Not logged in (`unauthenticated`, `login_failed`)",
    403: "Forbidden (`forbidden`, `csrf`, or a specific code)",
    404: "Not found",
    409: "Conflict (a specific code)",
    413: "Body too large (`too_large`)",
    415: "Body is not JSON (`unsupported_media_type`)",
    429: "Rate limited (`rate_limited`, see `Retry-After`)",
    503: "Not ready",
}


def registry() -> dict[tuple[str, str], Operation]:
    """Every declared operation (:mod:`gateway.http.contract`, imported above, declares them)."""
    return REGISTRY


# ---------------------------------------------------------------------- route coverage


def app_routes(app: web.Application) -> list[tuple[str, str, str]]:
    """(method, path, handler name) of every route registered on ``app``."""
    out = []
    for route in app.router.routes():
        method = route.method.upper()
        if method in IMPLICIT_METHODS or route.resource is None:
            continue
        info = route.resource.get_info()
        path = info.get("path") or info.get("formatter") or route.resource.canonical
        handler = (
            getattr(route.handler, "__module__", "?")
            + "."
            + getattr(route.handler, "__qualname__", getattr(route.handler, "__name__", "?"))
        )
        out.append((method, path, handler))
    return out


def undocumented(app: web.Application) -> list[str]:
    """One ready-to-paste instruction per registered route that has no :func:`document`."""
    known = registry()
    missing = []
    for method, path, handler in app_routes(app):
        if (method, path) not in known:
            missing.append(
                f"{method} {path} (handler {handler}) is not in the API contract: add\n"
                f'    document("{method}", "{path}", "<one-line summary>", tag="<group>",\n'
                f"             body=<the msgspec Struct the handler decodes, or omit>,\n"
                f"             ok=<a Struct describing the success JSON>, errors=(<statuses>))\n"
                f"  to gateway/http/contract.py (response Structs live there too)"
            )
    return missing


def stale(app: web.Application) -> list[str]:
    """Documented operations no route serves (a removed or renamed route)."""
    served = {(m, p) for m, p, _ in app_routes(app)}
    return [f"{m} {p}" for (m, p) in registry() if (m, p) not in served]


# ---------------------------------------------------------------------- the document


def _schema_of(types: list[type]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    schemas, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    return list(schemas), components


def _check_unique_names(types: list[type]) -> None:
    """Operations refer to their Structs by class name; two different classes with one
    name would make msgspec qualify both component names and leave those refs dangling."""
    seen: dict[str, type] = {}
    for kind in types:
        other = seen.setdefault(kind.__name__, kind)
        if other is not kind:
            raise RuntimeError(
                f"two Structs named {kind.__name__} in the API contract "
                f"({other.__module__} and {kind.__module__}): reuse one or "
                f"rename one"
            )


def _query_parameters(query: type, components: dict[str, Any]) -> list[dict[str, Any]]:
    name = query.__name__
    schema = components.pop(name)
    required = set(schema.get("required", ()))
    return [
        {"name": prop, "in": "query", "required": prop in required, "schema": sub}
        for prop, sub in schema.get("properties", {}).items()
    ]


def _response(status: int, kind: type | None, content_type: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _STATUS_TEXT.get(status, "")}
    if status == 304:
        return response
    if kind is not None:
        response["content"] = {
            content_type: {"schema": {"$ref": f"#/components/schemas/{kind.__name__}"}}
        }
    elif content_type != JSON:
        response["content"] = {content_type: {"schema": {"type": "string"}}}
    return response


def _statuses(op: Operation) -> list[int]:
    statuses = set(op.errors)
    if op.body is not None:
        statuses |= {400, 413, 415}
    if op.query is not None:
        statuses.add(400)
    if op.auth:
        statuses |= {401, 429}
    return sorted(statuses)


def _operation(op: Operation, components: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag]}
    if op.description:
        out["description"] = op.description
    params = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": op.path_params.get(name, {"type": "string"}),
        }
        for name in _PARAM_RE.findall(op.path)
    ]
    if op.query is not None:
        params += _query_parameters(op.query, components)
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = {
            "required": True,
            "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{op.body.__name__}"}}},
        }
    responses = {str(op.ok_status): _response(op.ok_status, op.ok, op.content_type)}
    if op.links:
        responses[str(op.ok_status)]["links"] = op.links
    for status, kind in op.extra_ok.items():
        responses[str(status)] = _response(status, kind, op.content_type if kind is None else JSON)
    error_kind = op.error_kind or (ErrorBody if op.error_content_type == JSON else None)
    for status in _statuses(op):
        responses.setdefault(str(status), _response(status, error_kind, op.error_content_type))
    out["responses"] = responses
    out["security"] = [{"bearer": []}, {"session_cookie": []}] if op.auth else []
    return out


@cache
def build_document(version: str = "0") -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once per process)."""
    ops = sorted(registry().values(), key=lambda o: (o.path, o.method))
    types: list[type] = [ErrorBody]
    for op in ops:
        types += [t for t in (op.ok, op.body, op.query, op.error_kind, *op.extra_ok.values()) if t]
    _check_unique_names(list(dict.fromkeys(types)))
    _, components = _schema_of(list(dict.fromkeys(types)))
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        openapi_path = _PARAM_RE.sub(lambda m: "{" + m.group(1) + "}", op.path)
        paths.setdefault(openapi_path, {})[op.method.lower()] = _operation(op, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cipherdesk gateway HTTP API",
            "version": version,
            "description": "Generated from the gateway's request/response types "
            "(gateway/http/contract.py). Conventions, error codes, CSRF and "
            "rate limits: gateway/http/plumbing.py; the websocket protocol: "
            "docs/PROTOCOL.md.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the token from POST /api/login",
                },
                "session_cookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "cd_session",
                    "description": "set by POST /api/login; writes also need X-CSRF-Token",
                },
            },
        },
    }


async def openapi_json(request: web.Request) -> web.Response:
    """``GET /api/openapi.json``: the contract (public; describes the API, not data)."""

    return web.Response(
        body=msgspec.json.encode(build_document(package_version())),
        content_type=JSON,
        headers={"Cache-Control": "no-cache"},
    )


def setup_routes(app: web.Application) -> None:
    app.router.add_get(OPENAPI_PATH, openapi_json)


# ---------------------------------------------------------------------- docs/API.md


def markdown(doc: dict[str, Any]) -> str:
    """A readable rendering of the document for docs/API.md."""
    lines = [
        "# cipherdesk HTTP API",
        "",
        "Generated by `python -m gateway.http.openapi --markdown > docs/API.md` from the "
        "same types as `GET /api/openapi.json` (OpenAPI 3.1); "
        "`tests/ops/test_openapi.py` fails when this file is stale.",
        "",
        doc["info"]["description"],
        "",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            by_tag.setdefault(op["tags"][0], []).append((method.upper(), path, op))
    for tag in sorted(by_tag):
        lines += [
            f"## {tag}",
            "",
            "| method | path | summary | auth | body | success | other statuses |",
            "|---|---|---|---|---|---|---|",
        ]
        for method, path, op in by_tag[tag]:
            body = op.get("requestBody", {}).get("content", {}).get(JSON, {}).get("schema", {})
            body_name = body.get("$ref", "").rsplit("/", 1)[-1] or "—"
            ok = [s for s in op["responses"] if s.startswith(("2", "3"))]
            other = [s for s in op["responses"] if s not in ok]

            def name(status: str, op: dict[str, Any] = op) -> str:
                content = op["responses"][status].get("content", {})
                for ctype, media in content.items():
                    ref = media.get("schema", {}).get("$ref", "")
                    return f"{status} `{ref.rsplit('/', 1)[-1]}`" if ref else f"{status} {ctype}"
                return status

            lines.append(
                f"| {method} | `{path}` | {op['summary']} | "
                f"{'session' if op['security'] else 'public'} | `{body_name}` | "
                f"{', '.join(name(s) for s in ok)} | {', '.join(other) or '—'} |"
            )
        lines.append("")
    lines += ["## Schemas", ""]
    for schema_name, schema in sorted(doc["components"]["schemas"].items()):
        props = schema.get("properties")
        if not props:
            continue
        required = set(schema.get("required", ()))
        fields = ", ".join(f"`{p}`{'' if p in required else '?'}" for p in props)
        lines.append(f"- **{schema_name}**: {fields}")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m gateway.http.openapi [--markdown]
    import json

    document_ = build_document("see /api/openapi.json")
    if "--markdown" in sys.argv[1:]:
        sys.stdout.write(markdown(document_))
    else:
        sys.stdout.write(json.dumps(document_, indent=1, ensure_ascii=False) + "\n")
