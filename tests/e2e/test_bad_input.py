"""Hostile and malformed input on the websocket endpoints (issue: gateway core, "Bad input").

Every case gets its documented close code, nothing reaches the client as a traceback, and
the gateway keeps serving another customer's chat with nothing acked lost.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from crypto.channel import Channel, EphemeralKey
from gateway.protocol import Ack, CloseCode
from gateway.sdk.client import CustomerClient
from tests.e2e.conftest import SocketGateway
from tests.gateway.helpers import start_gateway


@dataclass
class Gw(SocketGateway):
    """The shared in-process gateway, plus its websocket base URL."""

    @property
    def ws(self) -> str:
        return self.base.replace("http://", "ws://")


@pytest.fixture
async def gw(tmp_path) -> AsyncIterator[Gw]:
    runner, base, svc = await start_gateway(
        tmp_path, websocket={"max_frame_bytes": 8192, "handshake_timeout": 1.0}
    )
    try:
        yield Gw(base, svc, tmp_path)
    finally:
        await runner.cleanup()


class Raw:
    """A hand-driven protocol client: does exactly what the test says, nothing more."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.channel: Channel | None = None
        self.hello: dict | None = None

    async def read_hello(self) -> dict:
        msg = await self.ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        self.hello = json.loads(msg.data)
        assert self.hello["t"] == "hello"
        return self.hello

    async def key(self) -> None:
        assert self.hello is not None
        mine = EphemeralKey.generate()
        await self.ws.send_str(json.dumps({"t": "key", "client_pk": mine.public_b64}))
        self.channel = Channel.client(mine.shared_key(self.hello["server_pk"]))

    async def sealed(
        self, inner: dict | bytes, counter: int | None = None, tamper: bool = False
    ) -> None:
        assert self.channel is not None
        raw = inner if isinstance(inner, bytes) else json.dumps(inner).encode()
        n, c = self.channel.seal(raw)
        if tamper:
            c = bytes([c[0] ^ 1]) + c[1:]
        await self.ws.send_str(
            json.dumps(
                {
                    "t": "sealed",
                    "n": n if counter is None else counter,
                    "c": base64.b64encode(c).decode(),
                }
            )
        )

    async def close_code(self) -> tuple[int | None, str]:
        """Read until the server closes; return its close code and reason."""
        while True:
            msg = await self.ws.receive(timeout=5)
            if msg.type == aiohttp.WSMsgType.CLOSE:
                return msg.data, msg.extra or ""
            if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                return self.ws.close_code, ""
            if msg.type == aiohttp.WSMsgType.TEXT:
                assert "Traceback" not in msg.data


async def _connect(
    gw: Gw, http: aiohttp.ClientSession, *, tenant: str = "demo", origin: str | None = "self"
) -> Raw:
    headers = {} if origin is None else {"Origin": gw.base if origin == "self" else origin}
    ws = await http.ws_connect(
        f"{gw.ws}/ws/customer?tenant={tenant}", headers=headers, autoclose=False, max_msg_size=0
    )
    return Raw(ws)


async def _expect_close(raw: Raw, code: int) -> str:
    got, reason = await raw.close_code()
    assert got == code, (got, reason)
    assert "Traceback" not in reason and 'File "' not in reason
    return reason


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_unknown_tenant_is_forbidden(gw: Gw, http: aiohttp.ClientSession) -> None:
    raw = await _connect(gw, http, tenant="no-such-tenant")
    assert "unknown tenant" in await _expect_close(raw, CloseCode.FORBIDDEN)


@pytest.mark.parametrize("origin", [None, "https://evil.example", "null", "http://127.0.0.1:1"])
async def test_missing_or_foreign_origin_is_forbidden(
    gw: Gw, http: aiohttp.ClientSession, origin: str | None
) -> None:
    raw = await _connect(gw, http, origin=origin)
    assert "origin" in await _expect_close(raw, CloseCode.FORBIDDEN)


@pytest.mark.parametrize(
    "first",
    [
        "{not json",
        "[]",
        '{"t":"bogus"}',
        '{"t":"key"}',
        '{"t":"key","client_pk":"short"}',
        '{"t":"sealed","n":1,"c":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}',
    ],
)
async def test_malformed_or_out_of_order_handshake_closes_1008(
    gw: Gw, http: aiohttp.ClientSession, first: str
) -> None:
    raw = await _connect(gw, http)
    await raw.read_hello()
    await raw.ws.send_str(first)
    await _expect_close(raw, CloseCode.POLICY)


async def test_wrong_size_client_key_closes_1008(gw: Gw, http: aiohttp.ClientSession) -> None:
    raw = await _connect(gw, http)
    await raw.read_hello()
    bogus = base64.b64encode(b"\x00" * 32).decode()  # low-order point
    await raw.ws.send_str(json.dumps({"t": "key", "client_pk": bogus}))
    await _expect_close(raw, CloseCode.POLICY)


async def test_silence_after_hello_hits_the_handshake_timeout(
    gw: Gw, http: aiohttp.ClientSession
) -> None:
    raw = await _connect(gw, http)
    await raw.read_hello()
    assert "handshake" in await _expect_close(raw, CloseCode.POLICY)


async def test_binary_frame_closes_1008(gw: Gw, http: aiohttp.ClientSession) -> None:
    raw = await _connect(gw, http)
    await raw.read_hello()
    await raw.key()
    await raw.ws.send_bytes(b"\x00\x01binary")
    await _expect_close(raw, CloseCode.POLICY)


@pytest.mark.parametrize(
    "case",
    [
        "replay",
        "reorder",
        "zero",
        "tamper",
        "plain_after_key",
        "inner_not_json",
        "inner_unknown_type",
        "inner_bad_field",
    ],
)
async def test_bad_sealed_frames_close_1008(gw: Gw, http: aiohttp.ClientSession, case: str) -> None:
    raw = await _connect(gw, http)
    await raw.read_hello()
    await raw.key()
    if case == "replay":
        await raw.sealed({"t": "ping"}, counter=1)
        await raw.sealed({"t": "ping"}, counter=1)
    elif case == "reorder":
        await raw.sealed({"t": "ping"}, counter=3)
        await raw.sealed({"t": "ping"}, counter=2)
    elif case == "zero":
        await raw.sealed({"t": "ping"}, counter=0)
    elif case == "tamper":
        await raw.sealed({"t": "ping"}, tamper=True)
    elif case == "plain_after_key":
        await raw.ws.send_str(json.dumps({"t": "open"}))
    elif case == "inner_not_json":
        await raw.sealed(b"\xff\xfe not json")
    elif case == "inner_unknown_type":
        await raw.sealed({"t": "format_disk"})
    elif case == "inner_bad_field":
        await raw.sealed({"t": "msg", "id": "x" * 500, "text": "hi"})
    await _expect_close(raw, CloseCode.POLICY)


async def test_oversized_frame_closes_1009(gw: Gw, http: aiohttp.ClientSession) -> None:
    raw = await _connect(gw, http)
    await raw.read_hello()
    await raw.key()
    await raw.ws.send_str(json.dumps({"t": "sealed", "n": 1, "c": "A" * 20_000}))
    await _expect_close(raw, CloseCode.TOO_BIG)


async def test_frame_before_open_is_a_recoverable_error(
    gw: Gw, http: aiohttp.ClientSession
) -> None:
    """Protocol misuse that is not an attack gets an ``error`` frame, not a close."""
    raw = await _connect(gw, http)
    await raw.read_hello()
    await raw.key()
    await raw.sealed({"t": "msg", "id": "m1", "text": "hello?"})
    msg = await raw.ws.receive(timeout=5)
    frame = json.loads(msg.data)
    assert frame["t"] == "sealed"
    assert raw.channel is not None
    inner = json.loads(raw.channel.open(frame["n"], base64.b64decode(frame["c"])))
    assert inner == {
        "t": "error",
        "code": "no_chat",
        "message": "send open (or key.resume) first",
        "ref": "m1",
    }


async def test_abuse_on_one_connection_never_costs_another_chat_its_messages(
    gw: Gw, http: aiohttp.ClientSession
) -> None:
    good = CustomerClient(
        gw.base, "demo", origin=gw.base, gateway_key=gw.svc.identity.verify_key_b64
    )
    await good.connect()
    await good.open()
    acked = [await good.send_text(f"before {i}") for i in range(3)]
    for case in ("{not json", '{"t":"bogus"}'):
        raw = await _connect(gw, http)
        await raw.read_hello()
        await raw.ws.send_str(case)
        await _expect_close(raw, CloseCode.POLICY)
    acked += [await good.send_text(f"after {i}") for i in range(3)]
    assert all(isinstance(a, Ack) for a in acked)
    chat = await gw.svc.store.get_chat(good.chat)
    history = await gw.svc.chats.history(chat, 0)
    assert [m.text for m in history] == [f"before {i}" for i in range(3)] + [
        f"after {i}" for i in range(3)
    ]
    closes = gw.svc.metrics.value("cipherdesk_ws_closed_total", {"code": "1008"})
    assert closes >= 2
    await good.aclose()
