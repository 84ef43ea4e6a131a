"""Claiming outbox rows (``gateway/store/_outbox_claim.py``) on both engines: whether a
claim ends at the window or walks from line to line, it leases exactly what the rule says
-- the due, unleased heads of their (plugin, chat) lines, longest overdue first."""

from __future__ import annotations

import random
from dataclasses import dataclass

from gateway.store import Store
from gateway.store._outbox_claim import SPARE_PER_ROW, WINDOW_FACTOR
from plugins.testing import MemoryOutbox
from tests.gateway.store.helpers import event, setup_chat

NOW = 50.0
"""When the checked claim runs; rows are due at 0-40, or at 30-90 once rescheduled."""


@dataclass(frozen=True)
class _Row:
    id: int
    plugin: str
    chat_id: str | None
    next_attempt_at: float
    leased: bool


def _rule(rows: list[_Row], limit: int, wanted: int) -> tuple[list[int], bool]:
    """What a claim of ``limit`` must lease (ids, ascending), read plainly off the rule;
    and whether the window of a claim looking at ``wanted`` heads can tell (else the
    claim walks)."""
    lines: set[tuple[str, str]] = set()
    heads: set[int] = set()
    for row in sorted(rows, key=lambda r: r.id):
        line = None if row.chat_id is None else (row.plugin, row.chat_id)
        if line is None or line not in lines:
            heads.add(row.id)
        if line is not None:
            lines.add(line)
    due = sorted(
        (r for r in rows if r.next_attempt_at <= NOW and not r.leased),
        key=lambda r: (r.next_attempt_at, r.id),
    )
    leased = [r.id for r in due if r.id in heads][:limit]
    window = due[: wanted * WINDOW_FACTOR]
    in_window = sum(r.id in heads for r in window)
    return sorted(leased), in_window >= wanted or len(window) < wanted * WINDOW_FACTOR


async def _scenario(store: Store | MemoryOutbox, rng: random.Random, n: int) -> list[_Row]:
    """Pending rows of several chats and plugins (some without a chat), some settled,
    rescheduled or leased; returns the pending ones as the claim will see them."""
    tenant = f"t{n}"
    chats = [f"s{n}-c{k}" for k in range(rng.randint(1, 12))]
    if not isinstance(store, MemoryOutbox):  # the plugin kit's outbox has no chats to make
        for chat_id in chats:
            await setup_chat(store, chat_id, tenant_id=tenant)
    plugins = ("webhook", "zendesk", "freshdesk")[: rng.randint(1, 3)]
    crowded = rng.random() < 0.5  # most rows in one line: the window fills with its tail

    def chat_of() -> str | None:
        if rng.random() < 0.2:
            return None
        return chats[0] if crowded and rng.random() < 0.85 else rng.choice(chats)

    await store.enqueue_events(
        [
            event(
                f"s{n}-e{k}",
                chat_of(),
                plugins[0] if crowded else rng.choice(plugins),
                tenant_id=tenant,
                created_at=float(rng.randint(0, 40)),
            )
            for k in range(rng.randint(0, 70))
        ]
    )
    for item in await store.list_events(tenant_id=tenant, limit=1000):
        roll = rng.random()
        if roll < 0.15:
            await store.mark_delivered(item.id, 1.0)
        elif roll < 0.25:
            await store.dead_letter(item.id, attempts=3, error="gave up")
        elif roll < 0.45:
            at = float(rng.choice([30, 45, 50, 60, 90]))
            await store.reschedule_event(item.id, attempts=1, next_attempt_at=at, error="503")
    leased = {i.id for i in await store.claim_due_events(NOW - 1, limit=rng.randint(0, 4))}
    return [
        _Row(i.id, i.plugin, i.chat_id, i.next_attempt_at, i.id in leased)
        for i in await store.list_events(tenant_id=tenant, state="pending", limit=1000)
    ]


async def _clear(store: Store | MemoryOutbox, rows: list[_Row]) -> None:
    """Settle every row of a scenario, so the next starts from an empty outbox."""
    for row in rows:
        await store.mark_delivered(row.id, 2.0)


async def test_a_claim_leases_the_due_heads_whichever_way_it_finds_them(
    store: Store, backend: str
) -> None:
    rng = random.Random(23)
    paths = {True: 0, False: 0}
    for n in range(36):
        rows = await _scenario(store, rng, n)
        limit = rng.choice([1, 2, 3, 5, 50])
        spare = limit * SPARE_PER_ROW if backend == "postgresql" else 0
        expected, window_tells = _rule(rows, limit, limit + spare)
        claimed = await store.claim_due_events(NOW, limit)
        assert [i.id for i in claimed] == expected, (n, limit)
        assert all(i.state == "pending" for i in claimed)
        # leased now: a second claim at the same moment gets none of them
        again = {i.id for i in await store.claim_due_events(NOW, 1000)}
        assert not again & set(expected)
        paths[window_tells] += 1
        await _clear(store, rows)
    assert paths[True] >= 5 and paths[False] >= 5, paths  # both ways were taken


async def test_the_plugin_kits_memory_outbox_claims_by_the_same_rule() -> None:
    """``plugins.testing.MemoryOutbox`` promises plugin authors the stores' rules."""
    store = MemoryOutbox()
    rng = random.Random(29)
    for n in range(36):
        rows = await _scenario(store, rng, n)
        limit = rng.choice([1, 2, 3, 5, 50])
        expected, _ = _rule(rows, limit, limit)
        assert [i.id for i in await store.claim_due_events(NOW, limit)] == expected, n
        await _clear(store, rows)


async def test_a_long_line_does_not_hide_the_lines_behind_it(store: Store) -> None:
    """Hundreds of rows of one chat fill the window; the heads of the other chats and a
    chat-less row, due later, are still found (by the walk) and leased."""
    for chat_id in ("busy", "quiet-1", "quiet-2"):
        await setup_chat(store, chat_id)
    await store.enqueue_events(
        [event(f"busy-{k}", "busy", created_at=1.0) for k in range(300)]
        + [
            event("quiet-1-a", "quiet-1", created_at=5.0),
            event("quiet-1-b", "quiet-1", created_at=5.0),
            event("quiet-2-a", "quiet-2", "zendesk", created_at=6.0),
            event("audit-a", None, created_at=7.0),
        ]
    )
    claimed = await store.claim_due_events(10.0, limit=5)
    assert [i.idempotency_key for i in claimed] == ["busy-0", "quiet-1-a", "quiet-2-a", "audit-a"]
