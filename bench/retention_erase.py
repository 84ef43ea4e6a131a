"""What erasing closed chats costs SQLite's writer: one WAL checkpoint per chat (before)
against one per batch of erasures (``Store.erase_chat(shred=False)`` then
``Store.shred_erased``), in alternating runs.

    .venv/bin/python bench/retention_erase.py [--chats 400] [--messages 20]

Why: an erased chat's key must not linger in the write-ahead log's old frames, so an
erase ended with ``PRAGMA wal_checkpoint(TRUNCATE)`` on the store's only writer. The
retention job and a customer's erasure request erase many chats in a row, and each
checkpoint (copy the WAL into the database, fsync, truncate) cost more than the erase
itself. Now they shred once per batch (``gateway.retention.BATCH`` chats).

Each run: a fresh store with ``--chats`` chats of ``--messages`` messages each (300-byte
sealed bodies), all erased. Printed: milliseconds of the writer per erased chat, and the
longest single call (an erase, or a batch's shred).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stores import fresh_store  # bench/stores.py

from gateway.retention import BATCH
from gateway.store.base import NewMessage
from tests.gateway.store.helpers import setup_chat


async def _fill(store: Any, chats: int, messages: int) -> list[str]:
    ids = [f"c{n}" for n in range(chats)]
    for chat_id in ids:
        await setup_chat(store, chat_id)
    await asyncio.gather(
        *(
            store.append_message(NewMessage(chat_id, f"m{k}", "customer", 1.0, b"x" * 300))
            for chat_id in ids
            for k in range(messages)
        )
    )
    return ids


async def _timed(call: object) -> float:
    started = time.perf_counter()
    await call  # type: ignore[misc]
    return time.perf_counter() - started


async def _run(batched: bool, chats: int, messages: int) -> tuple[float, float]:
    async with fresh_store() as store:
        ids = await _fill(store, chats, messages)
        calls: list[float] = []
        for start in range(0, len(ids), BATCH):
            for chat_id in ids[start : start + BATCH]:
                calls.append(await _timed(store.erase_chat(chat_id, shred=not batched)))
            if batched:
                calls.append(await _timed(store.shred_erased()))
        return sum(calls) / chats * 1000, max(calls) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--chats", type=int, default=400)
    parser.add_argument("--messages", type=int, default=20)
    args = parser.parse_args()
    print(f"{args.chats} chats of {args.messages} messages, SQLite, erased in batches of {BATCH}")
    for batched in (False, True, False, True):
        per_chat, longest = await _run(batched, args.chats, args.messages)
        label = "one shred per batch" if batched else "one shred per chat (before)"
        print(f"  {label:28s} {per_chat:6.2f} ms per chat, longest call {longest:6.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
