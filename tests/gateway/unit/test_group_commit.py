"""GroupCommit: batches of what was submitted while the previous call was on the wire."""

from __future__ import annotations

import asyncio

import pytest

from gateway.group_commit import GroupCommit


class Wire:
    """A ``send`` that records each batch and answers only when the test releases it."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()
        self.fail: Exception | None = None
        self.short = False

    async def send(self, items: list[str]) -> list[str]:
        self.batches.append(items)
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        answers = [item.upper() for item in items]
        return answers[:-1] if self.short else answers


async def test_what_is_submitted_together_leaves_together_in_order() -> None:
    wire = Wire()
    wire.release.set()
    group = GroupCommit(wire.send, max_weight=100)
    assert await asyncio.gather(*(group.submit(c) for c in "abc")) == ["A", "B", "C"]
    assert wire.batches == [["a", "b", "c"]]
    assert group.calls == 1
    assert await group.submit("d") == "D"  # an idle group sends at once, alone
    assert wire.batches[-1] == ["d"]


async def test_submissions_during_a_call_wait_and_share_the_next_one() -> None:
    wire = Wire()
    group = GroupCommit(wire.send, max_weight=100)
    first = asyncio.ensure_future(group.submit("a"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert wire.batches == [["a"]]  # on the wire
    later = [asyncio.ensure_future(group.submit(c)) for c in "bcd"]
    await asyncio.sleep(0)
    assert wire.batches == [["a"]]  # nothing more leaves while a call is on the wire
    wire.release.set()
    assert await first == "A"
    assert await asyncio.gather(*later) == ["B", "C", "D"]
    assert wire.batches == [["a"], ["b", "c", "d"]]


async def test_a_batch_holds_at_most_max_weight_and_a_heavy_item_goes_alone() -> None:
    wire = Wire()
    wire.release.set()
    group = GroupCommit(wire.send, max_weight=4, weight=len)
    got = await asyncio.gather(*(group.submit(s) for s in ["ab", "cd", "e", "fghijk", "l"]))
    assert got == ["AB", "CD", "E", "FGHIJK", "L"]
    assert wire.batches == [["ab", "cd"], ["e"], ["fghijk"], ["l"]]


async def test_a_failed_call_fails_its_own_submitters_only() -> None:
    wire = Wire()
    group = GroupCommit(wire.send, max_weight=100)
    doomed = [asyncio.ensure_future(group.submit(c)) for c in "ab"]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    wire.fail = ConnectionError("gone")
    wire.release.set()
    for task in doomed:
        with pytest.raises(ConnectionError):
            await task
    wire.fail = None
    assert await group.submit("c") == "C"


async def test_a_wrong_number_of_results_is_an_error_not_a_misattribution() -> None:
    wire = Wire()
    wire.release.set()
    wire.short = True
    group = GroupCommit(wire.send, max_weight=100)
    results = await asyncio.gather(group.submit("a"), group.submit("b"), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_a_submitter_that_goes_away_leaves_the_others_their_results() -> None:
    wire = Wire()
    group = GroupCommit(wire.send, max_weight=100)
    gone = asyncio.ensure_future(group.submit("a"))
    staying = asyncio.ensure_future(group.submit("b"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    gone.cancel()
    wire.release.set()
    assert await staying == "B"
    assert gone.cancelled()
    assert await group.submit("c") == "C"


async def test_up_to_max_in_flight_calls_run_side_by_side_then_items_batch() -> None:
    wire = Wire()
    group = GroupCommit(wire.send, max_weight=100, max_in_flight=2)
    first = asyncio.ensure_future(group.submit("a"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    second = asyncio.ensure_future(group.submit("b"))  # a second call, not a wait
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert wire.batches == [["a"], ["b"]]
    rest = [asyncio.ensure_future(group.submit(c)) for c in "cd"]
    await asyncio.sleep(0)
    assert wire.batches == [["a"], ["b"]]  # both calls out: these wait, together
    wire.release.set()
    assert [await first, await second, *await asyncio.gather(*rest)] == ["A", "B", "C", "D"]
    assert wire.batches == [["a"], ["b"], ["c", "d"]]
    assert await group.submit("e") == "E"  # the finished senders left room for a new one


@pytest.mark.parametrize("bad", [{"max_weight": 0}, {"max_weight": 1, "max_in_flight": 0}])
def test_limits_must_be_positive(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        GroupCommit(Wire().send, **bad)


class PerCallWire:
    """A ``send`` whose calls each wait for their own release (``release(n)``: the n-th)."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.done: list[list[str]] = []
        self._gates: list[asyncio.Event] = []

    async def send(self, items: list[str]) -> list[str]:
        self.batches.append(items)
        gate = asyncio.Event()
        self._gates.append(gate)
        await gate.wait()
        self.done.append(items)
        return [item.upper() for item in items]

    def release(self, call: int) -> None:
        self._gates[call].set()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_items_of_one_key_wait_for_the_call_holding_it_and_keep_their_order() -> None:
    # Keys are the first letter: "a1", "a2" are one chat's messages, "b1" another's.
    wire = PerCallWire()
    group = GroupCommit(wire.send, max_weight=100, max_in_flight=2, key=lambda item: item[0])
    a1 = group.enqueue("a1")
    await settle()
    assert wire.batches == [["a1"]]
    a2, b1, a3 = group.enqueue("a2"), group.enqueue("b1"), group.enqueue("a3")
    await settle()
    # The second call takes b1 and passes over a2 and a3: "a" is on the wire.
    assert wire.batches == [["a1"], ["b1"]]
    wire.release(1)
    await settle()
    assert await b1 == "B1"
    assert not a2.done() and wire.batches == [["a1"], ["b1"]]  # still behind a1
    wire.release(0)
    await settle()
    assert await a1 == "A1"
    assert wire.batches == [["a1"], ["b1"], ["a2", "a3"]]  # together, in order
    wire.release(2)
    assert [await a2, await a3] == ["A2", "A3"]
    assert wire.done == [["b1"], ["a1"], ["a2", "a3"]]


async def test_without_a_key_a_later_item_may_overtake_on_another_call() -> None:
    # The contrast that makes the key necessary: two calls, no key, "a2" completes first.
    wire = PerCallWire()
    group = GroupCommit(wire.send, max_weight=100, max_in_flight=2)
    a1 = group.enqueue("a1")
    await settle()
    a2 = group.enqueue("a2")
    await settle()
    assert wire.batches == [["a1"], ["a2"]]
    wire.release(1)
    assert await a2 == "A2"
    assert not a1.done()
    wire.release(0)
    assert await a1 == "A1"


async def test_a_failed_call_releases_its_keys() -> None:
    calls: list[list[str]] = []
    gate = asyncio.Event()

    async def send(items: list[str]) -> list[str]:
        calls.append(items)
        if items == ["a1"]:
            await gate.wait()
            raise ConnectionError("lost")
        return [item.upper() for item in items]

    group = GroupCommit(send, max_weight=100, max_in_flight=2, key=lambda item: item[0])
    first = group.enqueue("a1")
    await settle()
    second = group.enqueue("a2")  # behind a1's call, though a second call could start
    await settle()
    assert calls == [["a1"]]
    gate.set()
    with pytest.raises(ConnectionError):
        await first
    assert await second == "A2"  # the failed call let its key go
    assert calls == [["a1"], ["a2"]]
