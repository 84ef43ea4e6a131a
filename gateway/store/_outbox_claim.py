# ruff: noqa: S608
# (S608: the SQL is built from constant text and placeholders; every value is bound.)
"""Claiming due outbox rows: SQL and the claim program, written once for both engines.

A row may be claimed only at the *head* of its line -- the oldest pending row of its
(plugin, chat) -- so a chat's events reach a plugin in order; a row with no chat is a line
of its own. Finding the heads used to be one query that tested every due pending row for an
older pending row of its line, until it had found ``limit`` heads. With many chats holding a
few rows each that ends early; with a helpdesk's backlog sitting in a few busy chats it
reads every pending row, on every claim -- and a dispatcher claims twice a second and after
every delivery. At 100,000 rows in 20 chats a claim took 61 ms of SQLite's only writer
(every message append waits behind it) and 518 ms of PostgreSQL (``bench/outbox_claim.py``).

Now a claim reads the heads from a bounded *window* when it can, and walks otherwise:

1. the window is the ``WINDOW_FACTOR * wanted`` longest-overdue due rows (read in the order
   of ``outbox_pending_due``). The heads among them, up to ``wanted``, are the answer when
   there are that many (every row outside the window is due later), or when the window is
   not full (it then held every due row; a second, probe-free count tells). Many chats with
   a few rows each end here after reading about ``wanted`` rows, as before.
2. otherwise the *walk*: one index seek per line (``outbox_pending_group``), line after
   line -- a recursive query that skips the rows behind each head instead of reading them --
   plus the due rows without a chat (``outbox_pending_unchained``).

Either way the heads come longest-overdue first (then by id); a test holds both ways equal
to a plain reading of the rule. The first ``limit`` are then leased in one statement that
checks again, under lock, that each is still pending and unleased. On PostgreSQL, where
several nodes claim side by side, a claim looks at ``limit + spare`` heads: the claims
skip the rows another holds (``SKIP LOCKED``) and take the next ones, and never lease a
row twice.
"""

from __future__ import annotations

from typing import Any

from gateway.store._rows import OUTBOX_COLS
from gateway.store.sql import Program, placeholders, read_row, read_rows, write_rows

WINDOW_FACTOR = 2
"""Due rows the window reads per head wanted."""

SPARE_PER_ROW = 3
"""Heads a claim considers beyond each one it leases where other nodes claim at the same
time (PostgreSQL)."""


def _due(row: str = "") -> str:
    """Due and not leased (two markers: now, now); ``row`` qualifies the columns."""
    return f"{row}next_attempt_at <= ? AND ({row}leased_until IS NULL OR {row}leased_until <= ?)"


_WINDOW = (
    "SELECT id, plugin, chat_id, next_attempt_at FROM outbox"
    f" WHERE state = 'pending' AND {_due()} ORDER BY next_attempt_at, id LIMIT ?"
)

WINDOW_HEADS = (
    f"SELECT w.id FROM ({_WINDOW}) AS w WHERE NOT EXISTS (SELECT 1 FROM outbox p"
    " WHERE p.state = 'pending' AND p.plugin = w.plugin AND p.chat_id = w.chat_id"
    " AND p.id < w.id) LIMIT ?"
)
"""The first heads among the window's rows: now, now, window size, heads wanted. No outer
``ORDER BY``: both engines filter the ordered window as it streams and stop at the limit
(with one, SQLite sorted the whole window first, probing every row of it); the rows keep
the window's order, which the claim test checks row for row."""

WINDOW_ROWS = f"SELECT COUNT(*) FROM ({_WINDOW}) AS w"
"""How many rows the window holds: now, now, window size."""


def _next_in_line(column: str, plugin: str, above: str) -> str:
    """A scalar subquery: ``column`` of the first pending row of ``plugin`` whose chat sorts
    after ``above`` (one seek in ``outbox_pending_group``). Scalar subqueries, not a join,
    step the walk: PostgreSQL plans a join with the walk's work table as a hash join over
    the whole outbox."""
    return (
        f"(SELECT x.{column} FROM outbox x WHERE x.state = 'pending' AND x.plugin = {plugin}"
        f" AND x.chat_id {above} ORDER BY x.chat_id, x.id LIMIT 1)"
    )


_ANY_CHAT = ">= ''"
"""Every chat id (text sorts at or after the empty string); rows without a chat are left
out, as ``NULL`` is not ``>=`` anything."""
_AFTER_HEAD = "> heads.chat_id"

WALK = (
    "WITH RECURSIVE plugins(name) AS ("
    " SELECT (SELECT a.plugin FROM outbox a WHERE a.state = 'pending' ORDER BY a.plugin LIMIT 1)"
    " UNION ALL SELECT (SELECT b.plugin FROM outbox b WHERE b.state = 'pending'"
    " AND b.plugin > plugins.name ORDER BY b.plugin LIMIT 1)"
    " FROM plugins WHERE plugins.name IS NOT NULL),"
    " heads(id, plugin, chat_id) AS ("
    f" SELECT {_next_in_line('id', 'plugins.name', _ANY_CHAT)}, plugins.name,"
    f" {_next_in_line('chat_id', 'plugins.name', _ANY_CHAT)}"
    " FROM plugins WHERE plugins.name IS NOT NULL"
    f" UNION ALL SELECT {_next_in_line('id', 'heads.plugin', _AFTER_HEAD)}, heads.plugin,"
    f" {_next_in_line('chat_id', 'heads.plugin', _AFTER_HEAD)}"
    " FROM heads WHERE heads.id IS NOT NULL)"
    " SELECT c.id FROM ("
    " SELECT o.id, o.next_attempt_at FROM outbox o WHERE o.id IN (SELECT heads.id FROM heads)"
    f" AND {_due('o.')}"
    " UNION ALL SELECT u.id, u.next_attempt_at FROM (SELECT id, next_attempt_at FROM outbox"
    f" WHERE state = 'pending' AND chat_id IS NULL AND {_due()}"
    " ORDER BY next_attempt_at, id LIMIT ?) AS u"
    ") AS c ORDER BY c.next_attempt_at, c.id LIMIT ?"
)
"""Every line's head found by seeking from line to line, then the due, unleased ones in
order: now, now, now, now, heads wanted, heads wanted."""


def _lease(candidates: int) -> str:
    return (
        "UPDATE outbox SET leased_until = ?, lease_token = lease_token + 1"
        f" WHERE id IN (SELECT id FROM outbox WHERE id IN ({placeholders(candidates)})"
        " AND state = 'pending' AND (leased_until IS NULL OR leased_until <= ?)"
        " ORDER BY next_attempt_at, id LIMIT ?{lock_skip_locked})"
        f" RETURNING {OUTBOX_COLS}"
    )


def due_heads(now: float, wanted: int) -> Program[list[int]]:
    """Ids of the first ``wanted`` due, unleased heads, longest-overdue first."""
    if wanted <= 0:
        return []
    size = wanted * WINDOW_FACTOR
    heads = yield read_rows(WINDOW_HEADS, now, now, size, wanted)
    if len(heads) < wanted:
        rows = yield read_row(WINDOW_ROWS, now, now, size)
        if rows[0] == size:  # full, yet short of heads: they may lie beyond it
            heads = yield read_rows(WALK, now, now, now, now, wanted, wanted)
    return [row[0] for row in heads]


def claim(now: float, limit: int, lease_until: float, spare: int = 0) -> Program[list[Any]]:
    """Lease up to ``limit`` due heads (see the module docstring), choosing among the first
    ``limit + spare``. The leased rows, as stored."""
    candidates = yield from due_heads(now, limit + spare if limit > 0 else 0)
    if not candidates:
        return []
    lease = _lease(len(candidates))
    return list((yield write_rows(lease, lease_until, *candidates, now, limit)))
