"""How long retention's purge holds SQLite's only writer, against the purge of before in
the same run.

    .venv/bin/python bench/retention_purge.py [--old 200000] [--recent 200000]

Why: on SQLite every message append goes through one writer connection; a transaction
that runs for a second stalls every chat of the node for that second. Retention deletes a
tenant's delivered outbox rows, dead letters and flags once they are past its cutoffs
(hourly by default). Before, one transaction deleted them all, finding them by reading
all of the tenant's rows (``BEFORE`` below, the baseline); now
``RetentionJob`` deletes ``PURGE_BATCH`` rows of each class per transaction, each batch
found through its class's index.

Each run: ``--old`` delivered outbox rows past the cutoff and ``--recent`` ones within it
(a backlog of a busy tenant's day), plus a tenth as many dead letters and flags, in a
fresh SQLite store. Printed: the longest single transaction (what a message append may
wait behind) and the whole purge's time, for the baseline and the batched purge.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.retention import PURGE_BATCH
from gateway.store import open_store
from gateway.store.base import LifecycleCutoffs, OutboxEvent
from gateway.store.sql import Program, write, write_many
from gateway.store.sqlstore import SqlStore
from tests.gateway.store.helpers import setup_chat

BEFORE = (
    "DELETE FROM policy_flags WHERE tenant_id = ? AND created_at < ?",
    "DELETE FROM outbox WHERE tenant_id = ? AND state = 'delivered' AND delivered_at < ?",
    "DELETE FROM outbox WHERE tenant_id = ? AND state = 'dead' AND created_at < ?",
)
"""The purge's statements before (commit 31c46b3), run in one transaction."""

CUTOFF = 1_000.0
CUTOFFS = LifecycleCutoffs(flags_before=CUTOFF, delivered_before=CUTOFF, dead_before=CUTOFF)


async def _fill(store: SqlStore, old: int, recent: int) -> None:
    """``old`` + ``recent`` outbox rows (every tenth a dead letter, the rest delivered) and
    a tenth as many flags, the first ``old`` of each past the cutoff."""
    await setup_chat(store, "c1")
    n = 0
    for count, at in ((old, CUTOFF - 500), (recent, CUTOFF + 500)):
        for start in range(0, count, 5000):
            size = min(5000, count - start)
            await store.enqueue_events(
                [
                    OutboxEvent("t1", "webhook", "chat.message", f"k{n + k}", b"x" * 200, "c1", at)
                    for k in range(size)
                ]
            )
            n += size
    await store._query(
        write(
            "UPDATE outbox SET state = CASE WHEN id % 10 = 0 THEN 'dead' ELSE 'delivered' END,"
            " delivered_at = CASE WHEN id % 10 = 0 THEN NULL ELSE created_at END"
        )
    )
    flags = [
        ("c1", "t1", k + 1, '["card"]', b"s" * 100, CUTOFF - 500 if k < old // 10 else CUTOFF + 500)
        for k in range((old + recent) // 10)
    ]
    await store._query(
        write_many(
            "INSERT INTO policy_flags (chat_id, tenant_id, seq, kinds, original_sealed,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            flags,
        )
    )


async def _run(label: str, old: int, recent: int, batched: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store("sqlite://bench.db", Path(tmp))
        await store.open()
        try:
            assert isinstance(store, SqlStore)
            await _fill(store, old, recent)
            longest = 0.0
            deleted = 0
            started = time.perf_counter()
            if batched:
                while True:
                    t0 = time.perf_counter()
                    counts = await store.purge_lifecycle("t1", CUTOFFS, PURGE_BATCH)
                    longest = max(longest, time.perf_counter() - t0)
                    deleted += sum(counts.values())
                    if all(c < PURGE_BATCH for c in counts.values()):
                        break
            else:

                def program() -> Program[int]:
                    total = 0
                    for sql in BEFORE:
                        total += int((yield write(sql, "t1", CUTOFF)))
                    return total

                deleted = await store._transaction(program())
                longest = time.perf_counter() - started
            whole = time.perf_counter() - started
            print(
                f"{label:8s} {deleted:>8,} rows deleted: longest transaction "
                f"{longest * 1000:8.1f} ms, whole purge {whole * 1000:8.1f} ms",
                flush=True,
            )
        finally:
            await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--old", type=int, default=200_000)
    parser.add_argument("--recent", type=int, default=200_000)
    args = parser.parse_args()
    for batched in (False, True, False, True):
        await _run("batched" if batched else "before", args.old, args.recent, batched)


if __name__ == "__main__":
    asyncio.run(main())
