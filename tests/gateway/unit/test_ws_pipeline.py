"""PostPipeline: a connection's queued messages are acked in the order they came, whatever
order their commits finish in; refusals and failures stay with their own message."""

from __future__ import annotations

import asyncio
from typing import Any

from structlog.testing import capture_logs

from gateway.chats import ChatError, PostOutcome
from gateway.protocol import Ack, CloseCode, Error, Notice
from gateway.store.base import StoreUnavailable
from gateway.ws.pipeline import PostPipeline


class Conn:
    """What the pipeline uses of a SecureConnection: frames sent, errors, aborts."""

    kind = "customer"
    send_capacity = 256

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.aborts: list[tuple[int, str]] = []

    def send(self, frame: Any) -> bool:
        self.sent.append(frame)
        return True

    def send_error(self, code: str, message: str, ref: str | None = None) -> None:
        self.sent.append(Error(code=code, message=message, ref=ref))

    def abort(self, code: int, reason: str) -> None:
        self.aborts.append((code, reason))


def outcome(seq: int, notice: bool = False) -> PostOutcome:
    return PostOutcome(
        ack=Ack(id=f"m{seq}", seq=seq),
        notice=Notice(id=f"m{seq}", action="masked", kinds=["card"], message="x")
        if notice
        else None,
    )


async def test_acks_go_out_in_the_order_the_messages_came() -> None:
    conn = Conn()
    pipeline = PostPipeline(conn)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    commits = [loop.create_future() for _ in range(3)]
    for i, commit in enumerate(commits, 1):
        await pipeline.add(f"m{i}", commit)
    commits[2].set_result(outcome(3))  # the last one is stored first
    commits[1].set_result(outcome(2, notice=True))
    await asyncio.sleep(0.01)
    assert conn.sent == []  # nothing overtakes the first
    commits[0].set_result(outcome(1))
    await pipeline.drain()
    assert [(type(f).__name__, f.id) for f in conn.sent] == [
        ("Ack", "m1"),
        ("Ack", "m2"),
        ("Notice", "m2"),
        ("Ack", "m3"),
    ]
    assert len(pipeline) == 0


async def test_a_refused_message_gets_its_error_and_the_others_their_acks() -> None:
    conn = Conn()
    pipeline = PostPipeline(conn)  # type: ignore[arg-type]

    async def refused() -> PostOutcome:
        raise ChatError("chat_closed", "this conversation is closed")

    async def ok(seq: int) -> PostOutcome:
        return outcome(seq)

    await pipeline.add("m1", ok(1))
    await pipeline.add("m2", refused())
    await pipeline.add("m3", ok(3))
    await pipeline.drain()
    assert [(type(f).__name__, getattr(f, "id", None) or f.ref) for f in conn.sent] == [
        ("Ack", "m1"),
        ("Error", "m2"),
        ("Ack", "m3"),
    ]
    assert conn.aborts == []


async def test_a_failure_closes_the_connection_once_per_failure_and_the_rest_finish() -> None:
    conn = Conn()
    pipeline = PostPipeline(conn)  # type: ignore[arg-type]
    finished: list[str] = []

    async def failing(exc: Exception) -> PostOutcome:
        raise exc

    async def relayed(seq: int) -> PostOutcome:
        finished.append(f"m{seq}")
        return outcome(seq)

    with capture_logs() as logs:
        await pipeline.add("m1", failing(StoreUnavailable("ConnectionResetError")))
        await pipeline.add("m2", failing(RuntimeError("boom")))
        await pipeline.add("m3", relayed(3))
        await pipeline.drain()
    assert conn.aborts == [
        (CloseCode.TRY_AGAIN_LATER, "service temporarily unavailable, reconnect shortly"),
        (CloseCode.INTERNAL, "internal error"),
    ]
    assert finished == ["m3"]  # a stored message after a failure is still relayed
    assert [e["event"] for e in logs] == ["ws_store_unavailable", "ws_background_failed"]
    assert "boom" not in str(logs)  # the type, never the message


async def test_at_most_depth_messages_are_in_flight() -> None:
    conn = Conn()
    pipeline = PostPipeline(conn, depth=2)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    commits = [loop.create_future() for _ in range(3)]
    await pipeline.add("m1", commits[0])
    await pipeline.add("m2", commits[1])
    third = asyncio.ensure_future(pipeline.add("m3", commits[2]))
    await asyncio.sleep(0.01)
    assert not third.done() and len(pipeline) == 2  # waits for room
    commits[0].set_result(outcome(1))
    await asyncio.wait_for(third, 1)
    commits[1].set_result(outcome(2))
    commits[2].set_result(outcome(3))
    await pipeline.drain()
    assert [f.seq for f in conn.sent] == [1, 2, 3]


def test_the_depth_leaves_room_in_the_send_queue_for_what_the_messages_send_back() -> None:
    conn = Conn()
    assert PostPipeline(conn)._depth == 16  # type: ignore[arg-type]
    conn.send_capacity = 8  # a tiny send queue: two messages' acks and echoes fit
    assert PostPipeline(conn)._depth == 2  # type: ignore[arg-type]
    conn.send_capacity = 1
    assert PostPipeline(conn)._depth == 1  # type: ignore[arg-type]
