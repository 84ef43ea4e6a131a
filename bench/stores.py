"""Fresh stores for the store benches (``outbox_claim.py``, ``outbox_admin.py``): a SQLite
file in a temporary directory, or a new database on a PostgreSQL server that is dropped
afterwards, each with every migration applied; and the timing both benches report."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.store import open_store
from gateway.store.sqlstore import SqlStore


@asynccontextmanager
async def fresh_store(postgres: str | None = None) -> AsyncIterator[SqlStore]:
    """A new, empty store: SQLite, or a database of its own on the server ``postgres``."""
    if postgres is None:
        with tempfile.TemporaryDirectory() as tmp:
            async with _opened("sqlite://bench.db", Path(tmp)) as store:
                yield store
        return
    import asyncpg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = postgres.rsplit("/", 1)[0] + "/" + name
        async with _opened(url, Path(tempfile.gettempdir())) as store:
            yield store
    finally:
        await admin.execute(f'DROP DATABASE "{name}"')
        await admin.close()


@asynccontextmanager
async def _opened(url: str, data_dir: Path) -> AsyncIterator[SqlStore]:
    store = open_store(url, data_dir)
    await store.open()
    try:
        assert isinstance(store, SqlStore)
        yield store
    finally:
        await store.close()


async def median_ms(run: Callable[[], Awaitable[object]], times: int = 7) -> float:
    """The median wall time of ``times`` runs of ``run`` after one to warm up, in ms."""
    await run()
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        await run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)
