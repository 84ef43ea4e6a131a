"""Issue 11, findings 8 and 9 over real sockets: unauthenticated clients cannot produce a
traceback or a 1011 (deeply nested frames, resets right after the upgrade), and the
per-tenant connection cap is enforced on both websocket endpoints (close 1013)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
from collections.abc import AsyncIterator

import aiohttp
import pytest
from structlog.testing import capture_logs

from gateway.jsonlimits import MAX_FRAME_DEPTH
from gateway.protocol import CloseCode
from gateway.sdk.client import CustomerClient
from gateway.store.base import Tenant
from tests.e2e.test_bad_input import Gw, Raw, _expect_close
from tests.gateway.helpers import eventually, start_gateway


@pytest.fixture
async def gw(tmp_path) -> AsyncIterator[Gw]:
    runner, base, svc = await start_gateway(
        tmp_path, ratelimit={"limits": {"concurrent_per_tenant": 2}}
    )
    try:
        yield Gw(base, svc, tmp_path)
    finally:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _customer(gw: Gw, http: aiohttp.ClientSession, tenant: str = "demo") -> Raw:
    ws = await http.ws_connect(
        f"{gw.ws}/ws/customer?tenant={tenant}",
        headers={"Origin": gw.base},
        autoclose=False,
        max_msg_size=0,
    )
    return Raw(ws)


async def _round_trip(gw: Gw) -> None:
    """A barrier: a fresh customer completes a handshake and a ping/pong, so everything the
    server did for earlier connections has been processed (no sleeps)."""
    client = CustomerClient(
        gw.base, "demo", origin=gw.base, gateway_key=gw.svc.identity.verify_key_b64
    )
    await client.connect()
    await client.ping()
    await client.aclose()


def _no_internal_errors(gw: Gw, logs: list[dict]) -> None:
    assert gw.svc.metrics.value("cipherdesk_ws_closed_total", {"code": "1011"}) == 0
    bad = [e for e in logs if e["log_level"] in ("error", "critical") or "exc_info" in e]
    assert not bad, bad


def _nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize(
    "frame",
    [
        '{"t":"key","x":' + _nested(5000) + "}",
        '{"t":"key","client_pk":' + _nested(5000) + "}",
        "[" * 8000,
        '{"t":"key","resume":' + '{"a":' * 2000 + "1" + "}" * 2000 + "}",
    ],
)
async def test_deeply_nested_handshake_frame_closes_1008(gw: Gw, http, frame: str) -> None:
    with capture_logs() as logs:
        raw = await _customer(gw, http)
        await raw.read_hello()
        await raw.ws.send_str(frame)
        await _expect_close(raw, CloseCode.POLICY)
    _no_internal_errors(gw, logs)
    assert [e for e in logs if e["event"] == "ws_violation"]


@pytest.mark.parametrize(
    "inner",
    [
        b'{"t":"ping","x":' + _nested(3000).encode() + b"}",
        b'{"t":"open","profile":' + b'{"name":' * 2000 + b'"x"' + b"}" * 2000 + b"}",
        b"[" * (MAX_FRAME_DEPTH + 1) + b"]" * (MAX_FRAME_DEPTH + 1),
    ],
)
async def test_deeply_nested_sealed_frame_closes_1008(gw: Gw, http, inner: bytes) -> None:
    with capture_logs() as logs:
        raw = await _customer(gw, http)
        await raw.read_hello()
        await raw.key()
        await raw.sealed(inner)
        reason = await _expect_close(raw, CloseCode.POLICY)
    assert "invalid frame" in reason
    _no_internal_errors(gw, logs)


async def test_nesting_within_the_limit_is_still_accepted(gw: Gw, http) -> None:
    """Forward compatibility: unknown fields nesting up to the limit are ignored."""
    raw = await _customer(gw, http)
    await raw.read_hello()
    await raw.key()
    levels = MAX_FRAME_DEPTH - 1
    await raw.sealed(b'{"t":"ping","future":' + _nested(levels).encode() + b"}")
    msg = await raw.ws.receive(timeout=5)
    frame = json.loads(msg.data)
    assert raw.channel is not None
    assert json.loads(raw.channel.open(frame["n"], base64.b64decode(frame["c"]))) == {"t": "pong"}
    await raw.ws.close()


async def test_deeply_nested_agent_frame_closes_1008(gw: Gw, http) -> None:
    await gw.login("deep@example.com")
    token = gw.tokens["deep@example.com"]
    with capture_logs() as logs:
        ws = await http.ws_connect(
            f"{gw.ws}/ws/agent",
            headers={"Authorization": f"Bearer {token}"},
            autoclose=False,
            max_msg_size=0,
        )
        raw = Raw(ws)
        await raw.read_hello()
        await raw.key()
        await raw.sealed(b'{"t":"queue","x":' + _nested(4000).encode() + b"}")
        await _expect_close(raw, CloseCode.POLICY)
    _no_internal_errors(gw, logs)


def _upgrade_request(port: int, origin: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET /ws/customer?tenant=demo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Origin: {origin}\r\n\r\n"
    ).encode()


async def _reset_after_upgrade(gw: Gw, read_bytes: int) -> None:
    """Send the upgrade, read ``read_bytes`` of the answer (0: none), then RST."""
    port = int(gw.base.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(_upgrade_request(port, gw.base))
    await writer.drain()
    if read_bytes:
        await reader.readexactly(read_bytes)
    sock: socket.socket = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@pytest.mark.parametrize("read_bytes", [0, 12, 200])
async def test_reset_right_after_the_upgrade_is_quiet(gw: Gw, read_bytes: int) -> None:
    with capture_logs() as logs:
        for _ in range(5):
            await _reset_after_upgrade(gw, read_bytes)
        await _round_trip(gw)
        await _round_trip(gw)
    _no_internal_errors(gw, logs)
    # every reset connection gives its slots back, once the server has read its reset: on a
    # loaded machine some are read only after the round trips (seen: 4 of 5 at 200 bytes)
    counts = gw.svc.guard.concurrency.count
    await eventually(
        lambda: counts("tenant:demo") == counts("global") == 0, "the reset connections' slots"
    )


# ------------------------------------------------------------------ per-tenant cap


async def _handshaken(gw: Gw, tenant: str = "demo") -> CustomerClient:
    client = CustomerClient(
        gw.base, tenant, origin=gw.base, gateway_key=gw.svc.identity.verify_key_b64
    )
    await client.connect()
    await client.ping()
    return client


async def test_tenant_cap_refuses_customers_with_1013(gw: Gw, http) -> None:
    first, second = await _handshaken(gw), await _handshaken(gw)
    assert gw.svc.guard.concurrency.count("tenant:demo") == 2
    raw = await _customer(gw, http)
    reason = await _expect_close(raw, CloseCode.TRY_AGAIN_LATER)
    assert "tenant" in reason and "retry-after=" in reason
    assert (
        gw.svc.metrics.value("cipherdesk_connections_refused_total", {"reason": "tenant_capacity"})
        == 1
    )
    # another tenant is not affected by demo's crowd
    await gw.svc.store.create_tenant(
        Tenant(id="other", name="Other", allowed_origins=[gw.base], created_at=gw.svc.clock())
    )
    other = await _handshaken(gw, "other")
    # a slot freed is a slot usable again
    await first.aclose()
    await _round_trip_until_free(gw)
    third = await _handshaken(gw)
    for client in (second, other, third):
        await client.aclose()


async def _round_trip_until_free(gw: Gw) -> None:
    """The server releases a slot when it has processed the close; a handshake of a client
    of another tenant is the barrier (demo's own may still be refused)."""
    for _ in range(50):
        if gw.svc.guard.concurrency.count("tenant:demo") < 2:
            return
        client = await _handshaken(gw, "other")
        await client.aclose()
    raise AssertionError("slot never released")


async def test_tenant_cap_counts_agents_and_refuses_them_too(gw: Gw, http) -> None:
    await gw.login("cap@example.com")
    token = gw.tokens["cap@example.com"]
    agent = await gw.connect("cap@example.com")
    customer = await _handshaken(gw)
    ws = await http.ws_connect(
        f"{gw.ws}/ws/agent",
        headers={"Authorization": f"Bearer {token}"},
        autoclose=False,
        max_msg_size=0,
    )
    reason = await _expect_close(Raw(ws), CloseCode.TRY_AGAIN_LATER)
    assert "tenant" in reason
    await agent.aclose()
    await customer.aclose()


async def test_tenant_override_lowers_its_own_cap(gw: Gw, http) -> None:
    tenant = await gw.svc.store.get_tenant("demo")
    assert tenant is not None
    tenant.settings = {**tenant.settings, "limits": {"concurrent_per_tenant": 1}}
    await gw.svc.store.update_tenant(tenant)
    gw.svc.tenants.invalidate("demo")
    only = await _handshaken(gw)
    raw = await _customer(gw, http)
    await _expect_close(raw, CloseCode.TRY_AGAIN_LATER)
    await only.aclose()
