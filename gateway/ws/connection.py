"""One websocket connection speaking protocol v1: handshake, sealed frames, fan-in.

:class:`SecureConnection` owns everything a connection needs regardless of who is on the
other end (customer or agent):

* the handshake (signed ``hello``, ``key``, channel keys) with a timeout;
* opening inbound ``sealed`` frames through the strict replay window;
* a *bounded* outbound queue drained by one writer task that seals in order. Frames that
  queued up while the writer was busy leave in one socket write (one syscall instead of
  one each); a client that cannot keep up is disconnected (close 1008 "slow consumer")
  instead of making the gateway buffer without limit;
* bus subscriptions, cancelled when the connection ends;
* mapping every failure to its documented close code — never a traceback to the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import struct
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal, Protocol, cast

import structlog
from aiohttp import WSMsgType, web

from crypto.channel import Channel, ChannelError, EphemeralKey, KeyFormatError, ReplayError
from crypto.encoding import EncodingError, b64decode, b64encode
from crypto.identity import GatewayIdentity
from gateway.bus.base import Bus, BusEvent, Subscription
from gateway.config import WebSocketConfig
from gateway.protocol import (
    PROTOCOL_VERSION,
    CloseCode,
    Error,
    FrameError,
    Hello,
    Key,
    Outbound,
    Sealed,
    decode_plain,
    encode,
)

log = structlog.get_logger("cipherdesk.ws")

_CLOSE = object()  # sentinel in the outbound queue

MAX_FRAMES_PER_WRITE = 64
"""Most queued frames the writer hands to the socket in one write."""

BATCH_BYTES = 64 * 1024
"""Batching stops adding frames at this size, and is used only while the socket's write
buffer holds less than this: above it every frame goes through aiohttp's writer, which
waits for the client to drain (flow control), so a slow reader's buffer stays bounded."""


class _Transport(Protocol):
    """The transport methods the batched write uses (asyncio's and uvloop's TCP transports
    both have them; uvloop's does not subclass ``asyncio.WriteTransport``)."""

    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...


def text_frame(payload: bytes) -> bytes:
    """``payload`` as one final, unmasked websocket text frame (RFC 6455 section 5.2:
    servers never mask), byte for byte what aiohttp's writer sends for it."""
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", 0x81, 126, size) + payload
    return struct.pack("!BBQ", 0x81, 127, size) + payload


class ProtocolViolation(Exception):
    """Ends the connection with ``code`` and a short, client-safe ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def accept_key(ephemeral: EphemeralKey, data: str | bytes) -> tuple[Key, Channel]:
    """The server's side of handshake step 2: the client's ``key`` frame (outside bytes)
    → the frame and the connection's channel. Every failure is a
    :class:`ProtocolViolation` (close 1008); ``tests/fuzz`` holds it to that."""
    try:
        frame = decode_plain(data)
    except FrameError as exc:
        raise ProtocolViolation(CloseCode.POLICY, str(exc)[:120]) from None
    if not isinstance(frame, Key):
        raise ProtocolViolation(CloseCode.POLICY, "expected key frame")
    try:
        shared = ephemeral.shared_key(frame.client_pk)
    except (KeyFormatError, EncodingError, ValueError):
        raise ProtocolViolation(CloseCode.POLICY, "invalid client key") from None
    return frame, Channel.server(shared)


def open_sealed(channel: Channel, data: str | bytes) -> bytes:
    """One inbound websocket text frame after the handshake (outside bytes) → the inner
    frame's plaintext, through the channel's strict replay window. Every failure is a
    :class:`ProtocolViolation` (close 1008); ``tests/fuzz`` holds it to that."""
    try:
        frame = decode_plain(data)
    except FrameError as exc:
        raise ProtocolViolation(CloseCode.POLICY, str(exc)[:120]) from None
    if not isinstance(frame, Sealed):
        raise ProtocolViolation(CloseCode.POLICY, "only sealed frames after handshake")
    try:
        return channel.open(frame.n, b64decode(frame.c))
    except ReplayError:
        raise ProtocolViolation(CloseCode.POLICY, "replayed or reordered frame") from None
    except (ChannelError, EncodingError):
        raise ProtocolViolation(CloseCode.POLICY, "frame failed authentication") from None


def new_websocket(cfg: WebSocketConfig) -> web.WebSocketResponse:
    """A websocket response configured per the OWASP websocket cheat sheet:
    no permessage-deflate (compression leaks lengths, CRIME-style), a maximum frame size
    (aiohttp closes with 1009 above it), and a server heartbeat (off by default)."""
    return web.WebSocketResponse(
        compress=False,
        max_msg_size=cfg.max_frame_bytes,
        heartbeat=cfg.heartbeat or None,
        autoping=True,
    )


class SecureConnection:
    """The sealed channel over one aiohttp websocket plus its outbound queue."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        identity: GatewayIdentity,
        cfg: WebSocketConfig,
        bus: Bus,
        kind: str,
        on_close: Callable[[int], None] | None = None,
    ) -> None:
        self.ws = ws
        self.conn_id = secrets.token_hex(8)
        self.kind = kind
        self._identity = identity
        self._cfg = cfg
        self._bus = bus
        self._channel: Channel | None = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=cfg.send_queue)
        self._writer: asyncio.Task[None] | None = None
        self._subs: dict[str, Subscription] = {}
        self._closing = False
        self._on_close = on_close
        self.close_code: int | None = None
        self._transport: asyncio.BaseTransport | None = None

    # ------------------------------------------------------------------ handshake

    async def handshake(
        self, limits: dict[str, Any], mode: Literal["inspect", "e2e"] = "inspect"
    ) -> Key:
        """Send the signed hello, wait for ``key``, derive the channel. Returns the key frame
        (it may carry ``resume``). ``mode``: the tenant's mode for new chats (customers)."""
        sid = secrets.token_urlsafe(12)
        ephemeral = EphemeralKey.generate()
        hello = Hello(
            v=PROTOCOL_VERSION,
            sid=sid,
            server_pk=ephemeral.public_b64,
            sig=self._identity.sign_hello(sid, ephemeral.public_b64),
            mode=mode,
            limits=limits,
        )
        await self.ws.send_frame(encode(hello), WSMsgType.TEXT)
        loop = asyncio.get_running_loop()
        data = await self._receive_text(
            loop.time() + self._cfg.handshake_timeout, "handshake timeout"
        )
        frame, self._channel = accept_key(ephemeral, data)
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        return frame

    async def _receive_text(self, deadline: float, timeout_reason: str) -> str:
        """The next text frame, or a close once ``deadline`` (loop time) passes.

        An absolute deadline, not aiohttp's ``receive(timeout=)``: that timer restarts on
        every ping/pong aiohttp answers itself, so a client sending only pings would never
        time out of the handshake (slowloris) and heartbeats would keep idle sockets alive.
        """
        try:
            async with asyncio.timeout_at(deadline):
                msg = await self.ws.receive()
        except TimeoutError:
            raise ProtocolViolation(
                CloseCode.POLICY if "handshake" in timeout_reason else CloseCode.GOING_AWAY,
                timeout_reason,
            ) from None
        if msg.type == WSMsgType.TEXT:
            return msg.data
        if msg.type == WSMsgType.BINARY:
            raise ProtocolViolation(CloseCode.POLICY, "binary frames are not part of v1")
        if msg.type == WSMsgType.ERROR and self.ws.close_code == CloseCode.TOO_BIG:
            raise ProtocolViolation(CloseCode.TOO_BIG, "frame too big")
        raise ConnectionClosed()

    # ------------------------------------------------------------------ inbound

    async def frames(self) -> AsyncIterator[bytes]:
        """Yield each inbound inner frame's plaintext (JSON bytes) until the peer leaves."""
        assert self._channel is not None
        while True:
            try:
                idle_deadline = asyncio.get_running_loop().time() + self._cfg.idle_timeout
                data = await self._receive_text(idle_deadline, "idle timeout")
            except ConnectionClosed:
                return
            yield open_sealed(self._channel, data)

    # ------------------------------------------------------------------ outbound

    def send(self, frame: Outbound) -> bool:
        """Queue a frame for sealing and sending; False (and a disconnect) if the client
        is too slow to keep its queue below the bound."""
        if self._closing:
            return False
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("slow_consumer", conn=self.conn_id, kind=self.kind)
            self.drop(CloseCode.POLICY, "slow consumer", self._cfg.slow_consumer_grace)
            return False
        return True

    async def send_paced(self, frame: Outbound) -> bool:
        """Queue a frame, waiting for room: for replays (a transcript of thousands of
        messages) that a reading client drains at its own pace. Only a client that makes no
        room within ``slow_consumer_grace`` is dropped as a slow consumer."""
        if self._closing:
            return False
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(frame)  # room already: no timer, no task
            return True
        try:
            await asyncio.wait_for(self._queue.put(frame), self._cfg.slow_consumer_grace)
        except TimeoutError:
            log.warning("slow_consumer", conn=self.conn_id, kind=self.kind)
            self.drop(CloseCode.POLICY, "slow consumer", self._cfg.slow_consumer_grace)
            return False
        return not self._closing

    def send_error(self, code: str, message: str, ref: str | None = None) -> None:
        self.send(Error(code=code, message=message, ref=ref))

    async def _write_loop(self) -> None:
        """Seal and send queued frames in order until ``_CLOSE`` or the socket ends.

        One frame waiting: aiohttp's writer sends it. Several waiting (a burst: an ack, the
        echo and a queue update at once): they are sealed in order and written to the
        transport together, a syscall for all instead of one each -- as long as the socket's
        buffer is small (``BATCH_BYTES``); a backed-up socket goes one frame at a time
        through aiohttp's flow control. A websocket aiohttp has closed gets nothing more."""
        assert self._channel is not None
        channel, ws, queue = self._channel, self.ws, self._queue
        try:
            while True:
                item = await queue.get()
                if item is _CLOSE:
                    return
                transport = cast("_Transport | None", self._transport)
                if (
                    queue.empty()
                    or transport is None
                    or transport.get_write_buffer_size() >= BATCH_BYTES
                ):
                    await ws.send_frame(self._sealed(channel, item), WSMsgType.TEXT)
                    continue
                batch = [text_frame(self._sealed(channel, item))]
                size, done = len(batch[0]), False
                while len(batch) < MAX_FRAMES_PER_WRITE and size < BATCH_BYTES and queue.qsize():
                    item = queue.get_nowait()
                    if item is _CLOSE:
                        done = True
                        break
                    batch.append(text_frame(self._sealed(channel, item)))
                    size += len(batch[-1])
                if ws.closed or transport.is_closing():
                    return
                transport.write(b"".join(batch))
                if done:
                    return
        except (ConnectionResetError, RuntimeError, asyncio.CancelledError):
            return

    @staticmethod
    def _sealed(channel: Channel, frame: Outbound) -> bytes:
        """``frame`` sealed as the outer ``sealed`` frame's bytes."""
        counter, ciphertext = channel.seal(encode(frame))
        return b'{"t":"sealed","n":%d,"c":"%s"}' % (counter, b64encode(ciphertext).encode())

    def drop(self, code: int, reason: str = "slow consumer", grace: float = 7.0) -> None:
        """Cut a client that stopped reading, without ever waiting on it.

        aiohttp's close would wait on the client's full socket buffer without end. Instead
        the close frame is appended to the transport's buffer directly (a client that
        reads again learns why) and the transport is aborted once the client has made no
        read progress for ``grace`` seconds (at most ``4 * grace`` in all), so the socket
        and its slot are released even if the client never reads again.
        """
        if self._closing:
            return
        self._start_closing(code)
        if self._writer is not None:
            self._writer.cancel()  # only ever interrupts a drain: frames stay whole
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        payload = code.to_bytes(2, "big") + reason.encode()[:120]
        # aiohttp's TCP transport: asyncio's, or uvloop's, which does not subclass
        # asyncio.WriteTransport (an isinstance check here failed under uvloop and left
        # the stalled socket in place).
        writer = cast(asyncio.WriteTransport, transport)
        writer.write(bytes([0x88, len(payload)]) + payload)  # FIN + close, unmasked
        _abort_when_stalled(transport, grace)

    def abort(self, code: int, reason: str) -> None:
        """Close soon from synchronous code (bus handlers, queue overflow)."""
        if self._closing:
            return
        self._closing = True
        asyncio.get_running_loop().create_task(self.close(code, reason, force=True))

    async def close(self, code: int, reason: str, *, force: bool = False) -> None:
        """Flush what is queued (unless forced), then close with ``code``."""
        self._start_closing(code)
        if self._writer is not None and not self._writer.done():
            if force:
                self._writer.cancel()
            else:
                with contextlib.suppress(asyncio.QueueFull):
                    self._queue.put_nowait(_CLOSE)
                with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(asyncio.shield(self._writer), 2.0)
                self._writer.cancel()
        if not self.ws.closed:
            with contextlib.suppress(Exception):
                await self.ws.close(code=code, message=reason.encode()[:120])

    def bind_transport(self, transport: asyncio.BaseTransport | None) -> None:
        """The TCP transport under the websocket, so a forced close can drop it."""
        self._transport = transport

    def _start_closing(self, code: int) -> None:
        """First step of every close path: stop taking frames, record and count the close
        once (before the close handshake: the peer may act on it at once), and leave every
        bus topic."""
        self._closing = True
        if self.close_code is None:
            self.close_code = code
        if self._on_close is not None:
            self._on_close(code)
            self._on_close = None
        for sub in self._subs.values():
            sub.cancel()
        self._subs.clear()

    async def refuse(self, code: int, reason: str) -> None:
        """Close before (or instead of) the handshake, with a plain error frame first."""
        self._start_closing(code)
        with contextlib.suppress(Exception):
            await self.ws.send_frame(encode(Error(code=str(code), message=reason)), WSMsgType.TEXT)
            await self.ws.close(code=code, message=reason.encode()[:120])

    # ------------------------------------------------------------------ bus

    async def subscribe(self, topic: str, handler: Callable[[BusEvent], None]) -> None:
        if topic not in self._subs and not self._closing:
            self._subs[topic] = await self._bus.subscribe(topic, handler)

    def unsubscribe(self, topic: str) -> None:
        sub = self._subs.pop(topic, None)
        if sub is not None:
            sub.cancel()

    @property
    def closing(self) -> bool:
        return self._closing

    @property
    def send_capacity(self) -> int:
        """Frames that may wait to be sent before the client counts as a slow consumer
        (``websocket.send_queue``)."""
        return self._queue.maxsize


def _abort_when_stalled(transport: Any, grace: float) -> None:
    """Abort ``transport`` once its write buffer has not shrunk for ``grace`` seconds."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    state = {"size": transport.get_write_buffer_size(), "moved": started}

    def check() -> None:
        if transport.is_closing():
            return
        now, size = loop.time(), transport.get_write_buffer_size()
        if size < state["size"]:
            state["moved"] = now
        state["size"] = size
        if now - state["moved"] >= grace or now - started >= 4 * grace:
            transport.abort()
        else:
            loop.call_later(0.5, check)

    loop.call_later(0.5, check)


class ConnectionClosed(Exception):
    """The peer closed the websocket (not an error)."""
