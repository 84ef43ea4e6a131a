"""What one outbox claim costs the store, by the shape of the backlog, against the claim
query of before in the same run.

    .venv/bin/python bench/outbox_claim.py [--rows 100000] [--chats 20,1000,5000]
        [--postgres postgresql://postgres@127.0.0.1:5432/postgres]

Why: a dispatcher claims twice a second and after every settled delivery, and on SQLite
the claim runs on the store's only writer, so every message append waits behind it. The
claim must find the *head* of each (plugin, chat) line that is due. The query of before
(``BEFORE`` below, kept here as the baseline) tested every due pending row for an older
pending row of its line: cheap when many chats each hold a few rows, one probe per row
when a helpdesk's backlog sits in a few busy chats. ``gateway/store/_outbox_claim.py``
reads a bounded window first and otherwise seeks from line to line.

Each shape: ``--rows`` pending rows spread round-robin over N chats (one plugin), all
due; then the same rows with none due (a helpdesk's circuit open: rows wait for their
retry). Printed: median milliseconds of 7 selections (no lease taken, so every run sees
the same rows) for the baseline and the new claim, and their ratio. With ``--postgres``
the same runs on a fresh database of that server, analysed after the fill as autovacuum
would have, and the new claim looking at the spare heads a PostgreSQL claim considers.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stores import fresh_store, median_ms  # bench/stores.py

from gateway.store import Store
from gateway.store._outbox_claim import SPARE_PER_ROW, due_heads
from gateway.store.sql import read_rows, single
from gateway.store.sqlstore import SqlStore
from tests.gateway.store.helpers import event, setup_chat

BEFORE = (
    "SELECT o.id FROM outbox o"
    " WHERE o.state = 'pending' AND o.next_attempt_at <= ?"
    " AND (o.leased_until IS NULL OR o.leased_until <= ?)"
    " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.state = 'pending'"
    " AND p.plugin = o.plugin AND p.chat_id = o.chat_id AND p.id < o.id)"
    " ORDER BY o.id LIMIT ?"
)
"""The claim's selection before (commit 31c46b3): args now, now, limit."""

LIMIT = 100
"""Rows a claim asks for (the dispatcher's batch when nothing is in flight)."""


async def _fill(store: Store, rows: int, chats: int) -> None:
    ids = [f"c{k}" for k in range(chats)]
    for chat_id in ids:
        await setup_chat(store, chat_id)
    batch = 2000
    for start in range(0, rows, batch):
        await store.enqueue_events(
            [
                event(f"e{n}", ids[n % chats], created_at=1.0)
                for n in range(start, min(rows, start + batch))
            ]
        )


async def _shape(store: SqlStore, label: str, rows: int, chats: int) -> None:
    await _fill(store, rows, chats)
    wanted = LIMIT
    if store.dialect.name == "postgres":
        wanted += LIMIT * SPARE_PER_ROW  # as SqlStore.claim_due_events asks there
        # autovacuum analyses a table once a tenth of it changed; a filled backlog has
        await store._query(read_rows("ANALYZE outbox"))
    for due, now in (("all due", 10.0), ("none due", 0.5)):

        async def before(now: float = now) -> object:
            # in a transaction, as the claim ran it (on SQLite's writer)
            return await store._transaction(single(read_rows(BEFORE, now, now, LIMIT)))

        async def after(now: float = now) -> object:
            return await store._transaction(due_heads(now, wanted))

        old = await median_ms(before)
        new = await median_ms(after)
        print(
            f"{label:10s} {rows:>7,} rows in {chats:>5,} chats, {due:8s}: "
            f"before {old:8.2f} ms   now {new:7.2f} ms   x{old / new:6.1f}",
            flush=True,
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chats", default="20,1000,5000")
    parser.add_argument("--postgres", help="a PostgreSQL server URL (a fresh database is made)")
    args = parser.parse_args()
    shapes = [int(c) for c in args.chats.split(",")]
    for server, label in ((None, "sqlite"), (args.postgres, "postgresql")):
        if label == "postgresql" and server is None:
            continue
        for chats in shapes:
            async with fresh_store(server) as store:
                await _shape(store, label, args.rows, chats)


if __name__ == "__main__":
    asyncio.run(main())
