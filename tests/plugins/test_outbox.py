from __future__ import annotations

import asyncio
import json

from structlog.testing import capture_logs

from plugins.api import (
    ChatClosed,
    ChatOpened,
    CustomerIdentity,
    MessagePosted,
    PermanentError,
    PluginInfo,
    RetryableError,
)
from plugins.outbox import (
    BreakerPolicy,
    Dispatcher,
    find_dead_letter,
    replay_dead_letters,
    strip_identity,
    wants,
)
from plugins.zendesk import create as zendesk_create
from tests.plugins.fakes import (
    ALL_EVENTS,
    RecordingPlugin,
    decode,
    eventually,
    outbox_event,
    plugin_table,
)

T0 = 1_700_000_000.0
ANN = CustomerIdentity(user_id="u1", name="Ann", email="ann@example.com", verified=True)


def msg(chat="c1", n=1, text="hello", customer=None):
    return MessagePosted(
        tenant_id="acme",
        chat_id=chat,
        occurred_at=T0 + n,
        event_id=f"{chat}-{n}",
        seq=n,
        sender="customer",
        text=text,
        customer=customer,
    )


def closed(chat="c1", customer=ANN):
    return ChatClosed(
        tenant_id="acme",
        chat_id=chat,
        occurred_at=T0 + 99,
        event_id=f"{chat}-x",
        transcript=((1, "customer", T0, "hi [card]"),),
        customer=customer,
    )


def dispatcher(store, clock, *plugins, **kw):
    kw.setdefault("rng", lambda: 1.0)
    return Dispatcher(store, decode, plugin_table(*plugins), clock=clock, **kw)


def test_wants_and_strip_identity():
    info = PluginInfo(name="p", version="1", scopes=frozenset({"chat.closed"}))
    assert wants(info, "chat.closed")
    assert not wants(info, "chat.message")
    assert not wants(
        PluginInfo(name="q", version="1", scopes=frozenset({"customer.identity"})),
        "customer.identity",
    )  # not an event type
    assert strip_identity(closed()).customer is None
    assert strip_identity(closed()).transcript == closed().transcript


def test_backoff_is_exponential_full_jitter_capped(store, clock):
    d = dispatcher(store, clock, base_delay=2.0, max_delay=600.0)
    assert [d.backoff(n) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert d.backoff(20) == 600.0
    d = dispatcher(store, clock, rng=lambda: 0.25)
    assert d.backoff(3) == 2.0  # 0.25 * 8
    assert d.backoff(3, retry_after=120) == 120.0  # the vendor's longer wait wins
    assert d.backoff(10, retry_after=1) == 150.0  # 0.25 * max_delay: the jitter is longer


async def test_delivers_and_sets_event_id_to_idempotency_key(store, clock):
    p = RecordingPlugin("p", ALL_EVENTS)
    await store.enqueue_events([outbox_event("p", msg(), key="idem-1")])
    results = await dispatcher(store, clock, p).run_once()
    assert [r.outcome for r in results] == ["delivered"]
    assert p.received[0].event_id == "idem-1"
    assert store.items[1].state == "delivered" and store.items[1].delivered_at == clock()


async def test_zendesk_429_then_success_honours_retry_after(store, clock, zendesk, http):
    plugin = zendesk_create(
        {"base_url": zendesk.url, "email": zendesk.email}, {"api_token": zendesk.token}, http
    )
    await store.enqueue_events([outbox_event("zendesk", closed(customer=None))])
    zendesk.fail = [(429, {"Retry-After": "120"})]
    d = Dispatcher(store, decode, plugin_table(plugin), clock=clock, rng=lambda: 0.5)
    [r] = await d.run_once()
    assert r.outcome == "retry" and r.attempts == 1
    assert r.next_attempt_at == clock() + 120  # not the 1 s jittered backoff
    # Zendesk's 429 body is plain text: nothing of it reaches the error
    assert store.items[1].last_error == "RetryableError: zendesk: HTTP 429 rate limited"
    clock.advance(119)
    assert await d.run_once() == []  # still waiting: no request sent
    assert len(zendesk.requests) == 1
    clock.advance(1)
    [r] = await d.run_once()
    assert r.outcome == "delivered"
    # the 429 answered the external-id look-up; then look-up again and create
    assert [q.method for q in zendesk.requests] == ["GET", "GET", "POST"]
    assert zendesk.requests[-1].headers["Idempotency-Key"] == store.items[1].idempotency_key
    assert len(zendesk.tickets) == 1


async def test_dead_letter_after_max_attempts_then_replay(store, clock):
    p = RecordingPlugin("p", ALL_EVENTS, [RetryableError("HTTP 503")] * 3)
    await store.enqueue_events([outbox_event("p", msg())])
    d = dispatcher(store, clock, p, max_attempts=3, breaker=BreakerPolicy(failure_threshold=99))
    outcomes = []
    for _ in range(3):
        [r] = await d.run_once()
        outcomes.append(r.outcome)
        clock.advance(10_000)
    assert outcomes == ["retry", "retry", "dead"]
    item = store.items[1]
    assert item.state == "dead" and item.attempts == 3
    assert item.last_error == "gave up after 3 attempts: RetryableError: HTTP 503"
    assert await d.run_once() == []  # dead rows are not retried
    assert await replay_dead_letters(store, clock(), tenant_id="acme") == 1
    [r] = await d.run_once()
    assert r.outcome == "delivered" and len(p.received) == 1


async def test_find_dead_letter_answers_only_the_tenants_dead_rows(store, clock):
    p = RecordingPlugin("p", ALL_EVENTS, [PermanentError("HTTP 422 payload rejected")])
    await store.enqueue_events([outbox_event("p", msg()), outbox_event("p", msg(chat="c2"))])
    d = dispatcher(store, clock, p, breaker=BreakerPolicy(failure_threshold=99))
    [dead, delivered] = await d.run_once()
    assert (dead.outcome, delivered.outcome) == ("dead", "delivered")
    assert (await find_dead_letter(store, 1, "acme")).state == "dead"
    assert (await find_dead_letter(store, 1, None)).id == 1  # the CLI: any tenant
    assert await find_dead_letter(store, 1, "globex") is None  # another tenant's
    assert await find_dead_letter(store, 2, "acme") is None  # delivered, not dead
    assert await find_dead_letter(store, 99, "acme") is None  # none


async def test_permanent_error_dead_letters_at_once(store, clock):
    p = RecordingPlugin("p", ALL_EVENTS, [PermanentError("HTTP 422 payload rejected")])
    await store.enqueue_events([outbox_event("p", msg())])
    [r] = await dispatcher(store, clock, p).run_once()
    assert r.outcome == "dead" and r.attempts == 1
    assert store.items[1].last_error == "PermanentError: HTTP 422 payload rejected"


async def test_breaker_opens_defers_then_half_open_probe(store, clock):
    fail = RetryableError("HTTP 503")
    p = RecordingPlugin("p", ALL_EVENTS, [fail] * 4)
    d = dispatcher(
        store, clock, p, base_delay=1000, breaker=BreakerPolicy(failure_threshold=2, cooldown=30)
    )
    br = d.breaker("acme", "p")
    for chat in ("c0", "c1"):
        await store.enqueue_events([outbox_event("p", msg(chat))])
        [r] = await d.run_once()
        assert r.outcome == "retry"
        clock.advance(5)
    assert br.state == "open" and br.open_until == clock() - 5 + 30
    # While open: rows are pushed to the end of the cooldown, the vendor is not called.
    await store.enqueue_events([outbox_event("p", msg("c2")), outbox_event("p", msg("c3"))])
    results = await d.run_once()
    assert [(r.outcome, r.error) for r in results] == [("deferred", "circuit open")] * 2
    assert len(p.attempted) == 2
    assert [store.items[i].next_attempt_at for i in (3, 4)] == [br.open_until] * 2
    assert [store.items[i].attempts for i in (3, 4)] == [0, 0]  # deferrals are not attempts
    # Cooldown over: half-open lets exactly one probe through.
    clock.now = br.open_until
    assert br.state == "half_open"
    results = {r.item_id: r for r in await d.run_once()}
    assert results[3].outcome == "retry" and len(p.attempted) == 3
    assert results[4].outcome == "deferred"
    assert br.state == "open" and br.open_until == clock() + 60  # failed probe: cooldown x2
    clock.now = br.open_until
    [probe] = await d.run_once()  # item 4 probes and fails again
    assert probe.item_id == 4 and probe.outcome == "retry"
    assert br.open_until == clock() + 120
    await store.enqueue_events([outbox_event("p", msg("c4"))])
    clock.now = br.open_until
    [probe] = await d.run_once()  # script exhausted: the probe succeeds and closes it
    assert probe.outcome == "delivered" and br.state == "closed" and br.failures == 0


async def test_open_breaker_of_one_tenant_does_not_affect_another(store, clock):
    p = RecordingPlugin("p", ALL_EVENTS, [RetryableError("x")])
    await store.enqueue_events([outbox_event("p", msg(chat="a"))])
    other = MessagePosted(
        tenant_id="globex",
        chat_id="g",
        occurred_at=T0,
        event_id="g1",
        seq=1,
        sender="agent",
        text="hi",
    )
    d = dispatcher(store, clock, p, breaker=BreakerPolicy(failure_threshold=1))
    await d.run_once()
    assert d.breaker("acme", "p").state == "open"
    await store.enqueue_events([outbox_event("p", other)])
    [r] = await d.run_once()
    assert r.tenant_id == "globex" and r.outcome == "delivered"


async def test_crashing_plugin_does_not_block_another(store, clock):
    bad = RecordingPlugin("bad", ALL_EVENTS, [RuntimeError("boom: customer said [card]")])
    good = RecordingPlugin("good", ALL_EVENTS)
    await store.enqueue_events([outbox_event("bad", msg()), outbox_event("good", msg())])
    results = {r.plugin: r for r in await dispatcher(store, clock, bad, good).run_once()}
    assert results["good"].outcome == "delivered"
    assert results["bad"].outcome == "retry"
    # class and where (file:line in function, no server path), never the message text
    error = store.items[1].last_error
    assert error.startswith("plugin crashed: RuntimeError at plugins/fakes.py:")
    assert error.endswith(" in deliver") and "boom" not in error and "[card]" not in error
    assert "/work/" not in error and "outbox.py" not in error


async def test_slow_plugin_does_not_block_another_in_the_worker_loop(store, clock):
    slow = RecordingPlugin("slow", ALL_EVENTS, ["hang"])
    fast = RecordingPlugin("fast", ALL_EVENTS)
    await store.enqueue_events([outbox_event("slow", msg()), outbox_event("fast", msg())])
    d = dispatcher(store, clock, slow, fast, poll_interval=0.01)
    await d.start()
    try:
        await eventually(lambda: fast.received)
        await store.enqueue_events([outbox_event("fast", msg(chat="c2"))])
        d.notify()
        await eventually(lambda: len(fast.received) >= 2)
        assert slow.received == [] and store.items[1].state == "pending"
    finally:
        await d.stop(grace=0.05)
    assert store.items[1].state == "pending"  # cancelled mid-delivery: delivered after restart


async def test_a_chats_next_event_goes_out_once_the_one_before_it_is_delivered(store, clock):
    """Events of one chat go out in order, one at a time: each delivery wakes the loop
    for the next, instead of leaving it to the next poll (60 s here)."""
    p = RecordingPlugin("p", ALL_EVENTS)
    await store.enqueue_events([outbox_event("p", msg(n=n)) for n in range(1, 6)])
    d = dispatcher(store, clock, p, poll_interval=60.0)
    await d.start()
    try:
        await eventually(lambda: len(p.received) == 5, seconds=3.0)
        assert [e.seq for e in p.received] == [1, 2, 3, 4, 5]
    finally:
        await d.stop(grace=0.05)


async def test_delivery_timeout_is_retryable(store, clock):
    p = RecordingPlugin("p", ALL_EVENTS, ["hang"])
    await store.enqueue_events([outbox_event("p", msg())])
    [r] = await dispatcher(store, clock, p, delivery_timeout=0.05).run_once()
    assert r.outcome == "retry" and r.error == "timeout"


async def test_scope_filtering(store, clock):
    closed_only = RecordingPlugin("zd", {"chat.closed"})
    await store.enqueue_events([outbox_event("zd", msg()), outbox_event("zd", closed(chat="c2"))])
    results = await dispatcher(store, clock, closed_only).run_once()
    outcomes = {r.event_type: (r.outcome, r.error) for r in results}
    assert outcomes["chat.message"] == ("dead", "outside plugin scopes")
    assert outcomes["chat.closed"][0] == "delivered"
    assert [e.type for e in closed_only.received] == ["chat.closed"]


async def test_payload_type_must_match_the_row(store, clock):
    p = RecordingPlugin("p", {"chat.closed"})
    row = outbox_event("p", msg())
    row.event_type = "chat.closed"  # a row claiming to be in scope, carrying a message
    await store.enqueue_events([row])
    [r] = await dispatcher(store, clock, p).run_once()
    assert (r.outcome, r.error) == ("dead", "outside plugin scopes") and p.received == []


async def test_identity_only_with_the_identity_scope(store, clock):
    without = RecordingPlugin("without", {"chat.closed", "chat.opened"})
    with_id = RecordingPlugin("with", {"chat.closed", "customer.identity"})
    opened = ChatOpened(tenant_id="acme", chat_id="c3", occurred_at=T0, event_id="o", customer=ANN)
    await store.enqueue_events(
        [
            outbox_event("without", closed()),
            outbox_event("with", closed()),
            outbox_event("without", opened),
        ]
    )
    await dispatcher(store, clock, without, with_id).run_once()
    assert [e.customer for e in without.received] == [None, None]
    assert with_id.received[0].customer == ANN


async def test_erased_chat_is_dead_lettered_with_a_note(store, clock):
    p = RecordingPlugin("p", ALL_EVENTS)
    row = outbox_event("p", msg())
    row.payload_sealed = b"ERASED"  # decode() returns None: the chat key is gone
    await store.enqueue_events([row])
    [r] = await dispatcher(store, clock, p).run_once()
    assert r.outcome == "dead" and r.error.startswith("chat erased")
    assert p.attempted == []


async def test_unavailable_plugin_and_malformed_payload(store, clock):
    p = RecordingPlugin("p", ALL_EVENTS)
    gone = outbox_event("uninstalled", msg())
    bad = outbox_event("p", msg(chat="c9"))
    bad.payload_sealed = json.dumps({"type": "chat.message", "chat_id": "c9"}).encode()
    await store.enqueue_events([gone, bad])
    results = {r.plugin: r for r in await dispatcher(store, clock, p).run_once()}
    assert (results["uninstalled"].outcome, results["uninstalled"].error) == (
        "dead",
        "plugin not available",
    )
    assert (results["p"].outcome, results["p"].error) == ("dead", "malformed payload")


async def test_decode_failure_is_retried(store, clock):
    async def broken_decode(item):
        raise OSError("master key file unreadable")

    p = RecordingPlugin("p", ALL_EVENTS)
    await store.enqueue_events([outbox_event("p", msg())])
    d = Dispatcher(store, broken_decode, plugin_table(p), clock=clock)
    [r] = await d.run_once()
    assert r.outcome == "retry"
    assert r.error.startswith("plugin crashed: OSError at plugins/test_outbox.py:")
    assert "master key" not in r.error
    assert d.breaker("acme", "p").failures == 0  # not the vendor's fault


async def test_per_chat_order_while_earlier_event_backs_off(store, clock):
    p = RecordingPlugin("p", ALL_EVENTS, [RetryableError("HTTP 502")])
    await store.enqueue_events(
        [outbox_event("p", msg("c1", n)) for n in (1, 2, 3)] + [outbox_event("p", msg("c2", 1))]
    )
    d = dispatcher(store, clock, p, base_delay=10)
    results = await d.run_once()
    assert {(r.item_id, r.outcome) for r in results} == {(1, "retry"), (4, "delivered")}
    for _ in range(3):  # c1-2 and c1-3 wait behind c1-1 even though they are due
        assert await d.run_once() == []
        clock.advance(3)
    clock.advance(1)
    while await d.run_once():
        pass
    assert [e.event_id for e in p.received] == ["p:c2-1", "p:c1-1", "p:c1-2", "p:c1-3"]


async def test_a_row_claimed_while_its_plugin_is_busy_waits_for_a_free_delivery(store, clock):
    """Held in memory, leased: no store write, no attempt, delivered once c1's ends."""
    p = RecordingPlugin("p", ALL_EVENTS, ["hang"])
    await store.enqueue_events([outbox_event("p", msg("c1")), outbox_event("p", msg("c2"))])
    d = dispatcher(store, clock, p, concurrency_per_plugin=1)
    run = asyncio.create_task(d.run_once())
    await asyncio.sleep(0.05)
    assert p.attempted == ["p:c1-1"]
    assert store.items[2].leased_until is not None and store.items[2].last_error is None
    p.release.set()
    results = await run
    assert [(r.item_id, r.outcome) for r in results] == [(1, "delivered"), (2, "delivered")]
    assert [e.event_id for e in p.received] == ["p:c1-1", "p:c2-1"]
    assert store.items[2].state == "delivered" and store.items[2].attempts == 0


async def test_chats_take_turns_while_their_plugin_is_busy(store, clock):
    """One delivery at a time, three chats of three events: the chats alternate. Before,
    the rows of c2 and c3 were deferred 2 s each time c1's delivery was running, and c1's
    next event was claimed at once, so c1 drained first."""
    p = RecordingPlugin("p", ALL_EVENTS)
    await store.enqueue_events(
        [outbox_event("p", msg(chat, n)) for n in (1, 2, 3) for chat in ("c1", "c2", "c3")]
    )
    outcomes = []
    d = dispatcher(
        store,
        clock,
        p,
        concurrency_per_plugin=1,
        poll_interval=60.0,
        on_result=lambda plugin, result: outcomes.append(result.outcome),
    )
    await d.start()
    try:
        await eventually(lambda: len(p.received) == 9, seconds=3.0)
    finally:
        await d.stop(grace=0.05)
    chats = [e.chat_id for e in p.received]
    assert chats[:3] == ["c1", "c2", "c3"] and chats[3:6] == ["c1", "c2", "c3"]
    assert [e.seq for e in p.received if e.chat_id == "c1"] == [1, 2, 3]
    assert set(outcomes) == {"delivered"}  # nothing deferred


async def test_a_held_row_whose_lease_ran_short_goes_back_to_the_store(store, clock):
    p = RecordingPlugin("p", ALL_EVENTS, ["hang"])
    await store.enqueue_events([outbox_event("p", msg("c1")), outbox_event("p", msg("c2"))])
    d = dispatcher(store, clock, p, concurrency_per_plugin=1, delivery_timeout=30.0)
    run = asyncio.create_task(d.run_once())
    await asyncio.sleep(0.05)
    clock.advance(store.lease_seconds - 30.0)  # c2's lease now ends within a delivery
    p.release.set()
    results = {r.item_id: r for r in await run}
    assert results[1].outcome == "delivered"
    assert results[2].outcome == "deferred"
    assert results[2].error == "lease ran short while waiting"
    assert p.attempted == ["p:c1-1"]  # c2 was not sent on a lease that could end mid-way
    assert store.items[2].attempts == 0 and store.items[2].next_attempt_at == clock()
    [again] = await d.run_once()  # claimed afresh, delivered
    assert (again.item_id, again.outcome) == (2, "delivered")


async def test_stop_hands_held_rows_back_at_once(store, clock):
    p = RecordingPlugin("p", ALL_EVENTS, ["hang"])
    await store.enqueue_events([outbox_event("p", msg("c1")), outbox_event("p", msg("c2"))])
    d = dispatcher(store, clock, p, concurrency_per_plugin=1, poll_interval=60.0)
    await d.start()
    await eventually(lambda: p.attempted == ["p:c1-1"] and store.items[2].leased_until)
    await d.stop(grace=0.05)
    for item in (store.items[1], store.items[2]):  # not left leased for a whole lease
        assert item.state == "pending" and item.leased_until is None
        assert item.attempts == 0 and item.next_attempt_at == clock()
    assert p.attempted == ["p:c1-1"]


async def test_rows_beyond_the_held_ones_are_deferred_not_counted(store, clock):
    p = RecordingPlugin("p", ALL_EVENTS, ["hang"])
    await store.enqueue_events([outbox_event("p", msg("c1")), outbox_event("p", msg("c2"))])
    d = dispatcher(store, clock, p, concurrency_per_plugin=1, busy_delay=2.0, held_per_plugin=0)
    run = asyncio.create_task(d.run_once())
    await asyncio.sleep(0.05)
    p.release.set()
    results = {r.item_id: r for r in await run}
    assert results[1].outcome == "delivered"
    assert results[2].outcome == "deferred" and results[2].error == "plugin busy"
    assert store.items[2].attempts == 0 and store.items[2].next_attempt_at == clock() + 2.0


async def test_on_result_hook_and_logs_carry_no_text(store, clock):
    seen = []
    p = RecordingPlugin("p", ALL_EVENTS, [RetryableError("HTTP 500")])
    await store.enqueue_events([outbox_event("p", msg(text="secret card 4111 1111 1111 1111"))])
    d = dispatcher(store, clock, p, on_result=lambda name, r: seen.append((name, r.outcome)))
    with capture_logs() as logs:
        await d.run_once()
        clock.advance(100)
        await d.run_once()
    assert seen == [("p", "retry"), ("p", "delivered")]
    dumped = json.dumps(logs, default=str)
    assert "4111" not in dumped and "secret card" not in dumped
    assert {entry["outcome"] for entry in logs if entry["event"] == "outbox.result"} == {
        "retry",
        "delivered",
    }


async def test_on_result_failure_is_contained(store, clock):
    async def hook(name, result):
        raise RuntimeError("metrics backend down")

    p = RecordingPlugin("p", ALL_EVENTS)
    await store.enqueue_events([outbox_event("p", msg())])
    [r] = await dispatcher(store, clock, p, on_result=hook).run_once()
    assert r.outcome == "delivered"


async def test_run_enrich_is_bounded():
    from plugins.enrich import run_enrich

    class Slow(RecordingPlugin):
        async def enrich(self, customer):
            await asyncio.sleep(10)
            return {"never": True}

    class Boom(RecordingPlugin):
        async def enrich(self, customer):
            raise RuntimeError("x")

    class Fine(RecordingPlugin):
        async def enrich(self, customer):
            return {"open_tickets": [customer.email]}

    scopes = {"chat.closed", "customer.identity"}
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await run_enrich(Slow("s", scopes), ANN, timeout=0.05) is None
    assert loop.time() - start < 1
    assert await run_enrich(Boom("b", scopes), ANN) is None
    assert await run_enrich(Fine("f", scopes), ANN) == {"open_tickets": ["ann@example.com"]}
    assert await run_enrich(Fine("f", {"chat.closed"}), ANN) is None  # may not see identity
    assert await run_enrich(RecordingPlugin("n", scopes), ANN) is None  # no hook
