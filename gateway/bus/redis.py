"""Redis bus: chat events between gateway nodes, via Redis pub/sub + store replay.

Why pub/sub and not Streams
---------------------------
The store (PostgreSQL when there are several nodes) is the source of truth: every chat
message gets a gap-free per-chat ``seq`` in the same transaction that persists it, *before*
it is acked and published. A client that missed anything — its node died, its socket
dropped, this bus lost its Redis connection — reconnects (to any node) and resumes with
``last_seq``; the gateway replays what it missed from the store. So the bus only has to be
*at-most-once and fast*: Redis pub/sub is exactly that, keeps nothing, costs one PUBLISH per
event and needs no trimming, consumer groups or acknowledgements. Redis Streams would keep
a second, partial copy of the transcript (sealed, but still a copy to trim, back up and
crypto-shred) and duplicate the replay logic the store already has.

How it works
------------
* **One subscriber connection per node.** Every topic a local connection subscribes to is
  one Redis channel (``<prefix><topic>``, prefix ``cd:bus:`` by default); several local
  handlers share it (refcount). The channel is UNSUBSCRIBEd when the last local handler
  cancels. ``subscribe()`` returns only after Redis confirmed the SUBSCRIBE, so an event
  published afterwards on any node reaches the handler (the Bus contract).
* **One path, one order.** ``publish()`` only PUBLISHes (events published while
  ``PUBLISH_CALLS_IN_FLIGHT`` pipelines are on the wire leave together in the next one:
  ``gateway/group_commit.py``); every node — the publishing one
  included — delivers what its subscriber connection receives. So all nodes see a topic's
  events in the same order (Redis' order for the channel) and nothing is delivered twice.
  The price is one Redis round trip for parties on the same node (see bench/multinode.py).
  If a PUBLISH fails (Redis down), the event is delivered locally instead, so parties on
  one node keep chatting during an outage. ``local_first=True`` (URL ``?local_first=1``)
  delivers locally first and drops the node's own echo (each payload carries the
  publishing node's random id): a little faster, but nodes may then see events of one
  topic in different orders. Either way, publish order is not commit order across nodes
  (two nodes committing seq 12 and 13 may publish 13 first): subscribers must treat a
  ``Msg`` whose ``seq`` skips ahead as a gap and replay it from the store.
* **Redis never sees chat plaintext.** Every event is sealed before it leaves the process
  (``Msg`` frames carry message text; queue, typing and assignment events carry ids and
  agent names). The sealer is a key derived from the master keyring (``keyring.seal`` with
  associated data ``b"bus"``); the topic is sealed inside the payload and checked on
  receipt, so Redis (or anyone with access to it) can neither read events nor move one to
  another chat's channel. A ``RedisBus`` without a sealer refuses to start — there is no
  "plaintext on loopback" mode. All nodes must share the master keyring (they must anyway:
  it unwraps the transcripts' data keys).
* **Reconnect.** If the subscriber connection drops (Redis restart, failover, network) or
  stops answering PINGs, the bus reconnects with capped exponential backoff and
  re-subscribes every topic that still has local handlers, in one SUBSCRIBE. Events
  published while it was away are lost *for this node* (pub/sub keeps nothing); the gap
  listeners (:meth:`RedisBus.add_gap_listener`) are then told which topics may have missed
  events, so the application can make its clients resume — e.g. close the affected
  websockets with 1012 "service restart": the SDK/widget reconnects and replays from the
  store by ``last_seq``. While Redis is unreachable ``publish()`` still delivers locally,
  logs and counts the failed remote publish, and never raises into the caller (the message
  is already persisted and acked); ``subscribe()`` waits up to ``subscribe_timeout`` for
  the connection and then raises :class:`BusUnavailable`.

Limits worth knowing (see deploy/README.md): Redis disconnects a subscriber whose output
buffer exceeds ``client-output-buffer-limit pubsub`` (default 32 MB hard); that shows up
here as a reconnect + gap, never as silent loss. Pub/sub channels are global to a Redis
server (not per database): use a distinct ``prefix`` per installation sharing a server.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import structlog
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError

from gateway.bus.base import BusEvent, Handler
from gateway.group_commit import GroupCommit

log = structlog.get_logger("cipherdesk.bus.redis")

DEFAULT_PREFIX = "cd:bus:"
BUS_AAD = b"bus"
NODE_ID_BYTES = 8
#: Most events one pipelined round trip carries (more wait for the next).
MAX_PUBLISHES_PER_CALL = 256
#: Pipelines on the wire at once: a message's ack waits for its PUBLISH, so one call at
#: a time would make it wait for another's round trip too (bench/multinode.py).
PUBLISH_CALLS_IN_FLIGHT = 4

Sealer = Callable[[bytes], bytes]
Opener = Callable[[bytes], bytes]
GapListener = Callable[[frozenset[str]], None]


class BusUnavailable(ConnectionError):
    """The Redis bus cannot currently guarantee delivery (no subscriber connection)."""


class BusConfigError(ValueError):
    """The Redis bus is misconfigured (e.g. no sealer); the message says how to fix it."""


class _Keyring(Protocol):
    def seal(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def open(self, blob: bytes, aad: bytes) -> bytes: ...


def keyring_sealer(keyring: _Keyring) -> tuple[Sealer, Opener]:
    """The (sealer, opener) pair for bus payloads: the master keyring, bound to ``b"bus"``."""

    def seal(data: bytes) -> bytes:
        return keyring.seal(data, BUS_AAD)

    def open_(blob: bytes) -> bytes:
        return keyring.open(blob, BUS_AAD)

    return seal, open_


class _Sealed(msgspec.Struct, array_like=True):
    """What is sealed: the topic (checked on receipt) and the event."""

    topic: str
    event: BusEvent


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Sealed)


def split_bus_url(url: str) -> tuple[str, dict[str, str]]:
    """Strip the bus's own query options (``prefix``, ``local_first``) from a Redis URL;
    redis-py would reject them. Returns the Redis URL and those options."""
    parts = urlsplit(url)
    options: dict[str, str] = {}
    kept = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key in _URL_OPTIONS:
            options[key] = value
        else:
            kept.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), options


_URL_OPTIONS = ("prefix", "local_first")


class _RedisSubscription:
    __slots__ = ("_bus", "_topic", "_wrapper")

    def __init__(self, bus: RedisBus, topic: str, wrapper: list[Handler]) -> None:
        self._bus, self._topic, self._wrapper = bus, topic, wrapper

    def cancel(self) -> None:
        self._bus._remove(self._topic, self._wrapper)


class RedisBus:
    """The :class:`gateway.bus.base.Bus` for several nodes; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        sealer: Sealer | None = None,
        opener: Opener | None = None,
        keyring: _Keyring | None = None,
        prefix: str | None = None,
        ping_interval: float = 5.0,
        subscribe_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        max_backoff: float = 5.0,
        local_first: bool | None = None,
        max_publish_connections: int = 16,
    ) -> None:
        redis_url, options = split_bus_url(url)
        if keyring is not None and sealer is None and opener is None:
            sealer, opener = keyring_sealer(keyring)
        self._url = redis_url
        self.prefix = prefix if prefix is not None else options.get("prefix", DEFAULT_PREFIX)
        self._seal, self._open = sealer, opener
        if local_first is None:
            local_first = options.get("local_first", "").lower() in ("1", "true", "yes")
        self.local_first = local_first
        self.node_id = secrets.token_bytes(NODE_ID_BYTES)
        self._ping_interval = ping_interval
        self._subscribe_timeout = subscribe_timeout
        self._connect_timeout = connect_timeout
        self._max_backoff = max_backoff
        self._max_publish_connections = max_publish_connections
        # topic -> local handler cells (a one-element list per subscription, so the same
        # handler function may be subscribed twice and cancelled independently).
        self._handlers: dict[str, list[list[Handler]]] = {}
        # topic -> future resolved when Redis confirmed the current subscription epoch.
        self._ready: dict[str, asyncio.Future[None]] = {}
        # channel -> futures of SUBSCRIBE commands in flight, resolved in reply order.
        self._sent: dict[bytes, deque[asyncio.Future[None]]] = defaultdict(deque)
        self._commands: asyncio.Queue[tuple[Any, ...]] | None = None
        self._connected = asyncio.Event()
        self._closed = False
        self._runner: asyncio.Task[None] | None = None
        self._pub: Redis | None = None
        self._gap_listeners: list[GapListener] = []
        self._publish_down_until = 0.0
        # Events published while PUBLISH_CALLS_IN_FLIGHT pipelines are on the wire leave
        # together in the next one (gateway/group_commit.py).
        self._publishes: GroupCommit[tuple[bytes, bytes], int] = GroupCommit(
            self._publish_batch,
            max_weight=MAX_PUBLISHES_PER_CALL,
            max_in_flight=PUBLISH_CALLS_IN_FLIGHT,
        )
        self._gap_pending = False
        self.stats: dict[str, int] = defaultdict(int)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._seal is None or self._open is None:
            raise BusConfigError(
                "the Redis bus needs a sealer so that Redis never sees chat plaintext: "
                "construct RedisBus(url, keyring=keyring) (or sealer=/opener=), "
                "see gateway/bus/redis.py"
            )
        # A bounded pool: publishes beyond it wait for a free connection (up to the socket
        # timeout) instead of each opening one more — redis-py's default pool is unbounded,
        # so a burst of concurrent publishes opened a connection each and, with connects
        # timing out under load, dropped events.
        self._pub = Redis.from_pool(  # from_pool: the client owns and closes the pool
            BlockingConnectionPool.from_url(
                self._url,
                max_connections=self._max_publish_connections,
                timeout=5.0,
                socket_connect_timeout=2.0,
                socket_timeout=5.0,
                health_check_interval=30,
                client_name=f"cipherdesk-bus-pub-{self.node_id.hex()}",
            )
        )
        self._closed = False
        self._runner = asyncio.get_running_loop().create_task(self._run(), name="redis-bus")
        try:
            await asyncio.wait_for(self._connected.wait(), self._connect_timeout)
        except TimeoutError:
            await self.close()
            raise BusUnavailable(
                f"cannot reach Redis for the bus at {_safe_url(self._url)} "
                f"within {self._connect_timeout:g}s"
            ) from None
        log.info("redis_bus_started", url=_safe_url(self._url), prefix=self.prefix)

    async def close(self) -> None:
        self._closed = True
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
            self._runner = None
        for fut in self._ready.values():
            if not fut.done():
                fut.cancel()
        self._handlers.clear()
        self._ready.clear()
        self._sent.clear()
        if self._pub is not None:
            with contextlib.suppress(Exception):
                await self._pub.aclose()
            self._pub = None

    def add_gap_listener(self, listener: GapListener) -> None:
        """Call ``listener(topics)`` after a reconnect: those topics' local subscribers may
        have missed events published while this node was disconnected from Redis."""
        self._gap_listeners.append(listener)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def topic_count(self) -> int:
        return len(self._handlers)

    # ------------------------------------------------------------------ subscribe

    def channel(self, topic: str) -> bytes:
        return (self.prefix + topic).encode()

    async def subscribe(self, topic: str, handler: Handler) -> _RedisSubscription:
        cell = [handler]
        cells = self._handlers.get(topic)
        if cells is None:
            cells = self._handlers[topic] = []
            fut = self._ready[topic] = asyncio.get_running_loop().create_future()
            self._send("SUBSCRIBE", self.channel(topic), futures=[fut])
        cells.append(cell)
        fut = self._ready[topic]
        try:
            await asyncio.wait_for(asyncio.shield(fut), self._subscribe_timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            self._remove(topic, cell)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise BusUnavailable(f"Redis did not confirm the subscription to {topic}") from None
        return _RedisSubscription(self, topic, cell)

    def _remove(self, topic: str, cell: list[Handler]) -> None:
        cells = self._handlers.get(topic)
        if not cells or not any(c is cell for c in cells):
            return
        cells[:] = [c for c in cells if c is not cell]
        if cells:
            return
        del self._handlers[topic]
        self._ready.pop(topic, None)
        self._send("UNSUBSCRIBE", self.channel(topic))

    def _send(self, *command: Any, futures: list[asyncio.Future[None]] | None = None) -> None:
        """Queue a command for the subscriber connection, preserving call order. While
        disconnected the command is dropped: the reconnect subscribes the current set."""
        if self._commands is None:
            return
        if futures:
            for channel, fut in zip(command[1:], futures, strict=True):
                self._sent[channel].append(fut)
        self._commands.put_nowait(command)

    # ------------------------------------------------------------------ publish

    async def publish(self, topic: str, event: BusEvent) -> None:
        if self.local_first:
            self._deliver(topic, event)
        if self._closed or self._pub is None:
            return
        now = time.monotonic()
        if now < self._publish_down_until:
            self._publish_failed(topic, event, None)
            return
        try:
            await self._publishes.submit((self.channel(topic), self.payload(topic, event)))
            self.stats["published"] += 1
        except (RedisError, OSError) as exc:
            # Back off for a moment so that a dead Redis does not add a connect timeout
            # to every message.
            self._publish_down_until = now + 1.0
            self._publish_failed(topic, event, exc)

    async def _publish_batch(self, messages: list[tuple[bytes, bytes]]) -> list[int]:
        """The PUBLISHes queued meanwhile, in order, in one pipelined round trip."""
        assert self._pub is not None
        async with self._pub.pipeline(transaction=False) as pipe:
            for channel, payload in messages:
                pipe.publish(channel, payload)
            return list(await pipe.execute())

    @property
    def publish_calls(self) -> int:
        """Pipelined PUBLISH calls made so far (for tests and benchmarks)."""
        return self._publishes.calls

    def payload(self, topic: str, event: BusEvent) -> bytes:
        """What goes on the wire for ``event``: this node's id, then the sealed topic and
        event (Redis sees neither)."""
        assert self._seal is not None
        return self.node_id + self._seal(_encoder.encode(_Sealed(topic, event)))

    def _publish_failed(self, topic: str, event: BusEvent, exc: Exception | None) -> None:
        """The event is persisted (or ephemeral, like typing); remote clients catch up on
        resume. Local handlers still get it, so parties on this node keep chatting."""
        self.stats["publish_failed"] += 1
        if exc is not None:
            log.warning("bus_publish_failed", topic=topic.split(":", 1)[0], error=str(exc))
        if not self.local_first:
            self._deliver(topic, event)

    def _deliver(self, topic: str, event: BusEvent) -> None:
        for cell in tuple(self._handlers.get(topic, ())):
            try:
                cell[0](event)
            except Exception:  # a broken connection must not break fan-out
                log.exception("bus_handler_failed", topic=topic.split(":", 1)[0])

    def _on_message(self, channel: bytes, data: bytes) -> None:
        if self.local_first and data[:NODE_ID_BYTES] == self.node_id:
            return  # our own publish, already delivered locally
        topic = channel.decode()[len(self.prefix) :]
        if topic not in self._handlers:
            return
        assert self._open is not None
        try:
            sealed = _decoder.decode(self._open(data[NODE_ID_BYTES:]))
        except Exception:
            self.stats["undecryptable"] += 1
            log.warning("bus_event_rejected", topic=topic.split(":", 1)[0])
            return
        if sealed.topic != topic:
            self.stats["undecryptable"] += 1
            log.warning("bus_event_topic_mismatch", topic=topic.split(":", 1)[0])
            return
        self.stats["received"] += 1
        self._deliver(topic, sealed.event)

    # ------------------------------------------------------------------ connection

    async def _run(self) -> None:
        backoff = 0.05
        pool = ConnectionPool.from_url(
            self._url, socket_connect_timeout=2.0, socket_timeout=None, socket_keepalive=True
        )
        try:
            while not self._closed:
                conn = pool.make_connection()
                established = False
                try:
                    await conn.connect()
                    established = True
                    backoff = 0.05
                    await self._session(conn)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if not self._closed:
                        log.warning("redis_bus_disconnected", error=str(exc) or type(exc).__name__)
                finally:
                    self._disconnected(established)
                    with contextlib.suppress(Exception):
                        await conn.disconnect()
                if self._closed:
                    return
                await asyncio.sleep(backoff * (0.5 + secrets.randbelow(1000) / 1000))
                backoff = min(backoff * 2, self._max_backoff)
        finally:
            with contextlib.suppress(Exception):
                await pool.aclose()

    def _disconnected(self, established: bool) -> None:
        """Forget the connection's state; subscribers now wait for the next connection."""
        self._connected.clear()
        self._commands = None
        self._sent.clear()
        if established and self._handlers:
            self._gap_pending = True
        loop = asyncio.get_running_loop()
        for topic in self._handlers:
            fut = self._ready.get(topic)
            if fut is None or fut.done():
                self._ready[topic] = loop.create_future()

    async def _session(self, conn: AbstractConnection) -> None:
        """Run one subscriber connection until it fails."""
        self.stats["sessions"] += 1
        commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        self._commands = commands
        last_rx = time.monotonic()
        topics = frozenset(self._handlers)
        confirmations = [self._ready[t] for t in topics]
        if topics:
            self._send("SUBSCRIBE", *(self.channel(t) for t in topics), futures=confirmations)
        self._connected.set()

        async def writer() -> None:
            while True:
                command = await commands.get()
                await conn.send_command(*command)

        async def pinger() -> None:
            while True:
                await asyncio.sleep(self._ping_interval)
                if time.monotonic() - last_rx > 3 * self._ping_interval:
                    raise BusUnavailable("Redis stopped answering PING")
                commands.put_nowait(("PING",))

        async def reader() -> None:
            nonlocal last_rx
            while True:
                response = await conn.read_response(timeout=None, push_request=True)
                last_rx = time.monotonic()
                self._dispatch(response)

        async def announce_gap() -> None:
            if not self._gap_pending:
                return
            await asyncio.gather(*confirmations)
            self._gap_pending = False
            if not topics:
                return
            log.warning("redis_bus_resubscribed", topics=len(topics))
            self.stats["gaps"] += 1
            for listener in self._gap_listeners:
                try:
                    listener(topics)
                except Exception:
                    log.exception("bus_gap_listener_failed")

        tasks = [
            asyncio.create_task(writer()),
            asyncio.create_task(pinger()),
            asyncio.create_task(reader()),
        ]
        gap = asyncio.create_task(announce_gap())
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # re-raise the failure
        finally:
            for task in (*tasks, gap):
                task.cancel()
            for task in (*tasks, gap):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def _dispatch(self, response: Any) -> None:
        if isinstance(response, list) and response:
            kind = response[0]
            if kind == b"message" and len(response) == 3:
                self._on_message(response[1], response[2])
            elif kind == b"subscribe":
                futures = self._sent.get(response[1])
                if futures:
                    fut = futures.popleft()
                    if not fut.done():
                        fut.set_result(None)
            # b"unsubscribe" / b"pong": nothing to do (liveness is tracked by the reader)


def _safe_url(url: str) -> str:
    """The URL without credentials, for logs and errors."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=host))
