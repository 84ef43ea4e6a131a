"""The OpenAPI contract covers every route, is served, and docs/API.md is current."""

from __future__ import annotations

import sys
from pathlib import Path

import aiohttp
import schemathesis
from aiohttp import web

from gateway.app import create_app
from gateway.config import load_config
from gateway.http import openapi
from tests.gateway.helpers import start_gateway

ROOT = Path(__file__).resolve().parents[2]


def _app(tmp_path: Path) -> web.Application:
    return create_app(
        load_config(None, environ={}, overrides={"server": {"data_dir": str(tmp_path)}})
    )


def test_every_registered_route_is_documented(tmp_path: Path) -> None:
    missing = openapi.undocumented(_app(tmp_path))
    assert not missing, "\n".join(missing)


def test_no_documented_operation_without_a_route(tmp_path: Path) -> None:
    assert openapi.stale(_app(tmp_path)) == []


def test_an_undocumented_route_is_named_with_the_line_to_add(tmp_path: Path) -> None:
    app = _app(tmp_path)

    async def brand_new(request: web.Request) -> web.Response:
        return web.json_response({})

    app.router.add_post("/api/brand-new/{thing_id}", brand_new)
    (message,) = openapi.undocumented(app)
    assert message.startswith("POST /api/brand-new/{thing_id} (handler ")
    assert "brand_new" in message
    assert 'document("POST", "/api/brand-new/{thing_id}"' in message
    assert "gateway/http/contract.py" in message


def test_document_is_openapi_3_1_and_request_bodies_are_the_handlers_structs() -> None:
    doc = openapi.build_document("t")
    assert doc["openapi"] == "3.1.0"
    schemathesis.openapi.from_dict(doc)  # loads (refs resolve)
    login = doc["paths"]["/api/login"]["post"]
    ref = login["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/LoginBody"
    body = doc["components"]["schemas"]["LoginBody"]
    assert set(body["required"]) == {"email", "password", "otp"}
    assert body["additionalProperties"] is False
    assert login["security"] == []
    me = doc["paths"]["/api/me"]["get"]
    assert {"bearer": []} in me["security"] and "401" in me["responses"]
    patch = doc["paths"]["/api/agents/{agent_id}"]["patch"]
    assert {"413", "415", "400", "401", "403", "404", "409", "429"} <= set(patch["responses"])


async def test_served_at_api_openapi_json(tmp_path: Path) -> None:
    runner, base, _svc = await start_gateway(tmp_path)
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{base}{openapi.OPENAPI_PATH}") as resp,
        ):
            assert resp.status == 200
            assert resp.content_type == "application/json"
            served = await resp.json()
        assert served["paths"] == openapi.build_document("x")["paths"]
    finally:
        await runner.cleanup()


def test_docs_api_md_is_current() -> None:
    expected = openapi.markdown(openapi.build_document("see /api/openapi.json"))
    current = (ROOT / "docs" / "API.md").read_text(encoding="utf-8")
    assert current == expected, (
        "docs/API.md is stale: run  .venv/bin/python -m gateway.http.openapi --markdown > "
        f"docs/API.md  ({sys.executable})"
    )


def test_two_structs_with_one_name_are_refused() -> None:
    """Operations refer to components by class name: a second class of the same name
    (msgspec then qualifies both) would leave the reference pointing at nothing."""
    import msgspec

    def make() -> type:
        class FreezeBody(msgspec.Struct):
            frozen: bool

        return FreezeBody

    first, second = make(), make()
    openapi._check_unique_names([first, first])
    try:
        openapi._check_unique_names([first, second])
    except RuntimeError as exc:
        assert "two Structs named FreezeBody" in str(exc)
    else:
        raise AssertionError("a name collision went through")


def test_every_schema_reference_resolves() -> None:
    doc = openapi.build_document("t")
    names = set(doc["components"]["schemas"])
    refs = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                refs.add(ref.rsplit("/", 1)[-1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert refs <= names, refs - names
