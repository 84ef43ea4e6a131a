"""The SDK's framing against the real crypto, without the gateway.

Pure parts (sealing, opening, hello checks, outbox bookkeeping) are tested directly; the
connection logic (handshake, resume, resend, close codes, Origin) runs against a tiny
scripted fake gateway on loopback built from the same crypto and protocol modules the
real gateway uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import nacl.public
import pytest
from websockets.asyncio.server import ServerConnection, serve

from crypto.channel import Channel, EphemeralKey
from crypto.encoding import b64decode, b64encode
from crypto.identity import GatewayIdentity
from gateway.protocol import (
    Ack,
    CustomerMsg,
    Error,
    Hello,
    Key,
    Msg,
    Notice,
    Open,
    Ping,
    Pong,
    Ready,
    Resume,
    Sealed,
    Welcome,
    decode_customer,
    decode_plain,
    encode,
)
from gateway.sdk.client import (
    AgentClient,
    ClosedError,
    CustomerClient,
    GatewayKeyMismatch,
    ProtocolError,
    ResumeInfo,
    ServerError,
    check_hello,
    client_channel,
    open_sealed,
    seal_frame,
)

IDENTITY = GatewayIdentity.generate()
TOKEN = "t" * 43


def make_hello(identity: GatewayIdentity = IDENTITY) -> tuple[Hello, EphemeralKey]:
    ephemeral = EphemeralKey.generate()
    sid = "sid-123"
    hello = Hello(
        v=1,
        sid=sid,
        server_pk=ephemeral.public_b64,
        sig=identity.sign_hello(sid, ephemeral.public_b64),
        mode="inspect",
        limits={},
    )
    return hello, ephemeral


def server_seal(channel: Channel, frame: msgspec.Struct) -> bytes:
    """Exactly what gateway/ws/connection.py writes."""
    counter, ciphertext = channel.seal(encode(frame))
    return b'{"t":"sealed","n":%d,"c":"%s"}' % (counter, b64encode(ciphertext).encode())


def paired_channels() -> tuple[Channel, Channel]:
    hello, ephemeral = make_hello()
    private = nacl.public.PrivateKey.generate()
    client = client_channel(hello, private)
    server = Channel.server(ephemeral.shared_key(b64encode(bytes(private.public_key))))
    return client, server


# ------------------------------------------------------------------------ pure framing


def test_client_frames_open_on_the_server_side() -> None:
    client, server = paired_channels()
    for i in range(1, 4):
        sent = CustomerMsg(id=f"m{i}", text=f"héllo {i}")
        outer = decode_plain(seal_frame(client, sent))
        assert isinstance(outer, Sealed)
        assert outer.n == i
        assert decode_customer(server.open_b64(outer.n, outer.c)) == sent


def test_server_frames_open_on_the_client_side() -> None:
    client, server = paired_channels()
    ack = Ack(id="m1", seq=7, chat="c1")
    msg = Msg(seq=8, sender="agent", text="hi", ts=1.5, id="a1", chat="c1", agent="Bo")
    assert open_sealed(client, server_seal(server, ack)) == ack
    assert open_sealed(client, server_seal(server, msg)) == msg
    assert client.last_opened == 2


def test_replayed_or_reordered_server_frame_is_rejected() -> None:
    client, server = paired_channels()
    first = server_seal(server, Pong())
    second = server_seal(server, Pong())
    assert isinstance(open_sealed(client, second), Pong)
    with pytest.raises(ProtocolError, match="sealed frame rejected"):
        open_sealed(client, first)  # reordered
    with pytest.raises(ProtocolError):
        open_sealed(client, second)  # replayed


def test_tampered_or_reflected_frames_are_rejected() -> None:
    client, server = paired_channels()
    frame = msgspec.json.decode(server_seal(server, Pong()))
    raw = bytearray(b64decode(frame["c"]))
    raw[-1] ^= 1
    tampered = encode(Sealed(n=frame["n"], c=b64encode(bytes(raw))))
    with pytest.raises(ProtocolError):
        open_sealed(client, tampered)
    # A client frame reflected back at the client must not open (distinct directions).
    with pytest.raises(ProtocolError):
        open_sealed(client, seal_frame(client, Ping()))
    assert client.last_opened == 0  # failed frames do not move the window


def test_plain_error_frames_pass_through_and_garbage_is_refused() -> None:
    client, _ = paired_channels()
    err = Error(code="4403", message="origin not allowed")
    assert open_sealed(client, encode(err)) == err
    for bad in (b"not json", b'{"t":"hello"}', b'{"t":"msg","text":"plain"}'):
        with pytest.raises(ProtocolError):
            open_sealed(client, bad)


# --------------------------------------------------------------------------- hello


def test_hello_signature_verifies_under_the_pinned_key() -> None:
    hello, _ = make_hello()
    check_hello(hello, IDENTITY.verify_key_b64)
    check_hello(hello, None)  # nothing pinned: accepted, nothing verified


def test_hello_signed_by_another_key_is_a_mismatch() -> None:
    hello, _ = make_hello(GatewayIdentity.generate())
    with pytest.raises(GatewayKeyMismatch):
        check_hello(hello, IDENTITY.verify_key_b64)


def test_hello_with_swapped_server_key_is_a_mismatch() -> None:
    hello, _ = make_hello()
    swapped = msgspec.structs.replace(hello, server_pk=EphemeralKey.generate().public_b64)
    with pytest.raises(GatewayKeyMismatch):
        check_hello(swapped, IDENTITY.verify_key_b64)
    with pytest.raises(GatewayKeyMismatch):
        check_hello(hello, "not a key")


def test_hello_with_unknown_version_is_refused() -> None:
    hello, _ = make_hello()
    with pytest.raises(ProtocolError, match="version"):
        check_hello(msgspec.structs.replace(hello, v=2), None)


# ------------------------------------------------------------------ outbox bookkeeping


def customer(**kwargs: Any) -> CustomerClient:
    return CustomerClient("http://127.0.0.1:1", "demo", origin="http://127.0.0.1:1", **kwargs)


def test_customer_url_and_resume_state() -> None:
    c = customer(resume=ResumeInfo("c1", TOKEN, 5))
    assert c.url == "ws://127.0.0.1:1/ws/customer?tenant=demo"
    assert c.resume_info == ResumeInfo("c1", TOKEN, 5)
    resume = c._resume_frame()
    assert resume is not None and (resume.chat, resume.last_seq) == ("c1", 5)
    assert customer()._resume_frame() is None
    assert CustomerClient("https://x.example/base/", "a b", origin="https://x.example").url == (
        "wss://x.example/base/ws/customer?tenant=a%20b"
    )


async def test_outbox_settles_on_ack_blocked_and_error_but_not_limited() -> None:
    c = customer()
    c.outbox.update({"a": "1", "b": "2", "c": "3", "d": "4", "e": "5"})
    futures = {k: c._future(k) for k in "abcd"}
    c._dispatch(Ack(id="a", seq=1, chat="c1"))
    c._dispatch(Notice(id="b", action="blocked", kinds=["card"], message="no"))
    c._dispatch(Notice(id="c", action="limited", kinds=[], message="slow", retry_after=1.0))
    c._dispatch(Error(code="chat_closed", message="closed", ref="d"))
    c._dispatch(Notice(id="e", action="masked", kinds=["email"], message="hidden"))
    assert list(c.outbox) == ["c", "e"]  # limited: resent later; masked: its ack is pending
    assert futures["a"].result() == Ack(id="a", seq=1, chat="c1")
    assert futures["b"].result().action == "blocked"
    assert futures["c"].result().action == "limited"
    with pytest.raises(ServerError, match="chat_closed"):
        futures["d"].result()
    # Only the masked notice settled nobody: it is buffered for the application.
    assert isinstance(await c.next_frame(timeout=0), Notice)
    assert c.drain() == []


async def test_last_seq_and_token_tracking() -> None:
    c = customer()
    c._dispatch(Welcome(chat="c1", token=TOKEN, state="queued", last_seq=0))
    c._dispatch(Msg(seq=3, sender="agent", text="x", ts=1.0))
    c._dispatch(Msg(seq=2, sender="agent", text="y", ts=1.0))  # late replay: no regress
    # A resumed welcome has no token and a last_seq ahead of the replay still to come.
    c._dispatch(Welcome(chat="c1", token=None, state="active", last_seq=9))
    assert (c.chat, c.token, c.last_seq, c.state) == ("c1", TOKEN, 3, "active")


async def test_wait_for_keeps_non_matching_frames_in_order() -> None:
    c = customer()
    frames = [Pong(), Msg(seq=1, sender="agent", text="a", ts=0.0), Pong()]
    for f in frames:
        c._dispatch(f)
    assert (await c.wait_for(Msg, timeout=0)).seq == 1
    assert await c.next_frame(timeout=0) == Pong()
    assert await c.next_frame(timeout=0) == Pong()
    with pytest.raises(TimeoutError):
        await c.next_frame(timeout=0.01)


async def test_waits_raise_closed_error_when_the_connection_ends() -> None:
    c = customer()
    future = c._future("x")
    waiter = asyncio.ensure_future(c.wait_for(Msg, timeout=5))
    await asyncio.sleep(0)
    c._fail(ClosedError(4429, "rate limited; retry-after=3"))
    with pytest.raises(ClosedError) as info:
        await waiter
    assert info.value.code == 4429
    with pytest.raises(ClosedError):
        future.result()
    with pytest.raises(ClosedError):
        await c.send(Ping())


def test_agent_client_auth_headers() -> None:
    a = AgentClient("http://h:8", token="tok")
    assert a.url == "ws://h:8/ws/agent"
    assert a.headers == {"Authorization": "Bearer tok"}
    assert AgentClient("http://h:8", cookie="ck").headers == {"Cookie": "cd_session=ck"}
    with pytest.raises(ValueError):
        AgentClient("http://h:8")


def test_agent_history_takes_each_buffered_msg_once() -> None:
    a = AgentClient("http://h:8", token="tok")
    for seq in (2, 1, 2, 3):  # a live copy of 2 arrived before the replay
        a._dispatch(Msg(seq=seq, sender="customer", text=str(seq), ts=0.0, chat="c1"))
    a._dispatch(Msg(seq=9, sender="customer", text="other", ts=0.0, chat="c2"))
    a._dispatch(Pong())
    assert [m.seq for m in a._take_msgs("c1", 1)] == [2, 3]
    assert [type(f).__name__ for f in a.drain()] == ["Msg", "Msg", "Pong"]  # c1 seq 1, c2


# ----------------------------------------------------------- scripted fake gateway

Script = Callable[["FakeSession", Any], Awaitable[None]]


class FakeSession:
    """The gateway half of one connection: hello, key, channel, sealed frames."""

    def __init__(self, ws: ServerConnection, channel: Channel, key: Key) -> None:
        self.ws = ws
        self.channel = channel
        self.key = key

    async def send(self, frame: msgspec.Struct) -> None:
        await self.ws.send(server_seal(self.channel, frame).decode(), text=True)


class FakeGateway:
    def __init__(self, script: Script, *, identity: GatewayIdentity = IDENTITY) -> None:
        self.script = script
        self.identity = identity
        self.origins: list[str | None] = []
        self.keys: list[Key] = []
        self.received: list[Any] = []
        self.refuse: tuple[int, str] | None = None
        self.url = ""

    async def handler(self, ws: ServerConnection) -> None:
        self.origins.append(ws.request.headers.get("Origin") if ws.request else None)
        if self.refuse is not None:
            code, reason = self.refuse
            await ws.send(encode(Error(code=str(code), message=reason)).decode())
            await ws.close(code, reason)
            return
        hello, ephemeral = make_hello(self.identity)
        await ws.send(encode(hello).decode())
        key = decode_plain(await ws.recv())
        assert isinstance(key, Key)
        self.keys.append(key)
        session = FakeSession(ws, Channel.server(ephemeral.shared_key(key.client_pk)), key)
        if key.resume is not None:
            await self.script(session, key.resume)
        async for data in ws:
            outer = decode_plain(data)
            assert isinstance(outer, Sealed)
            frame = decode_customer(session.channel.open_b64(outer.n, outer.c))
            self.received.append(frame)
            await self.script(session, frame)


@pytest.fixture
async def gateway_factory() -> AsyncIterator[Callable[[Script], Awaitable[FakeGateway]]]:
    servers = []

    async def start(script: Script) -> FakeGateway:
        gw = FakeGateway(script)
        server = await serve(gw.handler, "127.0.0.1", 0, compression=None)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        gw.url = f"http://127.0.0.1:{port}"
        return gw

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


async def test_handshake_open_send_and_resend_after_reconnect(gateway_factory: Any) -> None:
    stored: dict[str, int] = {}
    crash_once = {"m2"}

    async def script(s: FakeSession, frame: Any) -> None:
        if isinstance(frame, Open):
            await s.send(Welcome(chat="c1", token=TOKEN, state="queued", last_seq=0))
        elif isinstance(frame, CustomerMsg):
            if frame.id in crash_once:  # "gateway restart" before the message is stored
                crash_once.discard(frame.id)
                await s.ws.close(1012, "restarting")
                return
            seq = stored.setdefault(frame.id, len(stored) + 1)  # de-duplicated by id
            await s.send(Ack(id=frame.id, seq=seq, chat="c1"))
            await s.send(Msg(seq=seq, sender="customer", text=frame.text, ts=0.0, id=frame.id))
        elif isinstance(frame, Resume):
            assert (frame.chat, frame.token) == ("c1", TOKEN)
            await s.send(Welcome(chat="c1", token=None, state="active", last_seq=2))
            await s.send(Msg(seq=2, sender="agent", text="missed", ts=0.0))
        elif isinstance(frame, Ping):
            await s.send(Pong())

    gw = await gateway_factory(script)
    c = CustomerClient(gw.url, "demo", origin=gw.url, gateway_key=IDENTITY.verify_key_b64)
    assert await c.connect() is None
    welcome = await c.open(profile={"name": "Ada"})
    assert (welcome.chat, c.token) == ("c1", TOKEN)
    assert await c.send_text("one", msg_id="m1") == Ack(id="m1", seq=1, chat="c1")
    with pytest.raises(ClosedError) as info:
        await c.send_text("two", msg_id="m2")
    assert (info.value.code, c.close_code, c.close_reason) == (1012, 1012, "restarting")
    assert list(c.outbox) == ["m2"]
    assert c.last_seq == 1

    resumed = await c.reconnect()
    assert resumed is not None and resumed.token is None
    key = gw.keys[-1]
    assert key.resume is not None and key.resume.last_seq == 1
    settled = await c.flush(timeout=5)
    assert settled == [Ack(id="m2", seq=2, chat="c1")]
    assert c.outbox == {}
    missed = await c.wait_for(lambda f: isinstance(f, Msg) and f.text == "missed", timeout=5)
    assert missed.seq == 2
    assert c.last_seq == 2
    assert [f.id for f in gw.received if isinstance(f, CustomerMsg)] == ["m1", "m2", "m2"]
    assert gw.origins == [gw.url, gw.url]
    await c.ping()
    await c.aclose()
    with pytest.raises(ClosedError):
        await c.send_text("after close")


async def test_pinned_key_mismatch_aborts_before_sending_a_key(gateway_factory: Any) -> None:
    async def script(s: FakeSession, frame: Any) -> None:
        return None

    gw = await gateway_factory(script)
    c = CustomerClient(
        gw.url, "demo", origin=gw.url, gateway_key=GatewayIdentity.generate().verify_key_b64
    )
    with pytest.raises(GatewayKeyMismatch):
        await c.connect()
    assert gw.keys == []


async def test_refusal_before_handshake_reports_the_close_code(gateway_factory: Any) -> None:
    async def script(s: FakeSession, frame: Any) -> None:
        return None

    gw = await gateway_factory(script)
    gw.refuse = (4403, "origin not allowed")
    c = CustomerClient(gw.url, "demo", origin="https://evil.example")
    with pytest.raises(ClosedError) as info:
        await c.connect()
    assert (info.value.code, info.value.reason) == (4403, "origin not allowed")
    assert gw.origins == ["https://evil.example"]


async def test_replay_from_the_server_closes_with_1008(gateway_factory: Any) -> None:
    async def script(s: FakeSession, frame: Any) -> None:
        if isinstance(frame, Ping):
            payload = server_seal(s.channel, Pong()).decode()
            await s.ws.send(payload)
            await s.ws.send(payload)  # replayed counter

    gw = await gateway_factory(script)
    c = CustomerClient(gw.url, "demo", origin=gw.url)
    await c.connect()
    await c.ping()
    with pytest.raises(ProtocolError, match="sealed frame rejected"):
        await c.next_frame(timeout=5)
    assert c.close_code == 1008


async def test_agent_connect_sends_bearer_and_returns_ready() -> None:
    seen: list[str | None] = []

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        seen.append(ws.request.headers.get("Authorization"))
        hello, ephemeral = make_hello()
        await ws.send(encode(hello).decode())
        key = decode_plain(await ws.recv())
        assert isinstance(key, Key) and key.resume is None
        s = FakeSession(ws, Channel.server(ephemeral.shared_key(key.client_pk)), key)
        await s.send(Ready(agent="a1", name="Bo", role="agent", tenant="demo"))
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        a = AgentClient(f"http://127.0.0.1:{port}", token="tok")
        ready = await a.connect()
        assert ready == Ready(agent="a1", name="Bo", role="agent", tenant="demo")
        assert a.ready == ready and seen == ["Bearer tok"]
        await a.aclose()
        assert a.close_code == 1000
