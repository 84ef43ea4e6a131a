# ruff: noqa: S608
# (S608: the SQL is built from constant text and placeholders; every value is bound.)
"""What admins read of the outbox: a listing, counts, one row by id. The statements are
written once for both engines, here, so that a test can hold each one's SQLite plan to the
index it is meant to use (``tests/gateway/store/test_outbox_admin.py``).

Why they are not simply "list the rows and look": the admin API used to count a tenant's
rows per state by loading up to 10,000 of them with their payloads, and to find one dead
letter to replay by listing the tenant's dead letters (so one past the first 10,000 could
not be replayed at all). A tenant's dead letters were found by reading its rows in id
order, delivered ones included, until enough dead ones turned up. Now counts are counted
by the database, one row is read by its key, and dead letters come through their own index
(``outbox_dead_listing``, ``outbox_pending_tenant``: migration 0024).
"""

from __future__ import annotations

from gateway.store._rows import OUTBOX_COLS
from gateway.store.base import OutboxState
from gateway.store.sql import Query, read_row, read_rows, where_given


def _filters(
    tenant_id: str | None, state: OutboxState | None, plugin: str | None
) -> tuple[str, list[object]]:
    return where_given([("tenant_id = ?", tenant_id), ("state = ?", state), ("plugin = ?", plugin)])


def listing(
    tenant_id: str | None, plugin: str | None, state: OutboxState | None, limit: int
) -> Query:
    """Rows by ascending id (dispatch order), each filter optional."""
    where, args = _filters(tenant_id, state, plugin)
    return read_rows(
        f"SELECT {OUTBOX_COLS} FROM outbox{where} ORDER BY id LIMIT ?", *args, max(0, limit)
    )


def one(item_id: int) -> Query:
    """The row ``item_id``, whatever its state and tenant."""
    return read_row(f"SELECT {OUTBOX_COLS} FROM outbox WHERE id = ?", item_id)


def counting(tenant_id: str, state: OutboxState, plugin: str | None, cap: int) -> Query:
    """(plugin, count) of a tenant's rows in ``state``, at most ``cap`` rows counted in
    all: a bounded count, so a tenant with millions of delivered rows costs a bounded
    read (and the answer says it was capped)."""
    where, args = _filters(tenant_id, state, plugin)
    return read_rows(
        f"SELECT plugin, COUNT(*) FROM (SELECT plugin FROM outbox{where} LIMIT ?) capped"
        " GROUP BY plugin",
        *args,
        max(0, cap),
    )
