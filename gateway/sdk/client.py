"""Python SDK for wire protocol v1: customer and agent clients over ``websockets``.

Used by the test suites, the benchmarks and bots. It speaks exactly what the widget and
the console speak (DESIGN.md, "Wire protocol (v1)"; docs/PROTOCOL.md)::

    customer = CustomerClient("http://127.0.0.1:8080", "demo", origin="http://127.0.0.1:8080",
                              gateway_key=verify_key_b64)
    await customer.connect()
    welcome = await customer.open(profile={"name": "Ada"})
    ack = await customer.send_text("hello")            # Ack, or Notice if blocked/limited
    ...
    await customer.reconnect()                         # resume + replay + resend unacked

    agent = AgentClient("http://127.0.0.1:8080", token=session_token)
    ready = await agent.connect()
    await agent.accept(welcome.chat)
    msg = await agent.wait_for(Msg, timeout=5)

One connection = one :class:`~crypto.channel.Channel`; a background reader task opens
every sealed frame through the strict replay window and dispatches it:

* ``ack`` frames (and ``notice``/``error`` frames that settle a request) resolve the
  future of the request that is waiting for them;
* every other frame is buffered, in arrival order, for :meth:`_SecureClient.next_frame`
  and :meth:`_SecureClient.wait_for`. ``wait_for`` takes the *first matching* frame and
  leaves the others buffered, so waiting for one thing never loses another.

When the server closes the socket, ``close_code``/``close_reason`` are recorded and every
pending wait raises :class:`ClosedError`.
"""

# ruff: noqa: ASYNC109 - ``timeout=`` arguments are this SDK's documented API (tests, bots)

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import msgspec
import nacl.exceptions
import nacl.public
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from crypto.channel import Channel, ChannelError
from crypto.encoding import EncodingError, b64decode, b64encode
from crypto.identity import verify_hello
from gateway.protocol import (
    PROTOCOL_VERSION,
    Accept,
    Ack,
    AgentClose,
    AgentFetch,
    AgentMsg,
    AgentTyping,
    AgentUpload,
    ChatEvent,
    CloseCode,
    CustomerClose,
    CustomerConsent,
    CustomerFetch,
    CustomerMsg,
    CustomerTyping,
    CustomerUpload,
    Error,
    FileTicket,
    FrameError,
    Hello,
    History,
    Key,
    Msg,
    Notice,
    Open,
    Outbound,
    Ping,
    Pong,
    Profile,
    QueueRequest,
    QueueSnapshot,
    QueueUpdate,
    Ready,
    Resume,
    Sealed,
    Transfer,
    Unwatch,
    UploadTicket,
    Watch,
    Welcome,
    decode_hello,
    encode,
)
from gateway.sdk.files import FileSent, get_file, http_base, post_file

__all__ = [
    "AgentClient",
    "ClosedError",
    "CustomerClient",
    "GatewayKeyMismatch",
    "ProtocolError",
    "ResumeInfo",
    "ServerError",
    "check_hello",
    "client_channel",
    "decode_inner",
    "open_sealed",
    "seal_frame",
]

F = TypeVar("F")
Predicate = Callable[[Any], bool]

DEFAULT_TIMEOUT = 10.0


# ----------------------------------------------------------------------------- errors


class ProtocolError(Exception):
    """The server broke protocol v1 (bad hello, undecodable or unauthenticated frame)."""


class GatewayKeyMismatch(ProtocolError):
    """The ``hello`` signature does not verify under the pinned gateway key: something
    between us and the gateway swapped the key exchange (or the pin is stale)."""


class ClosedError(ConnectionError):
    """The connection is closed; raised from every pending or later wait."""

    def __init__(self, code: int | None, reason: str | None) -> None:
        super().__init__(f"connection closed ({code}): {reason or ''}".rstrip(": "))
        self.code = code
        self.reason = reason


class ServerError(Exception):
    """The server answered a request with an ``error`` frame (``code`` is documented)."""

    def __init__(self, frame: Error) -> None:
        super().__init__(f"{frame.code}: {frame.message}")
        self.code = frame.code
        self.message = frame.message
        self.ref = frame.ref
        self.frame = frame


# ------------------------------------------------------------- pure framing (no I/O)

_plain_from_server = msgspec.json.Decoder(Sealed | Error)
_inner_decoder = msgspec.json.Decoder(Outbound)


def check_hello(hello: Hello, gateway_key: str | None) -> None:
    """Validate a ``hello``: protocol version, and the signature when a key is pinned.

    :raises ProtocolError: unsupported version.
    :raises GatewayKeyMismatch: ``gateway_key`` is given and the signature does not verify.
    """
    if hello.v != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {hello.v!r}")
    if gateway_key is not None and not verify_hello(
        gateway_key, hello.sid, hello.server_pk, hello.sig
    ):
        raise GatewayKeyMismatch("hello signature does not match the pinned gateway key")


def client_channel(hello: Hello, private_key: nacl.public.PrivateKey) -> Channel:
    """The client's :class:`Channel` from the server's ephemeral key in ``hello``."""
    try:
        server_pk = nacl.public.PublicKey(b64decode(hello.server_pk, expected_len=32))
        shared = nacl.public.Box(private_key, server_pk).shared_key()
    except (EncodingError, ValueError, nacl.exceptions.CryptoError) as exc:
        raise ProtocolError(f"unusable server key: {exc}") from None
    return Channel.client(shared)


def seal_frame(channel: Channel, frame: msgspec.Struct) -> str:
    """The ``sealed`` websocket text carrying ``frame`` under the next client counter."""
    counter, ciphertext = channel.seal_b64(encode(frame))
    return f'{{"t":"sealed","n":{counter},"c":"{ciphertext}"}}'


def decode_inner(plaintext: bytes) -> Any:
    """Decode an inner server frame into its :data:`gateway.protocol.Outbound` struct."""
    try:
        return _inner_decoder.decode(plaintext)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ProtocolError(f"undecodable server frame: {exc}") from None


def open_sealed(channel: Channel, data: str | bytes) -> Any:
    """Open one server websocket text frame: a ``sealed`` frame is authenticated (strict
    replay window) and decoded; a plain ``error`` frame is returned as is.

    :raises ProtocolError: not JSON/not a v1 server frame, replayed/reordered counter,
        or failed authentication.
    """
    try:
        outer = _plain_from_server.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ProtocolError(f"invalid server frame: {exc}") from None
    if isinstance(outer, Error):
        return outer
    try:
        plaintext = channel.open_b64(outer.n, outer.c)
    except ChannelError as exc:
        raise ProtocolError(f"sealed frame rejected: {exc}") from None
    return decode_inner(plaintext)


def _ws_url(url_base: str, path: str, query: str = "") -> str:
    parts = urlsplit(url_base.rstrip("/"))
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None:
        raise ValueError(f"url_base must be http(s):// or ws(s)://, got {url_base!r}")
    return urlunsplit((scheme, parts.netloc, parts.path + path, query, ""))


# ----------------------------------------------------------------------------- base


class _SecureClient:
    """Handshake, sealed send/receive, request futures and the frame buffer."""

    def __init__(
        self,
        url: str,
        *,
        origin: str | None = None,
        headers: Mapping[str, str] | None = None,
        gateway_key: str | None = None,
        open_timeout: float = DEFAULT_TIMEOUT,
        max_buffer: int = 10_000,
        echo: bool = True,
    ) -> None:
        self.url = url
        self.echo = echo
        """False: messages this connection stores exactly as sent are not sent back to it
        (as the widget and the console ask); their ``ack`` carries seq and time."""
        self.queue_updates = False
        """Agents: ask for ``queue_update`` frames instead of the whole queue per change."""
        self.origin = origin
        self.headers = dict(headers or {})
        self.gateway_key = gateway_key
        self.open_timeout = open_timeout
        self.hello: Hello | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.dropped_frames = 0  # frames evicted because nobody read the buffer
        self._ws: ClientConnection | None = None
        self._channel: Channel | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._buffer: deque[Any] = deque(maxlen=max_buffer)
        self._arrived = asyncio.Event()
        self._failure: Exception | None = None
        #: Headers of the last upgrade response (e.g. which worker of a node answered).
        self.upgrade_headers: dict[str, str] = {}

    # ------------------------------------------------------------------ connection

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._failure is None

    async def connect(self) -> Any:
        """Open the socket and run the handshake; subclasses return their first frame."""
        if self._ws is not None:
            if self.connected:
                raise RuntimeError("already connected; use aclose() or reconnect()")
            await self.aclose()
        self._reset()
        try:
            ws = await ws_connect(
                self.url,
                origin=Origin(self.origin) if self.origin else None,
                additional_headers=self.headers or None,
                compression=None,
                open_timeout=self.open_timeout,
                max_size=1 << 20,
                proxy=None,
            )
        except InvalidStatus as exc:
            raise ProtocolError(f"upgrade refused: HTTP {exc.response.status_code}") from None
        self._ws = ws
        if ws.response is not None:
            self.upgrade_headers = dict(ws.response.headers.raw_items())
        try:
            await self._handshake(ws)
        except BaseException:
            await self._abort_transport()
            raise
        self._reader = asyncio.get_running_loop().create_task(self._read_loop(ws))
        return await self._after_handshake()

    def _reset(self) -> None:
        # Frames buffered from an earlier connection stay readable.
        self.hello = None
        self.close_code = self.close_reason = None
        self._failure = None
        self._channel = None

    async def _handshake(self, ws: ClientConnection) -> None:
        try:
            first = await asyncio.wait_for(ws.recv(), self.open_timeout)
        except ConnectionClosed:
            self._record_close(ws)
            raise ClosedError(self.close_code, self.close_reason) from None
        try:
            hello = decode_hello(first)
        except FrameError:
            refusal = _maybe_error(first)
            if refusal is None:
                raise ProtocolError("expected a hello frame") from None
            # The gateway refused us (origin, auth, rate): it closes right after the error.
            with contextlib.suppress(asyncio.TimeoutError, ConnectionClosed):
                await asyncio.wait_for(ws.wait_closed(), 2.0)
            self._record_close(ws)
            code = self.close_code if self.close_code not in (None, 1005, 1006) else None
            raise ClosedError(code or _int_or_none(refusal.code), refusal.message) from None
        try:
            check_hello(hello, self.gateway_key)
        except ProtocolError:
            with contextlib.suppress(Exception):
                await ws.close(CloseCode.POLICY, "gateway key mismatch")
            raise
        private = nacl.public.PrivateKey.generate()
        channel = client_channel(hello, private)
        key = Key(
            client_pk=b64encode(bytes(private.public_key)),
            resume=self._resume_frame(),
            echo=self.echo,
            queue_updates=self.queue_updates,
        )
        await ws.send(encode(key), text=True)
        self.hello = hello
        self._channel = channel

    def _resume_frame(self) -> Resume | None:
        return None

    async def _after_handshake(self) -> Any:
        return None

    async def _read_loop(self, ws: ClientConnection) -> None:
        channel = self._channel
        assert channel is not None
        try:
            while True:
                data = await ws.recv()
                frame = open_sealed(channel, data)
                self._dispatch(frame)
        except ConnectionClosed:
            self._record_close(ws)
            self._fail(ClosedError(self.close_code, self.close_reason))
        except ProtocolError as exc:
            self.close_code, self.close_reason = CloseCode.POLICY, str(exc)[:120]
            self._fail(exc)
            with contextlib.suppress(Exception):
                await ws.close(CloseCode.POLICY, "protocol error")
        except asyncio.CancelledError:
            self._fail(ClosedError(self.close_code or CloseCode.NORMAL, "client closed"))
            raise

    def _record_close(self, ws: ClientConnection) -> None:
        if self.close_code is None:
            self.close_code = ws.close_code
            self.close_reason = ws.close_reason

    def _fail(self, exc: Exception) -> None:
        if self._failure is None:
            self._failure = exc
        for future in self._pending.values():
            _set_exception(future, exc)
        self._pending.clear()
        self._arrived.set()

    async def _abort_transport(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()

    async def aclose(self, code: int = CloseCode.NORMAL, reason: str = "bye") -> None:
        """Close the socket (idempotent); pending waits raise :class:`ClosedError`."""
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close(code, reason)
            self._record_close(ws)
        if self._reader is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._reader), 2.0)
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
            self._reader = None
        self._fail(ClosedError(self.close_code or code, self.close_reason or reason))

    async def wait_closed(self, timeout: float | None = None) -> tuple[int | None, str | None]:
        """Wait until the server closes the socket; returns ``(close_code, close_reason)``."""
        if self._reader is not None:
            await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code, self.close_reason

    async def __aenter__(self) -> Any:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ sending

    async def send(self, frame: msgspec.Struct) -> None:
        """Seal ``frame`` under the next client counter and send it."""
        if self._failure is not None:
            raise self._failure
        if self._ws is None or self._channel is None:
            raise ClosedError(self.close_code, self.close_reason or "not connected")
        try:
            await self._ws.send(seal_frame(self._channel, frame), text=True)
        except ConnectionClosed:
            self._record_close(self._ws)
            raise ClosedError(self.close_code, self.close_reason) from None

    async def _request(self, frame: msgspec.Struct, msg_id: str, timeout: float | None) -> Any:
        """Send ``frame`` and wait for the ack/notice/error that settles ``msg_id``."""
        future = self._future(msg_id)
        try:
            await self.send(frame)
            return await asyncio.wait_for(future, timeout)
        finally:
            if self._pending.get(msg_id) is future:
                del self._pending[msg_id]

    def _future(self, msg_id: str) -> asyncio.Future[Any]:
        """The future settled by the ack/notice/error for ``msg_id`` (shared by waiters)."""
        if self._failure is not None:
            raise self._failure
        future = self._pending.get(msg_id)
        if future is None or future.done():
            future = asyncio.get_running_loop().create_future()
            self._pending[msg_id] = future
        return future

    async def ping(self, timeout: float | None = DEFAULT_TIMEOUT) -> Pong:
        """Round trip through the server's frame loop: every frame the server produced for
        earlier requests is already buffered when this returns."""
        await self.send(Ping())
        return await self.wait_for(Pong, timeout)

    # ------------------------------------------------------------------ receiving

    def _dispatch(self, frame: Any) -> None:
        self._observe(frame)
        settles = self._settles(frame)
        if settles is not None:
            future = self._pending.pop(settles, None)
            if future is not None and not future.done():
                if isinstance(frame, Error):
                    _set_exception(future, ServerError(frame))
                else:
                    future.set_result(frame)
                return
        if len(self._buffer) == self._buffer.maxlen:
            self.dropped_frames += 1  # nobody reads the buffer; deque(maxlen) drops the oldest
        self._buffer.append(frame)
        self._arrived.set()

    def _settles(self, frame: Any) -> str | None:
        """The request id this frame settles, if any (acks, final notices, errors)."""
        if isinstance(frame, Ack):
            return frame.id
        if isinstance(frame, Notice) and frame.action in ("blocked", "limited"):
            return frame.id
        if isinstance(frame, Error):
            return frame.ref
        if isinstance(frame, UploadTicket):
            return frame.id
        if isinstance(frame, FileTicket):
            return frame.file
        return None

    async def _send_file(
        self, frame: msgspec.Struct, msg_id: str, name: str, data: bytes, timeout: float | None
    ) -> FileSent:
        """Ask for an upload ticket over the socket, then upload ``data`` with it.

        :raises ServerError: the ticket was refused (``file_too_big``, ``files_off``...).
        :raises gateway.sdk.files.FileError: the upload was (``file_type``, ``blocked``...).
        """
        ticket = await self._request(frame, msg_id, timeout)
        return await post_file(http_base(self.url), ticket, name, data, self.origin)

    async def _fetch_file(self, frame: msgspec.Struct, file: str, timeout: float | None) -> bytes:
        """Ask for a read ticket over the socket, then download and open the file."""
        ticket = await self._request(frame, file, timeout)
        return await get_file(http_base(self.url), ticket, self.origin)

    def _observe(self, frame: Any) -> None:
        """Hook: update client state from every frame before it is dispatched."""

    async def next_frame(self, timeout: float | None = DEFAULT_TIMEOUT) -> Any:
        """The oldest buffered frame, waiting up to ``timeout`` seconds for one.

        :raises TimeoutError: nothing arrived in time.
        :raises ClosedError: the connection is closed and the buffer is empty.
        """
        return await self.wait_for(lambda _frame: True, timeout)

    async def wait_for(
        self, match: type[F] | tuple[type, ...] | Predicate, timeout: float | None = DEFAULT_TIMEOUT
    ) -> Any:
        """The first buffered (or next arriving) frame that matches, removed from the buffer.

        ``match`` is a frame type, a tuple of types, or a predicate. Frames that do not
        match stay buffered for later calls.
        """
        predicate = _as_predicate(match)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            for index, frame in enumerate(self._buffer):
                if predicate(frame):
                    del self._buffer[index]
                    return frame
            if self._failure is not None:
                raise self._failure
            self._arrived.clear()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise TimeoutError("no matching frame in time")
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                raise TimeoutError("no matching frame in time") from None

    def drain(self) -> list[Any]:
        """Every buffered frame, removed from the buffer (non-blocking)."""
        frames = list(self._buffer)
        self._buffer.clear()
        return frames

    async def _wait_reply(self, match: Predicate, ref: str | None, timeout: float | None) -> Any:
        """Wait for a frame matching ``match`` or an ``error`` whose ref is ``ref``."""
        frame = await self.wait_for(
            lambda f: match(f) or (isinstance(f, Error) and (ref is None or f.ref == ref)),
            timeout,
        )
        if isinstance(frame, Error):
            raise ServerError(frame)
        return frame


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    """Fail a request future; nobody may be awaiting it (re-sent outbox messages), so mark
    the exception as retrieved to keep asyncio from logging it at garbage collection."""
    if not future.done():
        future.set_exception(exc)
        future.exception()


def _as_predicate(match: Any) -> Predicate:
    if isinstance(match, type) or (
        isinstance(match, tuple) and all(isinstance(t, type) for t in match)
    ):
        return lambda frame: isinstance(frame, match)
    if callable(match):
        return match
    raise TypeError("match must be a frame type, a tuple of types or a predicate")


def _maybe_error(data: str | bytes) -> Error | None:
    try:
        frame = _plain_from_server.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return frame if isinstance(frame, Error) else None


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _new_id() -> str:
    return uuid.uuid4().hex


# ----------------------------------------------------------------------------- customer


@dataclass(slots=True)
class ResumeInfo:
    """What a customer needs to come back to a chat: kept by the widget in storage."""

    chat: str
    token: str
    last_seq: int = 0


class CustomerClient(_SecureClient):
    """The widget's side: one chat per connection, resumable, with an unacked outbox.

    State kept across :meth:`reconnect`: ``chat``, ``token`` (the resume token from the
    first ``welcome``), ``last_seq`` (highest ``msg`` seq seen) and the *outbox* of
    messages sent but not yet acked, which are re-sent with the same ids after a resume
    (the gateway de-duplicates by id, so a message is stored once whatever happens).
    """

    def __init__(
        self,
        url_base: str,
        tenant: str,
        *,
        origin: str,
        gateway_key: str | None = None,
        resume: ResumeInfo | None = None,
        open_timeout: float = DEFAULT_TIMEOUT,
        echo: bool = True,
    ) -> None:
        """``echo=False``: messages stored exactly as sent are not sent back to this
        connection (as the widget asks); the ``ack`` then carries their time."""
        super().__init__(
            _ws_url(url_base, "/ws/customer", f"tenant={quote(tenant, safe='')}"),
            origin=origin,
            gateway_key=gateway_key,
            open_timeout=open_timeout,
            echo=echo,
        )
        self.tenant = tenant
        self.chat: str | None = resume.chat if resume else None
        self.token: str | None = resume.token if resume else None
        self.last_seq = resume.last_seq if resume else 0
        self.state: str | None = None
        self.welcome: Welcome | None = None
        self.outbox: OrderedDict[str, str] = OrderedDict()
        self._resuming = resume is not None

    @property
    def resume_info(self) -> ResumeInfo | None:
        if self.chat is None or self.token is None:
            return None
        return ResumeInfo(self.chat, self.token, self.last_seq)

    def _resume_frame(self) -> Resume | None:
        info = self.resume_info if self._resuming else None
        if info is None:
            return None
        return Resume(chat=info.chat, token=info.token, last_seq=info.last_seq)

    async def _after_handshake(self) -> Welcome | None:
        """When resuming: wait for the ``welcome`` (history replay follows it), then re-send
        the outbox. Returns the welcome, or None for a fresh connection."""
        if not self._resuming:
            return None
        welcome = await self._wait_reply(lambda f: isinstance(f, Welcome), None, self.open_timeout)
        await self.resend_unacked()
        return welcome

    def _observe(self, frame: Any) -> None:
        if isinstance(frame, Msg):
            if frame.seq > self.last_seq:
                self.last_seq = frame.seq
        elif isinstance(frame, Welcome):
            self.welcome = frame
            self.chat = frame.chat
            self.state = frame.state
            if frame.token:
                self.token = frame.token
            # last_seq moves only with msg frames: the history replay follows the welcome.
        elif isinstance(frame, Ack):
            self.outbox.pop(frame.id, None)
        elif isinstance(frame, Notice) and frame.action == "blocked":
            self.outbox.pop(frame.id or "", None)  # settled: never stored, never resent
        elif isinstance(frame, Error) and frame.ref is not None:
            self.outbox.pop(frame.ref, None)  # refused for good (closed chat, too long…)
        elif isinstance(frame, ChatEvent) and frame.event == "closed":
            self.state = "closed"

    async def open(
        self,
        profile: Profile | Mapping[str, str] | None = None,
        identity: str | None = None,
        queue: str = "default",
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> Welcome:
        """Start a new chat; returns the ``welcome`` (its token enables :meth:`reconnect`)."""
        if profile is not None and not isinstance(profile, Profile):
            profile = msgspec.convert(dict(profile), Profile)
        await self.send(Open(identity=identity, profile=profile, queue=queue))
        welcome = await self._wait_reply(lambda f: isinstance(f, Welcome), None, timeout)
        self._resuming = True  # from now on a reconnect resumes this chat
        return welcome

    async def send_text(
        self, text: str, msg_id: str | None = None, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> Ack | Notice:
        """Send a message and wait until it is settled: the ``ack`` once stored, or the
        ``notice`` when it was blocked (not stored) or rate limited (kept in the outbox,
        re-sent by :meth:`resend_unacked`/:meth:`reconnect`).

        :raises ServerError: refused (e.g. ``chat_closed``, ``too_long``).
        :raises ClosedError: the connection dropped first; the message stays in the outbox.
        """
        msg_id = msg_id or _new_id()
        self.outbox[msg_id] = text
        return await self._request(CustomerMsg(id=msg_id, text=text), msg_id, timeout)

    async def send_file(
        self,
        name: str,
        data: bytes,
        msg_id: str | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> FileSent:
        """Send a file (an image or PDF) as a message; returns once it is stored."""
        msg_id = msg_id or _new_id()
        frame = CustomerUpload(id=msg_id, size=len(data))
        return await self._send_file(frame, msg_id, name, data, timeout)

    async def fetch_file(self, file: str, *, timeout: float | None = DEFAULT_TIMEOUT) -> bytes:
        """The bytes of a file of this chat (``Msg.file.id``), as the gateway stored them."""
        return await self._fetch_file(CustomerFetch(file=file), file, timeout)

    async def resend_unacked(self) -> list[str]:
        """Re-send every outbox message (same ids, in order); returns their ids. Their acks
        are awaited with :meth:`flush`."""
        ids = list(self.outbox)
        for msg_id in ids:
            text = self.outbox.get(msg_id)
            if text is None:
                continue
            self._future(msg_id)
            await self.send(CustomerMsg(id=msg_id, text=text))
        return ids

    async def flush(self, timeout: float | None = DEFAULT_TIMEOUT) -> list[Ack | Notice]:
        """Wait until every re-sent outbox message is settled; returns what settled them."""
        futures = [self._future(msg_id) for msg_id in list(self.outbox)]
        if not futures:
            return []
        return list(await asyncio.wait_for(asyncio.gather(*futures), timeout))

    async def reconnect(self) -> Welcome | None:
        """Drop the socket (if any), connect again resuming the chat with ``last_seq`` so
        the server replays what was missed, and re-send unacked messages."""
        await self.aclose(CloseCode.GOING_AWAY, "reconnecting")
        self._resuming = self.resume_info is not None
        return await self.connect()

    async def typing(self, on: bool = True) -> None:
        await self.send(CustomerTyping(on=on))

    async def consent(self, version: int) -> None:
        """Accept the tenant's privacy notice ``version`` (no answer: frames are handled
        in order, so a ``msg`` sent after it is judged with the consent recorded)."""
        await self.send(CustomerConsent(version=version))

    async def close(
        self, csat: int | None = None, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> ChatEvent | None:
        """End the chat (optionally rating it); waits for the ``closed`` event unless the
        chat was already closed (then only the rating is recorded)."""
        already = self.state == "closed"
        await self.send(CustomerClose(csat=csat))
        if already:
            return None
        return await self._wait_reply(
            lambda f: isinstance(f, ChatEvent) and f.event == "closed", None, timeout
        )


# ----------------------------------------------------------------------------- agent


class AgentClient(_SecureClient):
    """The console's side: one socket, several chats. Authenticated by the session token of
    an MFA login, as ``Authorization: Bearer`` (``token``) or the ``cd_session`` cookie."""

    def __init__(
        self,
        url_base: str,
        *,
        token: str | None = None,
        cookie: str | None = None,
        origin: str | None = None,
        gateway_key: str | None = None,
        open_timeout: float = DEFAULT_TIMEOUT,
        echo: bool = True,
        queue_updates: bool = True,
    ) -> None:
        """``echo=False``: replies stored exactly as sent are not sent back to this
        connection (as the console asks); the ``ack`` then carries their time.
        ``queue_updates=False``: every queue change sends the whole ``queue`` (as to
        consoles from before ``queue_update``) instead of only what changed."""
        if (token is None) == (cookie is None):
            raise ValueError("give exactly one of token (Bearer) or cookie")
        headers = (
            {"Authorization": f"Bearer {token}"} if token else {"Cookie": f"cd_session={cookie}"}
        )
        super().__init__(
            _ws_url(url_base, "/ws/agent"),
            origin=origin,
            headers=headers,
            gateway_key=gateway_key,
            open_timeout=open_timeout,
            echo=echo,
        )
        self.queue_updates = queue_updates
        self.ready: Ready | None = None
        self.chats: set[str] = set()  # chats assigned to this agent, as far as we know

    async def _after_handshake(self) -> Ready:
        self.ready = await self._wait_reply(lambda f: isinstance(f, Ready), None, self.open_timeout)
        return self.ready

    def _observe(self, frame: Any) -> None:
        if isinstance(frame, ChatEvent):
            if frame.event == "assigned":
                self.chats.add(frame.chat)
            elif frame.event in ("removed", "closed"):
                self.chats.discard(frame.chat)
        elif isinstance(frame, QueueSnapshot):
            self.chats = {entry.chat for entry in frame.mine}
        elif isinstance(frame, QueueUpdate):
            self.chats -= {entry.chat for entry in frame.chats}
            self.chats -= set(frame.gone)
            self.chats |= {entry.chat for entry in frame.mine}

    async def accept(
        self, chat: str, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> ChatEvent | None:
        """Take a queued chat; returns its ``assigned`` event (None if it was already ours)."""
        if chat in self.chats:
            await self.send(Accept(chat=chat))
            return None
        await self.send(Accept(chat=chat))
        return await self._wait_reply(
            lambda f: isinstance(f, ChatEvent) and f.chat == chat and f.event == "assigned",
            chat,
            timeout,
        )

    async def send_text(
        self,
        chat: str,
        text: str,
        msg_id: str | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> Ack | Notice:
        """Write to an accepted chat; settled like :meth:`CustomerClient.send_text`."""
        msg_id = msg_id or _new_id()
        return await self._request(AgentMsg(chat=chat, id=msg_id, text=text), msg_id, timeout)

    async def send_file(
        self,
        chat: str,
        name: str,
        data: bytes,
        msg_id: str | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> FileSent:
        """Send a file into an accepted chat; like :meth:`CustomerClient.send_file`."""
        msg_id = msg_id or _new_id()
        frame = AgentUpload(chat=chat, id=msg_id, size=len(data))
        return await self._send_file(frame, msg_id, name, data, timeout)

    async def fetch_file(
        self, chat: str, file: str, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> bytes:
        """The bytes of a file of a chat this agent may read."""
        return await self._fetch_file(AgentFetch(chat=chat, file=file), file, timeout)

    async def transfer(
        self,
        chat: str,
        to_agent: str | None = None,
        to_queue: str | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> ChatEvent:
        """Hand the chat to an agent or back to a queue; returns our ``removed`` event."""
        await self.send(Transfer(chat=chat, to_agent=to_agent, to_queue=to_queue))
        return await self._wait_reply(
            lambda f: isinstance(f, ChatEvent) and f.chat == chat and f.event == "removed",
            chat,
            timeout,
        )

    async def close_chat(
        self, chat: str, reason: str = "resolved", *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> ChatEvent:
        """Close the chat; returns the ``closed`` event (sent to everyone in the chat)."""
        await self.send(AgentClose(chat=chat, reason=reason))
        return await self._wait_reply(
            lambda f: isinstance(f, ChatEvent) and f.chat == chat and f.event == "closed",
            chat,
            timeout,
        )

    async def watch(self, chat: str, *, timeout: float | None = DEFAULT_TIMEOUT) -> list[Msg]:
        """Supervisor: follow a chat (audited); returns its transcript so far."""
        await self.send(Watch(chat=chat))
        await self._wait_reply(
            lambda f: isinstance(f, ChatEvent) and f.chat == chat and f.event == "joined",
            chat,
            timeout,
        )
        await self.ping(timeout)
        return self._take_msgs(chat, 0)

    async def unwatch(self, chat: str) -> None:
        await self.send(Unwatch(chat=chat))

    async def history(
        self, chat: str, after_seq: int = 0, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> list[Msg]:
        """Messages of ``chat`` after ``after_seq`` (audited unless the chat is ours).

        The server answers with plain ``msg`` frames and no terminator; a ``ping`` sent
        right after marks the end, since the server handles one frame at a time.
        """
        await self.send(History(chat=chat, after_seq=after_seq))
        await self.send(Ping())
        frame = await self.wait_for(
            lambda f: isinstance(f, Pong) or (isinstance(f, Error) and f.ref == chat), timeout
        )
        if isinstance(frame, Error):
            raise ServerError(frame)
        return self._take_msgs(chat, after_seq)

    def _take_msgs(self, chat: str, after_seq: int) -> list[Msg]:
        """Remove the buffered ``msg`` frames of ``chat`` after ``after_seq`` and return them
        by seq, once each: live copies still unread and the replayed ones are the same
        messages."""
        by_seq: dict[int, Msg] = {}
        kept: list[Any] = []
        for frame in self._buffer:
            if isinstance(frame, Msg) and frame.chat == chat and frame.seq > after_seq:
                by_seq.setdefault(frame.seq, frame)
            else:
                kept.append(frame)
        self._buffer.clear()
        self._buffer.extend(kept)
        return [by_seq[seq] for seq in sorted(by_seq)]

    async def queue(self, *, timeout: float | None = DEFAULT_TIMEOUT) -> QueueSnapshot:
        """A fresh snapshot of the tenant queue and of our chats."""
        await self.send(QueueRequest())
        return await self._wait_reply(lambda f: isinstance(f, QueueSnapshot), None, timeout)

    async def typing(self, chat: str, on: bool = True) -> None:
        await self.send(AgentTyping(chat=chat, on=on))
