"""The outbound writer of a sealed connection (gateway/ws/connection.py): frames queued in
a burst leave in few socket writes, whole and in order; a backed-up socket goes through
aiohttp's flow control instead; the hand-built frame header is aiohttp's, byte for byte.

A real aiohttp server and a real ``websockets`` client on loopback; the client checks every
frame through the channel's strict counter window, so a reordered, lost or torn frame fails.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import nacl.public
import pytest
from aiohttp import web
from aiohttp._websocket.writer import WebSocketWriter
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from crypto.encoding import b64encode
from crypto.identity import GatewayIdentity
from gateway.bus.memory import MemoryBus
from gateway.config import WebSocketConfig
from gateway.protocol import Error, Key, decode_hello, encode
from gateway.sdk.client import client_channel, open_sealed
from gateway.ws.connection import (
    BATCH_BYTES,
    MAX_FRAMES_PER_WRITE,
    SecureConnection,
    new_websocket,
    text_frame,
)
from tests.gateway.helpers import serve_app


class CountingTransport:
    """The request's transport, counting the writes the connection makes to it directly;
    ``buffered`` (when set) is what it claims to hold unsent."""

    def __init__(self, inner: Any, buffered: int | None = None) -> None:
        self.inner = inner
        self.buffered = buffered
        self.writes: list[int] = []

    def write(self, data: bytes) -> None:
        self.writes.append(len(data))
        self.inner.write(data)

    def is_closing(self) -> bool:
        return bool(self.inner.is_closing())

    def get_write_buffer_size(self) -> int:
        if self.buffered is not None:
            return self.buffered
        return int(self.inner.get_write_buffer_size())


Burst = Callable[[SecureConnection], Any]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    """``serve(burst, buffered=None)``: a server whose one connection does the handshake,
    runs ``burst`` (synchronous sends queue everything before the writer runs; a coroutine
    is awaited), then closes after flushing; returns (url, [the counting transport])."""
    runners: list[web.AppRunner] = []

    async def start(burst: Burst, buffered: int | None = None) -> tuple[str, list[Any]]:
        seen: list[CountingTransport] = []

        async def handler(request: web.Request) -> web.StreamResponse:
            ws = new_websocket(WebSocketConfig())
            await ws.prepare(request)
            conn = SecureConnection(
                ws,
                identity=GatewayIdentity.generate(),
                cfg=WebSocketConfig(),
                bus=MemoryBus(),
                kind="customer",
            )
            transport = CountingTransport(request.transport, buffered)
            seen.append(transport)
            conn.bind_transport(transport)  # type: ignore[arg-type]
            await conn.handshake({})
            if inspect.isawaitable(sent := burst(conn)):
                await sent
            await conn.close(1000, "done")
            return ws

        app = web.Application()
        app.router.add_get("/ws", handler)
        runner, port = await serve_app(app)
        runners.append(runner)
        return f"ws://127.0.0.1:{port}/ws", seen

    yield start
    for runner in runners:
        await runner.cleanup()


async def receive_all(url: str) -> list[Any]:
    """Handshake like the SDK, then every inner frame until the server closes."""
    frames = []
    async with connect(url, max_size=None) as ws:
        hello = decode_hello(await ws.recv())
        private = nacl.public.PrivateKey.generate()
        channel = client_channel(hello, private)
        await ws.send(encode(Key(client_pk=b64encode(bytes(private.public_key)))), text=True)
        try:
            while True:
                frames.append(open_sealed(channel, await asyncio.wait_for(ws.recv(), 10)))
        except ConnectionClosed:
            pass
    return frames


def numbered(count: int, text: str = "x") -> Burst:
    def burst(conn: SecureConnection) -> None:
        for i in range(count):
            assert conn.send(Error(code=str(i), message=text))

    return burst


async def test_a_burst_leaves_in_few_writes_whole_and_in_order(serve: Any) -> None:
    url, seen = await serve(numbered(200))
    frames = await receive_all(url)
    assert [f.code for f in frames] == [str(i) for i in range(200)]
    # all 200 (and the close) were queued before the writer woke: batches of at most
    # MAX_FRAMES_PER_WRITE, one write each
    writes = seen[0].writes
    assert 0 < len(writes) <= 200 // MAX_FRAMES_PER_WRITE + 1
    assert len(writes) < 10


async def test_batches_stop_at_the_byte_bound(serve: Any) -> None:
    big = "y" * 3000  # ~4 KB sealed: about 16 per batch
    url, seen = await serve(numbered(100, big))
    frames = await receive_all(url)
    assert [f.code for f in frames] == [str(i) for i in range(100)]
    assert [f.message for f in frames] == [big] * 100
    writes = seen[0].writes
    assert len(writes) >= 100 * 4000 // (BATCH_BYTES + 4100)
    assert max(writes) < BATCH_BYTES + 4200  # a batch ends with the frame that crossed it


async def test_a_backed_up_socket_goes_through_aiohttps_flow_control(serve: Any) -> None:
    url, seen = await serve(numbered(50), buffered=BATCH_BYTES)
    frames = await receive_all(url)
    assert [f.code for f in frames] == [str(i) for i in range(50)]
    assert seen[0].writes == []  # every frame through aiohttp's writer, one at a time


async def test_a_frame_with_nothing_behind_it_goes_through_aiohttps_writer(
    serve: Any,
) -> None:
    async def one_at_a_time(conn: SecureConnection) -> None:
        for i in range(3):
            assert conn.send(Error(code=str(i), message="x"))
            for _ in range(5):  # the writer wakes, finds the queue empty and sends
                await asyncio.sleep(0)

    url, seen = await serve(one_at_a_time)
    frames = await receive_all(url)
    assert [f.code for f in frames] == ["0", "1", "2"]
    assert seen[0].writes == []


class _Sink:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def is_closing(self) -> bool:
        return False


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
async def test_text_frame_is_what_aiohttp_sends(size: int) -> None:
    sink = _Sink()
    writer = WebSocketWriter(object(), sink)  # type: ignore[arg-type]
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    await writer.send_frame(payload, 0x1)
    assert text_frame(payload) == sink.data
