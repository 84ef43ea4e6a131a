"""What the admin's outbox requests cost the store, against how they were answered before,
in the same run.

    .venv/bin/python bench/outbox_admin.py [--delivered 100000] [--dead 500]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Why: ``GET /api/plugins/outbox`` counted a tenant's rows per state by loading up to
10,000 of them with their payloads; ``POST /api/plugins/dead/{id}/replay`` found its dead
letter by listing up to 10,000 of the tenant's dead letters; ``GET /api/plugins/dead``
found dead letters by reading the tenant's rows in id order until enough dead ones turned
up. ``gateway/store/_outbox_admin.py`` counts in the database, reads one row by its key,
and lists dead letters and counts pending rows through their own indexes (0024).

The outbox: one tenant, ``--delivered`` delivered rows (payloads of 1 KiB, as a sealed
message event is) and then ``--dead`` dead letters (a helpdesk that failed lately).
Printed: the median milliseconds of 7 runs of each request's store work, now and before;
"before" runs the code of before on the schema of before (0024's indexes dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stores import fresh_store, median_ms  # bench/stores.py

from gateway.http.plugins import COUNT_CAP
from gateway.store.sql import write
from gateway.store.sqlstore import SqlStore
from tests.gateway.store.helpers import event, setup_chat

STATES = ("pending", "delivered", "dead")

NEW_INDEXES = ("outbox_dead_listing", "outbox_pending_tenant")
"""Migration 0024's indexes, dropped for the baseline."""


async def _fill(store: SqlStore, delivered: int, dead: int) -> None:
    await setup_chat(store, "c1")
    payload = b"x" * 1024
    batch = 2000
    total = delivered + dead
    for start in range(0, total, batch):
        await store.enqueue_events(
            [
                event(f"e{n}", "c1", created_at=1.0 + n, payload_sealed=payload)
                for n in range(start, min(total, start + batch))
            ]
        )
    first_dead = min(i.id for i in await store.list_events(limit=1)) + delivered
    await store._query(
        write("UPDATE outbox SET state = 'delivered', delivered_at = 2.0 WHERE id < ?", first_dead)
    )
    await store._query(
        write("UPDATE outbox SET state = 'dead', attempts = 5 WHERE id >= ?", first_dead)
    )


async def _run(store: SqlStore, label: str, delivered: int, dead: int) -> None:
    await _fill(store, delivered, dead)
    if store.dialect.name == "postgres":
        await store._query(write("ANALYZE outbox"))  # as autovacuum would after the fill
    last_dead = (await store.list_events(tenant_id="t1", state="dead", limit=COUNT_CAP))[-1].id

    async def counts_before() -> object:
        return [
            len(await store.list_events(tenant_id="t1", state=s, limit=COUNT_CAP)) for s in STATES
        ]

    async def counts_now() -> object:
        return [await store.count_events(tenant_id="t1", state=s, cap=COUNT_CAP) for s in STATES]

    async def find_before() -> object:
        dead_letters = await store.list_events(tenant_id="t1", state="dead", limit=COUNT_CAP)
        return next(i for i in dead_letters if i.id == last_dead)

    async def find_now() -> object:
        return await store.get_event(last_dead)

    async def listing() -> object:
        return await store.list_events(tenant_id="t1", state="dead", limit=100)

    requests = (
        ("counts per state (3 states)", counts_before, counts_now),
        ("one dead letter to replay", find_before, find_now),
        ("dead letters, first 100", listing, listing),
    )
    now_ms = [await median_ms(now) for _, _, now in requests]
    for index in NEW_INDEXES:  # the schema of before, for the baseline
        await store._query(write(f"DROP INDEX {index}"))
    if store.dialect.name == "postgres":
        await store._query(write("ANALYZE outbox"))
    before_ms = [await median_ms(before) for _, before, _ in requests]
    for (name, _, _), old, new in zip(requests, before_ms, now_ms, strict=True):
        print(
            f"{label:10s} {name:30s} before {old:8.2f} ms   now {new:7.2f} ms   x{old / new:6.1f}",
            flush=True,
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--delivered", type=int, default=100_000)
    parser.add_argument("--dead", type=int, default=500)
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a fresh database is made)")
    args = parser.parse_args()
    print(f"one tenant: {args.delivered:,} delivered rows, then {args.dead:,} dead letters")
    for server, label in ((None, "sqlite"), (args.postgres, "postgresql")):
        if label == "postgresql" and server is None:
            continue
        async with fresh_store(server) as store:
            await _run(store, label, args.delivered, args.dead)


if __name__ == "__main__":
    asyncio.run(main())
