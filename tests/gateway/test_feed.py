"""ChatFeed unit tests: ordering, duplicates, gaps that fill late, never or fail to fetch.

The store is a list of messages behind a fetch function that counts its calls; the
backoff sleeps are recorded and skipped (an injected ``sleep``), so the tests are exact
and take no wall-clock time. Regression (issue 21.1): an unfillable gap used to re-spawn
the fetch at once — thousands of store reads per second — and a failed fetch held the
messages forever with an unretrieved task exception.
"""

from __future__ import annotations

import asyncio
import gc

import pytest

from gateway.protocol import Msg
from gateway.ws.feed import RETRY_DELAYS, ChatFeed

CHAT = "c1"


def msg(seq: int, chat: str = CHAT) -> Msg:
    return Msg(seq=seq, sender="customer", text=f"m{seq}", ts=float(seq), chat=chat)


class FakeStore:
    """What ``ChatService.messages`` answers, with a fetch counter and injectable failures."""

    def __init__(self, seqs: range | list[int] = ()) -> None:
        self.messages = {CHAT: [msg(s) for s in seqs]}
        self.fetches = 0
        self.failures = 0  # the next N fetches raise

    async def fetch(self, chat: str, after: int) -> list[Msg]:
        self.fetches += 1
        await asyncio.sleep(0)  # a real await point, like the store
        if self.failures:
            self.failures -= 1
            raise ConnectionError("store unavailable")
        return [m for m in self.messages.get(chat, []) if m.seq > after]

    def add(self, *seqs: int) -> None:
        self.messages[CHAT].extend(msg(s) for s in seqs)


class Harness:
    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.sent: list[int] = []
        self.stuck: list[str] = []
        self.sleeps: list[float] = []
        self.feed = ChatFeed(
            lambda m: self.sent.append(m.seq),
            store.fetch,
            on_stuck=self.stuck.append,
            sleep=self._sleep,
        )

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)

    async def settle(self) -> None:
        """Wait until the feed's background replays are done (no wall-clock wait)."""
        while self.feed._tasks:
            await asyncio.gather(*self.feed._tasks, return_exceptions=True)


async def test_in_order_live_messages_are_sent_without_touching_the_store() -> None:
    h = Harness(FakeStore())
    for s in (1, 2, 3):
        h.feed.offer(msg(s))
    assert h.sent == [1, 2, 3]
    assert h.store.fetches == 0


async def test_duplicates_and_old_seqs_are_dropped() -> None:
    h = Harness(FakeStore())
    h.feed.start_at(CHAT, 2)  # the client has 1..2 (resume)
    for s in (1, 2, 3, 3, 2, 4, 4):
        h.feed.offer(msg(s))
    assert h.sent == [3, 4]


async def test_held_messages_are_released_in_order_after_the_gap_fills() -> None:
    store = FakeStore(range(1, 6))  # 1..5 stored; the bus delivers 1, then 4, 5, 3 (2 lost)
    h = Harness(store)
    h.feed.offer(msg(1))
    h.feed.offer(msg(4))
    h.feed.offer(msg(5))
    h.feed.offer(msg(3))
    assert h.sent == [1]
    assert h.feed.held(CHAT) == [3, 4, 5]
    await h.settle()
    assert h.sent == [1, 2, 3, 4, 5]
    assert store.fetches == 1
    assert h.feed.held(CHAT) == []
    h.feed.offer(msg(2))  # the lost one shows up late: a duplicate now
    h.feed.offer(msg(6))
    assert h.sent == [1, 2, 3, 4, 5, 6]
    assert h.stuck == [] and h.sleeps == []


async def test_gap_stored_after_the_first_fetch_fills_on_a_retry() -> None:
    store = FakeStore([1])
    h = Harness(store)
    h.feed.offer(msg(1))
    h.feed.offer(msg(3))  # 2 is not in the store yet when the feed first looks
    real_fetch = store.fetch

    async def fetch_then_commit(chat: str, after: int) -> list[Msg]:
        found = await real_fetch(chat, after)
        if store.fetches == 1:
            store.add(2, 3)  # committed right after our first read
        return found

    h.feed._fetch = fetch_then_commit
    await h.settle()
    assert h.sent == [1, 2, 3]
    assert store.fetches == 2
    assert h.sleeps == [RETRY_DELAYS[0]]
    assert h.stuck == []


async def test_unfillable_gap_backs_off_gives_up_and_reports_stuck() -> None:
    store = FakeStore()  # e.g. erased: the store returns nothing, ever
    h = Harness(store)
    h.feed.offer(msg(5))
    h.feed.offer(msg(6))
    await h.settle()
    assert store.fetches == len(RETRY_DELAYS) + 1  # bounded: was thousands per second
    assert h.sleeps == list(RETRY_DELAYS)
    assert all(b > a for a, b in zip(h.sleeps, h.sleeps[1:], strict=False))  # backoff grows
    assert h.stuck == [CHAT]
    assert h.sent == []  # never skipped silently
    assert h.feed.held(CHAT) == []  # nothing held forever
    assert CHAT not in h.feed._replaying


async def test_progress_restarts_the_backoff_instead_of_giving_up() -> None:
    store = FakeStore([1])
    h = Harness(store)
    h.feed.offer(msg(1))
    h.feed.offer(msg(10))  # 2..9 trickle into the store one per fetch (a busy chat)
    real_fetch = store.fetch

    async def trickle(chat: str, after: int) -> list[Msg]:
        found = await real_fetch(chat, after)
        nxt = max(m.seq for m in store.messages[CHAT]) + 1
        if nxt <= 10:
            store.add(nxt)
        return found

    h.feed._fetch = trickle
    await h.settle()
    assert h.sent == list(range(1, 11))
    assert h.stuck == []
    assert store.fetches > len(RETRY_DELAYS) + 1  # more attempts than the cap: progress


async def test_failed_fetch_is_retried_and_nothing_stays_held() -> None:
    store = FakeStore(range(1, 4))
    store.failures = 2
    h = Harness(store)
    h.feed.offer(msg(3))
    await h.settle()
    assert h.sent == [1, 2, 3]
    assert store.fetches == 3
    assert h.sleeps == list(RETRY_DELAYS[:2])
    assert h.stuck == []


async def test_fetch_that_always_fails_gives_up_without_unretrieved_exceptions() -> None:
    store = FakeStore(range(1, 4))
    store.failures = 10_000
    h = Harness(store)
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    try:
        h.feed.offer(msg(3))
        tasks = list(h.feed._tasks)
        await h.settle()
        assert all(t.done() and not t.cancelled() and t.exception() is None for t in tasks)
        del tasks
        gc.collect()
    finally:
        loop.set_exception_handler(None)
    assert unhandled == []
    assert store.fetches == len(RETRY_DELAYS) + 1
    assert h.stuck == [CHAT]
    assert h.feed.held(CHAT) == []


async def test_awaited_replay_retries_a_failed_fetch_instead_of_sending_nothing() -> None:
    store = FakeStore(range(1, 4))
    store.failures = 1
    h = Harness(store)
    await h.feed.replay(CHAT)
    assert h.sent == [1, 2, 3]
    assert store.fetches == 2


async def test_live_messages_during_a_replay_are_held_then_released_once() -> None:
    store = FakeStore(range(1, 4))
    h = Harness(store)
    gate = asyncio.Event()
    real_fetch = store.fetch

    async def slow_fetch(chat: str, after: int) -> list[Msg]:
        await gate.wait()
        return await real_fetch(chat, after)

    h.feed._fetch = slow_fetch
    replay = asyncio.create_task(h.feed.replay(CHAT))
    await asyncio.sleep(0)
    store.add(4)
    for s in (3, 4):  # published while the replay reads the store
        h.feed.offer(msg(s))
    assert h.sent == []
    gate.set()
    await replay
    assert h.sent == [1, 2, 3, 4]


async def test_chats_are_independent_and_cancel_stops_background_replays() -> None:
    store = FakeStore()
    h = Harness(store)
    blocked = asyncio.Event()

    async def never(chat: str, after: int) -> list[Msg]:
        await blocked.wait()
        return []

    h.feed._fetch = never
    h.feed.offer(msg(5))  # chat c1 waits on a gap
    h.feed.offer(msg(1, chat="c2"))
    assert h.sent == [1]  # c2 is not held behind c1
    tasks = list(h.feed._tasks)
    h.feed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
    assert h.stuck == []


async def test_paced_transcript_holds_live_messages_until_it_is_sent() -> None:
    """A watched chat's transcript goes out at the reader's pace; live messages arriving
    meanwhile follow it in order, none twice (before, the transcript went through ``offer``
    into the bounded send queue at once)."""
    h = Harness(FakeStore(range(1, 8)))
    room = asyncio.Event()
    paced: list[int] = []

    async def send_paced(m: Msg) -> bool:
        if m.seq == 3:
            await room.wait()  # the reader is slow: the queue is full here
        paced.append(m.seq)
        return True

    task = asyncio.create_task(
        h.feed.deliver_paced(CHAT, [msg(s) for s in range(1, 6)], send_paced)
    )
    await asyncio.sleep(0)
    for s in (5, 6, 7):  # live: 5 is also in the transcript, 6 and 7 come after it
        h.feed.offer(msg(s))
    assert h.sent == [] and paced == [1, 2]
    room.set()
    assert await task is True
    assert paced == [1, 2, 3, 4, 5] and h.sent == [6, 7]
    assert h.store.fetches == 0


async def test_paced_transcript_stops_when_the_socket_gives_up() -> None:
    h = Harness(FakeStore())

    async def refuse_after_two(m: Msg) -> bool:
        return m.seq < 3

    assert (
        await h.feed.deliver_paced(CHAT, [msg(s) for s in range(1, 6)], refuse_after_two) is False
    )
    # The socket is being dropped; the feed is no longer replaying, so a later live message
    # takes the normal gap path (fetch, give up, resume) instead of being held forever.
    h.feed.offer(msg(6))
    await h.settle()
    assert h.feed.held(CHAT) == [] and h.stuck == [CHAT] and h.sent == []


async def test_replay_after_a_given_seq_sends_from_there_and_start_at_never_goes_back() -> None:
    h = Harness(FakeStore(range(1, 6)))
    h.feed.start_at(CHAT, 4)
    h.feed.start_at(CHAT, 2)  # an older position does not rewind the feed
    assert h.feed.last_seq(CHAT) == 4
    await h.feed.replay(CHAT, after=2)  # an explicit position does (a client's resume)
    assert h.sent == [3, 4, 5]
    assert h.feed.last_seq(CHAT) == 5


async def test_forget_drops_the_position_and_what_was_held() -> None:
    h = Harness(FakeStore())
    h.store.failures = 100  # the gap cannot fill while the chat is forgotten
    h.feed.start_at(CHAT, 3)
    h.feed.offer(msg(6))
    assert h.feed.held(CHAT) == [6]
    h.feed.forget(CHAT)
    assert h.feed.held(CHAT) == [] and h.feed.last_seq(CHAT) == 0
    h.feed.cancel()
    await h.settle()
    assert h.sent == []
