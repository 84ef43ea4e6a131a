"""Issue 11, findings 9 and 11 over real HTTP: every response — errors included — carries
the security headers, hostile bodies get their documented JSON error, and an unexpected
exception is a JSON 500 with one log line and no traceback anywhere."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from gateway.http.security import security_headers
from gateway.jsonlimits import MAX_BODY_DEPTH, exceeds_depth
from gateway.services import Services
from tests.gateway.helpers import bearer, make_agent, start_gateway

REQUIRED = security_headers("'none'")


@pytest.fixture
async def gw(tmp_path) -> AsyncIterator[tuple[aiohttp.ClientSession, str, Services]]:
    runner, base, svc = await start_gateway(tmp_path, ratelimit={"limits": {"login_per_ip": "3/m"}})
    try:
        async with aiohttp.ClientSession() as http:
            yield http, base, svc
    finally:
        await runner.cleanup()


def _assert_secured(resp: aiohttp.ClientResponse) -> None:
    for name, value in REQUIRED.items():
        assert resp.headers.get(name) == value, (resp.status, name, dict(resp.headers))


def _deep(levels: int) -> bytes:
    return b'{"email":' + b"[" * levels + b"]" * levels + b',"password":"x","otp":"1"}'


JSON = {"Content-Type": "application/json"}

# (name, method, path, request kwargs, expected status, expected error code or None)
ERROR_CASES: list[tuple[str, str, str, dict[str, Any], int, str | None]] = [
    ("401 api", "GET", "/api/me", {}, 401, "unauthenticated"),
    ("401 forged bearer", "GET", "/api/me", {"headers": bearer("forged")}, 401, "unauthenticated"),
    ("404 api", "GET", "/api/nope", {}, 404, "not_found"),
    ("404 page", "GET", "/no-such-page", {}, 404, None),
    ("404 static", "GET", "/static/../../etc/passwd", {}, 404, None),
    ("405 api", "DELETE", "/api/login", {}, 405, "method_not_allowed"),
    (
        "415 api",
        "POST",
        "/api/login",
        {"data": "a=b", "headers": {"Content-Type": "text/plain"}},
        415,
        "unsupported_media_type",
    ),
    (
        "413 api",
        "POST",
        "/api/login",
        {"data": b'{"email":"' + b"a" * 70_000 + b'"}', "headers": JSON},
        413,
        "too_large",
    ),
    (
        "400 malformed",
        "POST",
        "/api/login",
        {"data": b"{nope", "headers": JSON},
        400,
        "bad_request",
    ),
    (
        "400 deep json",
        "POST",
        "/api/login",
        {"data": _deep(5000), "headers": JSON},
        400,
        "bad_request",
    ),
    ("400 ws without upgrade", "GET", "/ws/customer?tenant=demo", {}, 400, None),
]


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
async def test_every_error_response_carries_the_security_headers(gw, case) -> None:
    http, base, _svc = gw
    _name, method, path, kwargs, status, code = case
    async with http.request(method, base + path, **kwargs) as resp:
        text = await resp.text()
        assert resp.status == status, text
        _assert_secured(resp)
        assert "Traceback" not in text and 'File "' not in text
        if code is not None:
            assert json.loads(text)["error"]["code"] == code


async def test_rate_limited_answer_carries_the_headers(gw) -> None:
    http, base, _svc = gw
    statuses = []
    for _ in range(5):
        async with http.post(
            f"{base}/api/login", json={"email": "x@example.com", "password": "p", "otp": "1"}
        ) as r:
            statuses.append(r.status)
            if r.status == 429:
                _assert_secured(r)
                assert (await r.json())["error"]["code"] == "rate_limited"
                assert r.headers.get("Retry-After")
    assert 429 in statuses, statuses


async def test_success_responses_keep_their_own_choices(gw) -> None:
    """The hook fills in, never overrides: the public key document stays cacheable."""
    http, base, _svc = gw
    async with http.get(f"{base}/.well-known/cipherdesk.json") as r:
        assert r.status == 200
        assert r.headers["Cache-Control"] == "public, max-age=300"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors" in r.headers["Content-Security-Policy"]
    async with http.get(f"{base}/healthz") as r:
        _assert_secured(r)


async def test_nested_admin_json_is_a_400_not_a_500(gw) -> None:
    """Finding 9: nested JSON in an admin body (the policy table) answered 500."""
    http, base, svc = gw
    _agent, secret, password = await make_agent(svc, "admin@example.com", role="admin")
    from tests.gateway.helpers import login

    token = await login(http, base, "admin@example.com", password, secret, svc.clock())
    deep = b'{"policy":' + b'{"a":' * 3000 + b"1" + b"}" * 3000 + b"}"
    with capture_logs() as logs:
        async with http.patch(
            f"{base}/api/tenant", data=deep, headers={**JSON, **bearer(token)}
        ) as r:
            body = await r.json()
            assert r.status == 400, body
            assert body["error"]["code"] == "bad_request"
            assert f"{MAX_BODY_DEPTH}" in body["error"]["message"]
            _assert_secured(r)
    assert not [e for e in logs if e["log_level"] in ("error", "critical")]


async def test_unexpected_exception_is_a_json_500_with_one_log_line(gw, caplog) -> None:
    http, base, svc = gw

    async def explode(token: str | None) -> None:
        raise RuntimeError("secret detail 4111111111111111 must not leak")

    svc.sessions.authenticate = explode  # type: ignore[method-assign]
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        for path in ("/api/me", "/api/agents"):
            async with http.get(base + path, headers=bearer("x" * 43)) as r:
                text = await r.text()
                assert r.status == 500
                _assert_secured(r)
                error = json.loads(text)["error"]
                assert error["code"] == "internal" and len(error["ref"]) == 12
                assert "secret detail" not in text and "Traceback" not in text
    internal = [e for e in logs if e["event"] == "http_internal_error"]
    assert len(internal) == 2
    for event in internal:
        assert event["error"] == "RuntimeError" and "exc_info" not in event
        assert event["where"].startswith("test_http_security.py:")
        assert "secret detail" not in repr(event)
    # aiohttp itself logged nothing (its handler would print the traceback)
    assert not [
        r for r in caplog.records if r.name.startswith("aiohttp") and r.levelno >= logging.ERROR
    ]


@pytest.mark.parametrize(
    ("doc", "limit", "deeper"),
    [
        (b"[]", 1, False),
        (b"[[]]", 1, True),
        (b'{"a":{"b":[1]}}', 3, False),
        (b'{"a":{"b":[1]}}', 2, True),
        (b'["[[[[[[["]', 1, False),
        (b'["\\"[[["]', 1, False),
        (b"[" * 40, 32, True),
        (b"[[][[][[]]]]", 3, True),
        (b"[[][[][[]]]]", 4, False),
        (b"]]]]][", 1, False),
        (b"[]" * 1000, 1, False),
    ],
)
def test_depth_scan(doc: bytes, limit: int, deeper: bool) -> None:
    assert exceeds_depth(doc, limit) is deeper
    assert exceeds_depth(doc.decode(), limit) is deeper
