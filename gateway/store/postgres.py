# ruff: noqa: S608
# (S608: SQL text here is built only from constant column lists and placeholders; every
# value is a bound parameter.)
"""PostgreSQL store (asyncpg, connection pool): production, shared by N gateway nodes.

Concurrency rules, all under READ COMMITTED:

- ``append_message`` increments ``chats.last_seq`` with ``UPDATE ... RETURNING`` first:
  the row lock serialises appends to one chat across nodes, so seqs are distinct and
  gap-free (a rolled-back append also rolls back its increment; a duplicate gives its
  increment back under the same lock). ``erase_chat`` takes the same row lock, and the
  ``erased`` flag lives on that row, so an append waiting behind an erase re-checks it
  and fails with :class:`NotFound`.
- Appends are group-committed (``gateway/group_commit.py``): appends that arrive while
  ``APPENDS_IN_FLIGHT`` transactions (one) are out share the next transaction, written in a
  fixed number of statements however many it holds (look the message ids up, lock and
  read the chats, then one statement inserts the messages, sets the seqs and inserts the
  events), so a busy node pays a handful of round trips, one COMMIT (and WAL flush) and
  one pooled connection per batch instead of five round trips per message; an idle node
  still sends each append at once, on its own. A batch locks its chats in id order
  (batches in flight never wait on each other in a cycle) and holds the locks for two
  round trips, and one that fails as a whole (a lost connection, a deadlock with another
  transaction, an event builder that raised, a resend that raced its first copy) is
  retried append by append, so one bad append fails alone.
- ``enqueue_events`` locks the chat rows of its events the same way before inserting,
  so outbox ids of one chat are assigned in commit order (the dispatcher relies on
  "per (plugin, chat), id order is delivery order").
- ``claim_due_events`` uses ``FOR UPDATE SKIP LOCKED`` plus a lease column; see there.
- single-statement checks (TOTP step, recovery codes, nonces, revocation) are atomic.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import asyncpg
import structlog

from gateway.group_commit import GroupCommit
from gateway.store import _rows
from gateway.store._rows import MESSAGE_COLS, blob
from gateway.store.base import (
    AppendResult,
    ChatClosed,
    Conflict,
    EventsArg,
    NewMessage,
    NotAssigned,
    NotFound,
    StoredMessage,
    StoreError,
    StoreUnavailable,
    events_for,
)
from gateway.store.migrate import migrate_postgres, pg_current_version
from gateway.store.sql import POSTGRES, Program, Query
from gateway.store.sqlstore import (
    EVENT_INSERT_COLS,
    INSERT_EVENT,
    INSERT_MESSAGE,
    ON_DUPLICATE_EVENT,
    SELECT_MESSAGE,
    SqlStore,
    event_params,
    message_params,
)

log = structlog.get_logger("cipherdesk.store")

P = ParamSpec("P")
T = TypeVar("T")

APPENDS_IN_FLIGHT = 1
"""Append transactions one store runs at once: appends that arrive while one is out wait
and share the next (see the module text). It was 4 while each connection waited for its
commit before reading its next message (spreading a wave of single appends over four
transactions cut the wait). Once connections read on (gateway/ws/pipeline.py), four in
flight split the traffic into many small transactions (7.4 appends each against 14.6, and
a quarter of them alone, in bench/multinode.py with the Redis bus), costing PostgreSQL and
the node more CPU per message; one at a time was as fast or faster in every set-up of
that bench (see the closing note of issue 18). A chat's appends never share the wire
with each other either way (``key``), so raising it stays safe."""
MAX_APPEND_BATCH = 64
"""Appends one transaction holds at most (row locks held until its COMMIT)."""

_Append = tuple[NewMessage, EventsArg]


UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,  # refused / reset / unreachable while connecting or mid-query
    TimeoutError,  # connect timeout
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.OperatorInterventionError,  # class 57: admin/crash shutdown, starting up
    asyncpg.InsufficientResourcesError,  # class 53: disk full, too many connections
    asyncpg.exceptions.ConnectionDoesNotExistError,  # the server closed our connection
)
"""Failures that mean "PostgreSQL is not available now", not "this query is wrong"."""


def _translated(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Map constraint violations and lost connections to the store's errors (still a
    coroutine function, so the methods satisfy the ``Store`` protocol's ``async def``s)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(exc.detail or str(exc)) from exc
        except asyncpg.ForeignKeyViolationError as exc:
            raise NotFound(f"a referenced row does not exist ({exc.detail or exc})") from exc
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise StoreError(str(exc)) from exc
        except UNAVAILABLE as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        except asyncpg.InternalClientError as exc:
            # A pooled connection whose server went away while it was idle fails its next
            # use with a protocol-state error; the pool discards it on release.
            raise StoreUnavailable(type(exc).__name__) from exc

    return wrapper


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("jsonb", "json"):
        await conn.set_type_codec(
            type_name,
            encoder=functools.partial(json.dumps, separators=(",", ":"), ensure_ascii=False),
            decoder=json.loads,
            schema="pg_catalog",
        )


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Nothing to reset when a connection goes back to the pool. asyncpg's default sends
    ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` — one more round trip
    after every store call — to undo session state this store never creates (it takes
    advisory locks only per transaction, and never LISTENs, SETs or keeps a cursor
    outside its transaction). asyncpg still rolls back a transaction left open."""


class PostgresStore(SqlStore):
    """:class:`gateway.store.base.Store` on PostgreSQL."""

    dialect = POSTGRES

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        lease_seconds: float = 60.0,
    ) -> None:
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self.lease_seconds = lease_seconds
        self._pool: asyncpg.Pool | None = None
        self._next_nonce_purge = float("-inf")
        self._appends: GroupCommit[_Append, AppendResult | Exception] = GroupCommit(
            self._append_batch,
            max_weight=MAX_APPEND_BATCH,
            max_in_flight=APPENDS_IN_FLIGHT,
            key=lambda append: append[0].chat_id,
        )

    # -- lifecycle ------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self.min_size,
            max_size=self.max_size,
            init=_init_connection,
            reset=_keep_session,
        )
        try:
            async with pool.acquire() as conn:
                await migrate_postgres(conn)
            # Prepared statements cached before the migration would be stale.
            await pool.expire_connections()
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("store is not open")
        return self._pool

    @_translated
    async def schema_version(self) -> int:
        async with self.pool.acquire() as conn:
            return await pg_current_version(conn)

    @_translated
    async def _query(self, query: Query) -> Any:
        async with self.pool.acquire() as conn:
            return await _run(conn, query)

    @_translated
    async def _transaction(self, program: Program[T]) -> T:
        async with self.pool.acquire() as conn, conn.transaction():
            return await _drive(conn, program)

    # -- messages -------------------------------------------------------------------
    async def append_message(self, message: NewMessage, events: EventsArg = None) -> AppendResult:
        return await self.queue_append(message, events)

    def queue_append(
        self, message: NewMessage, events: EventsArg = None
    ) -> Awaitable[AppendResult]:
        # Keyed by chat: a chat's appends are never in two transactions at once, so a
        # later one cannot lock the chat first and take an earlier seq.
        return self._appended(self._appends.enqueue((message, events)))

    @staticmethod
    @_translated
    async def _appended(outcome: Awaitable[AppendResult | Exception]) -> AppendResult:
        result = await outcome
        if isinstance(result, Exception):
            raise result
        return result

    async def _append_batch(self, batch: list[_Append]) -> list[AppendResult | Exception]:
        """One transaction for ``batch`` (see the module text); each append's outcome, an
        exception for one that was refused."""
        if len(batch) == 1:  # an idle node: the append as it comes, errors raised
            return [await self._append_one(*batch[0])]
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                return await _append_together(conn, batch)
        except Exception as exc:
            # One line per failed batch: the per-append retries say what each append met.
            log.warning("store.append_batch_failed", size=len(batch), error=type(exc).__name__)
            return [await self._append_alone(message, events) for message, events in batch]

    async def _append_alone(
        self, message: NewMessage, events: EventsArg
    ) -> AppendResult | Exception:
        """One append in its own transaction: a batch that failed, retried one by one."""
        try:
            return await self._append_one(message, events)
        except Exception as exc:
            return exc

    @_translated
    async def _append_one(self, message: NewMessage, events: EventsArg) -> AppendResult | Exception:
        async with self.pool.acquire() as conn, conn.transaction():
            return await _append_in(conn, message, events)


_ON_DUPLICATE_MESSAGE = " ON CONFLICT (chat_id, msg_id) DO NOTHING RETURNING seq"
_NEXT_SEQ = (
    "UPDATE chats SET last_seq = last_seq + 1"
    " WHERE id = $1 AND NOT erased AND state <> 'closed'"
    " AND ($2::text IS NULL OR (state = 'active' AND assigned_agent_id = $2))"
    " RETURNING last_seq"
)
"""The next seq of an appendable chat; ``$2``: the agent an ``assigned_only`` reply needs
as the assignee (else NULL)."""
_GIVE_SEQ_BACK = "UPDATE chats SET last_seq = last_seq - 1 WHERE id = $1"


async def _append_in(
    conn: asyncpg.Connection, message: NewMessage, events: EventsArg
) -> AppendResult | Exception:
    """Append ``message`` alone inside the caller's transaction, in the fewest round trips
    for one append (an idle node, or a failed batch retried one by one). A refusal is
    returned, never raised, so the caller can tell it from a failure; an exception raised
    here (lost connection, constraint) fails the transaction."""
    assignee = message.sender_agent_id if message.assigned_only else None
    seq = await conn.fetchval(_NEXT_SEQ, message.chat_id, assignee)
    if seq is None:  # unknown, erased, closed or not the assignee's (a close or transfer
        # holds the same row lock)
        return await _not_appended(conn, message)
    stored = _stored(message, int(seq))
    inserted = await conn.fetchval(
        POSTGRES.render(INSERT_MESSAGE + _ON_DUPLICATE_MESSAGE),
        *POSTGRES.bind(message_params(stored)),
    )
    if inserted is None:  # a resend: the seq goes back (the row lock is still ours)
        await conn.execute(_GIVE_SEQ_BACK, message.chat_id)
        return await _not_appended(conn, message)
    if batch := events_for(stored, events):
        await conn.executemany(POSTGRES.render(INSERT_EVENT), [event_params(e) for e in batch])
    return AppendResult(stored, duplicate=False)


async def _append_together(
    conn: asyncpg.Connection, batch: list[_Append]
) -> list[AppendResult | Exception]:
    """Append ``batch`` inside the caller's transaction in three round trips, however many
    appends it holds: look the message ids up, lock the chats (in id order, as every batch
    does) and read their state, decide in order here, then write messages, seqs and events
    in one statement. A refusal is returned, never raised; an exception raised here fails
    the whole transaction.

    The lookup comes before the lock so that the locks are held for two round trips (the
    write and the COMMIT), not three: appends to the same chats wait for each other there.
    A resend whose first copy commits between the lookup and the lock is then missed, and
    the write meets the unique key on ``(chat_id, msg_id)``: the batch fails and is retried
    append by append, where the resend is found (rare: it needs the first copy still in
    another transaction when the resend arrives)."""
    known: dict[tuple[str, str], StoredMessage] = {
        (row["chat_id"], row["msg_id"]): _rows.message(row, POSTGRES.load_json)
        for row in await conn.fetch(
            f"SELECT {MESSAGE_COLS} FROM messages"
            " WHERE (chat_id, msg_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
            [message.chat_id for message, _ in batch],
            [message.msg_id for message, _ in batch],
        )
    }
    chat_ids = sorted({message.chat_id for message, _ in batch})
    chats = {
        row["id"]: row
        for row in await conn.fetch(
            "SELECT id, last_seq, erased, state, assigned_agent_id FROM chats"
            " WHERE id = ANY($1::text[])"
            " ORDER BY id FOR NO KEY UPDATE",
            chat_ids,
        )
    }
    last_seq = {chat_id: int(row["last_seq"]) for chat_id, row in chats.items()}
    outcomes: list[AppendResult | Exception] = []
    new_messages: list[tuple[Any, ...]] = []
    new_events: list[tuple[Any, ...]] = []
    for message, events in batch:
        chat = chats.get(message.chat_id)
        stored = known.get((message.chat_id, message.msg_id))
        if chat is None or chat["erased"]:
            outcomes.append(NotFound(f"chat {message.chat_id!r}"))
        elif stored is not None:  # a resend (maybe of an append earlier in this batch)
            outcomes.append(AppendResult(stored, duplicate=True))
        elif chat["state"] == "closed":
            outcomes.append(ChatClosed(f"chat {message.chat_id!r}"))
        elif message.refused_by_assignment(chat["state"], chat["assigned_agent_id"]):
            outcomes.append(NotAssigned(f"chat {message.chat_id!r}"))
        else:
            last_seq[message.chat_id] += 1
            stored = _stored(message, last_seq[message.chat_id])
            known[(message.chat_id, message.msg_id)] = stored
            new_messages.append(POSTGRES.bind(message_params(stored)))
            new_events.extend(event_params(e) for e in events_for(stored, events))
            outcomes.append(AppendResult(stored, duplicate=False))
    if new_messages:
        grown = [cid for cid, seq in last_seq.items() if seq != chats[cid]["last_seq"]]
        await conn.execute(
            _WRITE_BATCH,
            *_columns(new_messages, len(_MESSAGE_TYPES)),
            grown,
            [last_seq[cid] for cid in grown],
            *_columns(new_events, len(_EVENT_TYPES)),
        )
    return outcomes


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """``rows`` as one list per column (the arrays a set-based statement unnests)."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


def _unnest(types: tuple[str, ...], first: int) -> str:
    """``unnest`` of one array parameter per type, numbered from ``first``, in order."""
    arrays = ", ".join(f"${first + i}::{t}[]" for i, t in enumerate(types))
    names = ", ".join(f"c{i}" for i in range(len(types)))
    return f"SELECT {names} FROM unnest({arrays}) WITH ORDINALITY AS v({names}, n) ORDER BY n"


_MESSAGE_TYPES = ("text", "bigint", "text", "text", "float8", "bytea", "text", "jsonb")
"""PostgreSQL types of ``MESSAGE_COLS``, in order."""
_EVENT_TYPES = ("text", "text", "text", "text", "bytea", "text", "float8", "float8")
"""PostgreSQL types of ``EVENT_INSERT_COLS``, in order."""
_GROWN = len(_MESSAGE_TYPES) + 1
"""Number of the first parameter after the message arrays: the grown chats' ids, then
their seqs, then the event arrays."""
_WRITE_BATCH = (
    f"WITH new_messages AS (INSERT INTO messages ({MESSAGE_COLS})"
    f" {_unnest(_MESSAGE_TYPES, 1)}),"
    " grown AS (UPDATE chats SET last_seq = g.seq"
    f" FROM unnest(${_GROWN}::text[], ${_GROWN + 1}::bigint[]) AS g(id, seq)"
    " WHERE chats.id = g.id),"
    f" new_events AS (INSERT INTO outbox ({EVENT_INSERT_COLS})"
    f" {_unnest(_EVENT_TYPES, _GROWN + 2)}{ON_DUPLICATE_EVENT})"
    " SELECT 1"
)
"""A batch's writes in one statement: its messages, its chats' new ``last_seq`` and its
outbox events, each from arrays (one per column), rows in array order so outbox ids
follow the order of the appends."""


def _stored(message: NewMessage, seq: int) -> StoredMessage:
    """``message`` as stored with ``seq``."""
    return StoredMessage(
        chat_id=message.chat_id,
        seq=seq,
        msg_id=message.msg_id,
        sender=message.sender,
        ts=message.ts,
        body_sealed=blob(message.body_sealed) or b"",
        sender_agent_id=message.sender_agent_id,
        policy=dict(message.policy),
    )


async def _not_appended(conn: asyncpg.Connection, message: NewMessage) -> AppendResult | Exception:
    """Why ``message`` was not appended: a stored message with its id (a resend), or the
    chat is unknown or erased (:class:`NotFound`), closed (:class:`ChatClosed`) or not the
    sender's to reply to (:class:`NotAssigned`)."""
    row = await conn.fetchrow(POSTGRES.render(SELECT_MESSAGE), message.chat_id, message.msg_id)
    if row is not None:
        return AppendResult(_rows.message(row, POSTGRES.load_json), duplicate=True)
    chat = await conn.fetchrow("SELECT erased, state FROM chats WHERE id = $1", message.chat_id)
    if chat is None or chat["erased"]:
        return NotFound(f"chat {message.chat_id!r}")
    if chat["state"] == "closed":
        return ChatClosed(f"chat {message.chat_id!r}")
    return NotAssigned(f"chat {message.chat_id!r}")


def _changed(status: str) -> int:
    """Rows changed, from a command tag such as ``UPDATE 3`` or ``INSERT 0 1``."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


async def _run(conn: asyncpg.Connection, query: Query) -> Any:
    """One query on ``conn``."""
    sql = POSTGRES.render(query.template)
    if query.shape == "many":
        await conn.executemany(sql, [POSTGRES.bind(args) for args in query.args])
        return None
    args = POSTGRES.bind(query.args)
    if query.shape == "count":
        return _changed(await conn.execute(sql, *args))
    if query.shape == "rows":
        return await conn.fetch(sql, *args)
    return await conn.fetchrow(sql, *args)


async def _drive(conn: asyncpg.Connection, program: Program[T]) -> T:
    """Run a program on ``conn``, awaiting each query (the caller holds the transaction)."""
    try:
        query = next(program)
        while True:
            query = program.send(await _run(conn, query))
    except StopIteration as done:
        return done.value
