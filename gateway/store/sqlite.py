# ruff: noqa: S608
# (S608: SQL text here is built only from constant column lists and placeholders; every
# value is a bound parameter.)
"""SQLite store: the embedded default (one file, WAL, zero set-up).

Connections
    One *writer* connection and one *reader* connection, each on its own aiosqlite thread.
    In WAL mode readers never block the writer nor each other, and always see the last
    committed state, so a read issued after a write returned sees that write.

Writes: group commit
    Every write is a small synchronous function run on the writer's thread. Writes that
    arrive while a commit is in flight are collected and committed together in the next
    transaction (each inside its own SAVEPOINT, so one failing write rolls back only
    itself). One fsync then covers a whole batch: under load this is what lets
    ``append_message`` reach thousands per second with ``synchronous=FULL``, and an idle
    store adds no delay at all. A write's coroutine returns only after COMMIT.

Durability: ``synchronous=FULL``
    The gateway acks a message once ``append_message`` returns, and an acked message must
    survive anything after that. In WAL mode, ``synchronous=NORMAL`` already survives a
    process crash or SIGKILL (the committed WAL frames are in the OS page cache), but a
    power loss or kernel panic can roll back the last transactions before the next
    checkpoint. ``FULL`` fsyncs the WAL on every commit, so an acked message survives
    power loss too. Group commit amortises that fsync: measured on an ext4 VM, one
    append with one outbox event took ~0.7 ms alone (~1.4k/s strictly sequential) and
    ~7k appends/s with 64 concurrent writers, no slower than NORMAL under load. So FULL,
    the strongest promise, costs nothing that matters; revisit only with a benchmark.

Deleting for real: ``secure_delete=ON``
    Erasing a chat deletes its wrapped data key; secure_delete overwrites freed content
    with zeros, and ``erase_chat`` then checkpoints and truncates the WAL, so the old key
    bytes do not linger in free pages or in old WAL frames.

The database file (and so its -wal/-shm companions, which SQLite creates with the same
mode) is created 0600.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from gateway.store import _api_tokens, _housekeeping, _invites, _keyword_lists, _rows
from gateway.store._rows import (
    AGENT_COLS,
    AUDIT_COLS,
    CHAT_COLS,
    FLAG_COLS,
    LOCKOUT_COLS,
    MESSAGE_COLS,
    OUTBOX_COLS,
    PLUGIN_COLS,
    SESSION_COLS,
    TENANT_COLS,
    blob,
)
from gateway.store.base import (
    Agent,
    AgentSession,
    ApiToken,
    AppendResult,
    AuditEvent,
    AuditSeal,
    Chat,
    ChatClosed,
    ChatState,
    Conflict,
    EventsArg,
    Invite,
    KeywordListRecord,
    LockoutChange,
    LockoutRecord,
    NewMessage,
    NotFound,
    OutboxEvent,
    OutboxItem,
    OutboxState,
    PluginConfig,
    PolicyFlag,
    PurgeCutoffs,
    StoredMessage,
    StoreError,
    Tenant,
)
from gateway.store.governance_sqlite import SqliteGovernance, append_chained
from gateway.store.migrate import migrate_sqlite, sqlite_current_version

T = TypeVar("T")
WriteFn = Callable[[sqlite3.Connection], Any]

BUSY_TIMEOUT_MS = 10_000
MAX_BATCH = 512
NONCE_PURGE_INTERVAL = 60.0


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _translate(exc: sqlite3.Error) -> Exception:
    """Map constraint failures to the store's errors (other errors pass unchanged)."""
    if not isinstance(exc, sqlite3.IntegrityError):
        return exc
    name = getattr(exc, "sqlite_errorname", "")
    if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
        return Conflict(str(exc))
    if name == "SQLITE_CONSTRAINT_FOREIGNKEY":
        return NotFound(f"a referenced row does not exist ({exc})")
    return StoreError(str(exc))


def _put_lockout(conn: sqlite3.Connection, record: LockoutRecord) -> None:
    conn.execute(
        f"INSERT INTO lockouts ({LOCKOUT_COLS}) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,"
        " last_failure_at = excluded.last_failure_at, locked_until = excluded.locked_until,"
        " alerted_at = excluded.alerted_at",
        (
            record.key,
            record.failures,
            record.last_failure_at,
            record.locked_until,
            record.alerted_at,
        ),
    )


def _run_batch(conn: sqlite3.Connection, fns: list[WriteFn]) -> list[tuple[bool, Any]]:
    """Run write functions in one transaction; each in a savepoint when batched."""
    out: list[tuple[bool, Any]] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        if len(fns) == 1:
            try:
                out.append((True, fns[0](conn)))
            except Exception as exc:
                conn.execute("ROLLBACK")
                return [(False, exc)]
        else:
            for fn in fns:
                conn.execute("SAVEPOINT w")
                try:
                    result = fn(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO w")
                    conn.execute("RELEASE w")
                    out.append((False, exc))
                else:
                    conn.execute("RELEASE w")
                    out.append((True, result))
        conn.execute("COMMIT")
    except Exception as exc:  # BEGIN/COMMIT/savepoint failure: nothing was written
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return [(False, exc)] * len(fns)
    return out


async def _on_thread(db: aiosqlite.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn(raw_connection)`` on the connection's own thread, in one hop.

    aiosqlite's ``_execute`` is the queue its public methods use; running a whole
    transaction through it saves a thread hop per statement on the hot path.
    """
    return await db._execute(lambda: fn(db._conn))


class SqliteStore(SqliteGovernance):
    """:class:`gateway.store.base.Store` on one SQLite file."""

    def __init__(self, path: str | Path, *, lease_seconds: float = 60.0) -> None:
        self.path = Path(path)
        self.lease_seconds = lease_seconds
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._queue: list[tuple[WriteFn, asyncio.Future[Any]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._next_nonce_purge = float("-inf")

    # -- lifecycle ------------------------------------------------------------------
    async def open(self) -> None:
        if self._writer is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        writer = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            writer.row_factory = sqlite3.Row
            await writer.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = await (await writer.execute("PRAGMA journal_mode = WAL")).fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                raise StoreError(f"cannot switch {self.path} to WAL mode")
            await writer.execute("PRAGMA synchronous = FULL")
            await writer.execute("PRAGMA foreign_keys = ON")
            await writer.execute("PRAGMA secure_delete = ON")
            await _on_thread(writer, migrate_sqlite)
            reader = await aiosqlite.connect(self.path, isolation_level=None)
        except BaseException:
            await writer.close()
            raise
        reader.row_factory = sqlite3.Row
        await reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await reader.execute("PRAGMA query_only = ON")
        self._writer, self._reader = writer, reader
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._write_loop(), name="sqlite-store-writer")

    async def close(self) -> None:
        if self._writer is None:
            return
        # Queued writes still commit: the loop drains the queue, then ends.
        self._closing = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        writer, reader = self._writer, self._reader
        self._writer = self._reader = None
        self._task = None
        if reader is not None:
            await reader.close()
        await writer.close()

    async def schema_version(self) -> int:
        return await _on_thread(self._r, sqlite_current_version)

    # -- plumbing -------------------------------------------------------------------
    @property
    def _r(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise StoreError("store is not open")
        return self._reader

    async def _write_loop(self) -> None:
        assert self._writer is not None
        writer = self._writer
        while True:
            if not self._queue:
                if self._closing:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            batch = self._queue[:MAX_BATCH]
            del self._queue[: len(batch)]
            try:
                outcomes = await _on_thread(
                    writer, functools.partial(_run_batch, fns=[fn for fn, _ in batch])
                )
            except BaseException as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(StoreError(f"write failed: {exc!r}"))
                raise
            for (_, fut), (ok, value) in zip(batch, outcomes, strict=True):
                if fut.done():  # the caller was cancelled; the write stands
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closing or self._task is None or self._task.done():
            raise StoreError("store is not open")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((fn, fut))
        self._wake.set()
        try:
            return await fut
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    async def _all(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        return list(await self._r.execute_fetchall(sql, tuple(params)))

    async def _one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        rows = await self._all(sql, params)
        return rows[0] if rows else None

    # -- tenants --------------------------------------------------------------------
    async def create_tenant(self, tenant: Tenant) -> None:
        params = (
            tenant.id,
            tenant.name,
            _dumps(tenant.allowed_origins),
            tenant.identity_mode,
            blob(tenant.identity_secrets_sealed),
            _dumps(tenant.settings),
            int(tenant.frozen),
            tenant.created_at,
        )
        await self._write(
            _exec(f"INSERT INTO tenants ({TENANT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", params)
        )

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        row = await self._one(f"SELECT {TENANT_COLS} FROM tenants WHERE id = ?", (tenant_id,))
        return None if row is None else _rows.tenant(row, json.loads)

    async def list_tenants(self) -> list[Tenant]:
        rows = await self._all(f"SELECT {TENANT_COLS} FROM tenants ORDER BY created_at, id")
        return [_rows.tenant(r, json.loads) for r in rows]

    async def update_tenant(self, tenant: Tenant) -> None:
        params = (
            tenant.name,
            _dumps(tenant.allowed_origins),
            tenant.identity_mode,
            blob(tenant.identity_secrets_sealed),
            _dumps(tenant.settings),
            int(tenant.frozen),
            tenant.id,
        )

        def fn(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "UPDATE tenants SET name = ?, allowed_origins = ?, identity_mode = ?,"
                " identity_secrets_sealed = ?, settings = ?, frozen = ? WHERE id = ?",
                params,
            )
            if cur.rowcount == 0:
                raise NotFound(f"tenant {tenant.id!r}")

        await self._write(fn)

    # -- agents ---------------------------------------------------------------------
    async def create_agent(self, agent: Agent) -> None:
        params = (
            agent.id,
            agent.tenant_id,
            agent.email,
            agent.display_name,
            agent.role,
            agent.password_hash,
            blob(agent.totp_secret_sealed),
            int(agent.totp_confirmed),
            agent.totp_last_step,
            int(agent.disabled),
            agent.created_at,
            agent.password_changed_at,
        )
        await self._write(
            _exec(
                f"INSERT INTO agents ({AGENT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params,
            )
        )

    async def get_agent(self, agent_id: str) -> Agent | None:
        row = await self._one(f"SELECT {AGENT_COLS} FROM agents WHERE id = ?", (agent_id,))
        return None if row is None else _rows.agent(row)

    async def get_agent_by_email(self, email: str) -> Agent | None:
        row = await self._one(f"SELECT {AGENT_COLS} FROM agents WHERE email = ?", (email,))
        return None if row is None else _rows.agent(row)

    async def list_agents(self, tenant_id: str | None = None) -> list[Agent]:
        if tenant_id is None:
            rows = await self._all(f"SELECT {AGENT_COLS} FROM agents ORDER BY created_at, id")
        else:
            rows = await self._all(
                f"SELECT {AGENT_COLS} FROM agents WHERE tenant_id = ? ORDER BY created_at, id",
                (tenant_id,),
            )
        return [_rows.agent(r) for r in rows]

    async def update_agent(self, agent: Agent) -> None:
        params = (
            agent.email,
            agent.display_name,
            agent.role,
            agent.password_hash,
            blob(agent.totp_secret_sealed),
            int(agent.totp_confirmed),
            agent.totp_last_step,
            int(agent.disabled),
            agent.password_changed_at,
            agent.id,
        )

        def fn(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "UPDATE agents SET email = ?, display_name = ?, role = ?, password_hash = ?,"
                " totp_secret_sealed = ?, totp_confirmed = ?,"
                " totp_last_step = MAX(totp_last_step, ?), disabled = ?,"
                " password_changed_at = ? WHERE id = ?",
                params,
            )
            if cur.rowcount == 0:
                raise NotFound(f"agent {agent.id!r}")

        await self._write(fn)

    async def advance_totp_step(self, agent_id: str, step: int) -> bool:
        def fn(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "UPDATE agents SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?",
                (step, agent_id, step),
            )
            return cur.rowcount == 1

        return await self._write(fn)

    async def set_recovery_codes(self, agent_id: str, code_hashes: list[str]) -> None:
        codes = [(agent_id, h) for h in dict.fromkeys(code_hashes)]

        def fn(c: sqlite3.Connection) -> None:
            if c.execute("SELECT 1 FROM agents WHERE id = ?", (agent_id,)).fetchone() is None:
                raise NotFound(f"agent {agent_id!r}")
            c.execute("DELETE FROM recovery_codes WHERE agent_id = ?", (agent_id,))
            c.executemany("INSERT INTO recovery_codes (agent_id, code_hash) VALUES (?, ?)", codes)

        await self._write(fn)

    async def use_recovery_code(self, agent_id: str, code_hash: str, now: float) -> bool:
        def fn(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "UPDATE recovery_codes SET used_at = ?"
                " WHERE agent_id = ? AND code_hash = ? AND used_at IS NULL",
                (now, agent_id, code_hash),
            )
            return cur.rowcount == 1

        return await self._write(fn)

    async def count_recovery_codes(self, agent_id: str) -> int:
        row = await self._one(
            "SELECT COUNT(*) FROM recovery_codes WHERE agent_id = ? AND used_at IS NULL",
            (agent_id,),
        )
        return int(row[0]) if row else 0

    # -- agent sessions -------------------------------------------------------------
    async def create_session(self, session: AgentSession) -> None:
        params = (
            session.token_hash,
            session.agent_id,
            session.tenant_id,
            session.created_at,
            session.last_seen_at,
            session.revoked_at,
            session.ip,
            session.user_agent,
            session.reauth_at,
        )
        await self._write(
            _exec(
                f"INSERT INTO agent_sessions ({SESSION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params,
            )
        )

    async def get_session(self, token_hash: str) -> AgentSession | None:
        row = await self._one(
            f"SELECT {SESSION_COLS} FROM agent_sessions WHERE token_hash = ?", (token_hash,)
        )
        return None if row is None else _rows.session(row)

    async def touch_session(self, token_hash: str, now: float) -> None:
        await self._write(
            _exec(
                "UPDATE agent_sessions SET last_seen_at = MAX(last_seen_at, ?)"
                " WHERE token_hash = ? AND revoked_at IS NULL",
                (now, token_hash),
            )
        )

    async def revoke_session(self, token_hash: str, now: float) -> bool:
        def fn(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "UPDATE agent_sessions SET revoked_at = ?"
                " WHERE token_hash = ? AND revoked_at IS NULL",
                (now, token_hash),
            )
            return cur.rowcount == 1

        return await self._write(fn)

    async def revoke_agent_sessions(self, agent_id: str, now: float) -> list[str]:
        def fn(c: sqlite3.Connection) -> list[str]:
            hashes = [
                r[0]
                for r in c.execute(
                    "SELECT token_hash FROM agent_sessions"
                    " WHERE agent_id = ? AND revoked_at IS NULL ORDER BY created_at",
                    (agent_id,),
                )
            ]
            c.execute(
                "UPDATE agent_sessions SET revoked_at = ?"
                " WHERE agent_id = ? AND revoked_at IS NULL",
                (now, agent_id),
            )
            return hashes

        return await self._write(fn)

    async def list_sessions(self, agent_id: str) -> list[AgentSession]:
        rows = await self._all(
            f"SELECT {SESSION_COLS} FROM agent_sessions WHERE agent_id = ?"
            " ORDER BY created_at DESC, token_hash",
            (agent_id,),
        )
        return [_rows.session(r) for r in rows]

    async def mark_session_reauth(self, token_hash: str, now: float) -> bool:
        def fn(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "UPDATE agent_sessions SET reauth_at = MAX(reauth_at, ?)"
                " WHERE token_hash = ? AND revoked_at IS NULL",
                (now, token_hash),
            )
            return cur.rowcount == 1

        return await self._write(fn)

    # -- brute-force state ----------------------------------------------------------
    async def get_lockout(self, key: str) -> LockoutRecord | None:
        row = await self._one(f"SELECT {LOCKOUT_COLS} FROM lockouts WHERE key = ?", (key,))
        return None if row is None else _rows.lockout(row)

    async def put_lockout(self, record: LockoutRecord) -> None:
        await self._write(lambda c: _put_lockout(c, record))

    async def clear_lockout(self, key: str) -> None:
        await self._write(_exec("DELETE FROM lockouts WHERE key = ?", (key,)))

    async def update_lockout(
        self, key: str, change: LockoutChange
    ) -> tuple[LockoutRecord | None, LockoutRecord | None]:
        # Runs on the single writer connection inside BEGIN IMMEDIATE: no other write
        # can interleave between the read and the write.
        def fn(c: sqlite3.Connection) -> tuple[LockoutRecord | None, LockoutRecord | None]:
            row = c.execute(f"SELECT {LOCKOUT_COLS} FROM lockouts WHERE key = ?", (key,)).fetchone()
            before = None if row is None else _rows.lockout(row)
            after = change(before)
            if after is None:
                if before is not None:
                    c.execute("DELETE FROM lockouts WHERE key = ?", (key,))
            else:
                after.key = key
                _put_lockout(c, after)
            return before, after

        return await self._write(fn)

    async def clear_lockouts(self, prefix: str) -> int:
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"

        def fn(c: sqlite3.Connection) -> int:
            return c.execute(
                "DELETE FROM lockouts WHERE key LIKE ? ESCAPE '\\'", (pattern,)
            ).rowcount

        return await self._write(fn)

    # -- audit ----------------------------------------------------------------------
    async def append_audit(self, event: AuditEvent, seal: AuditSeal | None = None) -> int:
        return await self._write(lambda c: append_chained(c, event, seal))

    async def query_audit(
        self,
        *,
        tenant_id: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        since: float | None = None,
        until: float | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (
            ("tenant_id = ?", tenant_id),
            ("action = ?", action),
            ("actor = ?", actor),
            ("ts >= ?", since),
            ("ts < ?", until),
            ("id < ?", before_id),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"SELECT {AUDIT_COLS} FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(max(0, limit))
        return [_rows.audit(r, json.loads) for r in await self._all(sql, params)]

    # -- chats ----------------------------------------------------------------------
    async def create_chat(self, chat: Chat, wrapped_key: bytes) -> None:
        params = (
            chat.id,
            chat.tenant_id,
            chat.state,
            chat.created_at,
            chat.queue,
            chat.assigned_agent_id,
            chat.resume_token_hash,
            blob(chat.identity_sealed),
            int(chat.verified),
            blob(chat.profile_sealed),
            chat.last_seq,
            chat.closed_at,
            chat.close_reason,
            chat.csat,
            chat.accepted_at,
        )
        key = blob(wrapped_key)

        def fn(c: sqlite3.Connection) -> None:
            c.execute(
                f"INSERT INTO chats ({CHAT_COLS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                params,
            )
            c.execute("INSERT INTO chat_keys (chat_id, wrapped_key) VALUES (?, ?)", (chat.id, key))

        await self._write(fn)

    async def get_chat(self, chat_id: str) -> Chat | None:
        row = await self._one(f"SELECT {CHAT_COLS} FROM chats WHERE id = ?", (chat_id,))
        return None if row is None else _rows.chat(row)

    async def get_chat_key(self, chat_id: str) -> bytes | None:
        row = await self._one("SELECT wrapped_key FROM chat_keys WHERE chat_id = ?", (chat_id,))
        return None if row is None else bytes(row[0])

    async def list_chat_keys(self, after_chat_id: str, limit: int) -> list[tuple[str, bytes]]:
        rows = await self._all(
            "SELECT chat_id, wrapped_key FROM chat_keys WHERE chat_id > ? ORDER BY chat_id LIMIT ?",
            (after_chat_id, max(0, int(limit))),
        )
        return [(str(r[0]), bytes(r[1])) for r in rows]

    async def replace_chat_key(self, chat_id: str, wrapped: bytes) -> bool:
        key = blob(wrapped)

        def fn(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "UPDATE chat_keys SET wrapped_key = ? WHERE chat_id = ?", (key, chat_id)
            )
            return cur.rowcount == 1

        return await self._write(fn)

    async def update_chat(self, chat: Chat) -> None:
        params = (
            chat.state,
            chat.queue,
            chat.assigned_agent_id,
            chat.resume_token_hash,
            blob(chat.identity_sealed),
            int(chat.verified),
            blob(chat.profile_sealed),
            chat.closed_at,
            chat.close_reason,
            chat.csat,
            chat.accepted_at,
            chat.id,
        )

        def fn(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "UPDATE chats SET state = ?, queue = ?, assigned_agent_id = ?,"
                " resume_token_hash = ?, identity_sealed = ?, verified = ?, profile_sealed = ?,"
                " closed_at = ?, close_reason = ?, csat = ?, accepted_at = ?"
                " WHERE id = ? AND erased = 0",
                params,
            )
            if cur.rowcount == 0:
                raise NotFound(f"chat {chat.id!r}")

        await self._write(fn)

    async def assign_chat(
        self,
        chat_id: str,
        *,
        agent_id: str | None,
        queue: str | None = None,
        from_states: tuple[ChatState, ...] = ("queued",),
        expected_agent_id: str | None = None,
        check_agent: bool = False,
        now: float,
    ) -> Chat | None:
        if not from_states:
            return None
        states = ", ".join("?" * len(from_states))
        if agent_id is None:
            sets = "state = 'queued', assigned_agent_id = NULL, queue = COALESCE(?, queue)"
            set_params: list[Any] = [queue]
        else:
            sets = (
                "state = 'active', assigned_agent_id = ?, queue = COALESCE(?, queue),"
                " accepted_at = COALESCE(accepted_at, ?)"
            )
            set_params = [agent_id, queue, now]
        sql = f"UPDATE chats SET {sets} WHERE id = ? AND erased = 0 AND state IN ({states})"
        params = [*set_params, chat_id, *from_states]
        if check_agent:
            sql += " AND assigned_agent_id IS ?"
            params.append(expected_agent_id)

        def fn(c: sqlite3.Connection) -> Chat | None:
            if c.execute(sql, params).rowcount != 1:
                return None
            row = c.execute(f"SELECT {CHAT_COLS} FROM chats WHERE id = ?", (chat_id,)).fetchone()
            return _rows.chat(row)

        return await self._write(fn)

    async def list_chats(
        self,
        tenant_id: str,
        *,
        states: tuple[ChatState, ...] = ("queued", "active"),
        agent_id: str | None = None,
        limit: int = 500,
    ) -> list[Chat]:
        if not states:
            return []
        sql = (
            f"SELECT {CHAT_COLS} FROM chats WHERE tenant_id = ?"
            f" AND state IN ({', '.join('?' * len(states))})"
        )
        params: list[Any] = [tenant_id, *states]
        if agent_id is not None:
            sql += " AND assigned_agent_id = ?"
            params.append(agent_id)
        sql += " ORDER BY created_at, id LIMIT ?"
        params.append(max(0, limit))
        return [_rows.chat(r) for r in await self._all(sql, params)]

    async def close_chat(
        self, chat_id: str, *, closed_at: float, reason: str, csat: int | None = None
    ) -> Chat | None:
        def fn(c: sqlite3.Connection) -> Chat | None:
            cur = c.execute(
                "UPDATE chats SET state = 'closed', closed_at = ?, close_reason = ?,"
                " csat = COALESCE(?, csat) WHERE id = ? AND erased = 0 AND state <> 'closed'",
                (closed_at, reason, csat, chat_id),
            )
            if cur.rowcount != 1:
                return None
            row = c.execute(f"SELECT {CHAT_COLS} FROM chats WHERE id = ?", (chat_id,)).fetchone()
            return _rows.chat(row)

        return await self._write(fn)

    async def erase_chat(self, chat_id: str) -> bool:
        def fn(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "UPDATE chats SET state = 'closed', close_reason = 'erased', erased = 1,"
                " identity_sealed = NULL, profile_sealed = NULL, resume_token_hash = ''"
                " WHERE id = ?",
                (chat_id,),
            )
            if cur.rowcount == 0:
                return False
            c.execute("DELETE FROM messages WHERE chat_id = ?", (chat_id,))
            c.execute("DELETE FROM policy_flags WHERE chat_id = ?", (chat_id,))
            c.execute(
                "DELETE FROM outbox WHERE chat_id = ? AND state IN ('pending', 'dead')",
                (chat_id,),
            )
            c.execute("DELETE FROM chat_keys WHERE chat_id = ?", (chat_id,))
            return True

        erased = await self._write(fn)
        if erased:
            # Drop old WAL frames that still hold the key; best effort (readers may pin it).
            writer = self._writer
            assert writer is not None  # open: the erase above just used it
            with contextlib.suppress(sqlite3.Error):
                await _on_thread(
                    writer, lambda c: c.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                )
        return erased

    async def chats_closed_before(self, cutoff: float, limit: int = 500) -> list[str]:
        rows = await self._all(
            "SELECT id FROM chats WHERE state = 'closed' AND erased = 0 AND closed_at < ?"
            " ORDER BY closed_at, id LIMIT ?",
            (cutoff, max(0, limit)),
        )
        return [r[0] for r in rows]

    # -- messages -------------------------------------------------------------------
    async def append_message(self, message: NewMessage, events: EventsArg = None) -> AppendResult:
        body = blob(message.body_sealed)
        policy = _dumps(message.policy)

        def fn(c: sqlite3.Connection) -> AppendResult:
            chat = c.execute(
                "SELECT last_seq, erased, state FROM chats WHERE id = ?", (message.chat_id,)
            ).fetchone()
            if chat is None or chat[1]:
                raise NotFound(f"chat {message.chat_id!r}")
            existing = c.execute(
                f"SELECT {MESSAGE_COLS} FROM messages WHERE chat_id = ? AND msg_id = ?",
                (message.chat_id, message.msg_id),
            ).fetchone()
            if existing is not None:
                return AppendResult(_rows.message(existing, json.loads), duplicate=True)
            if chat[2] == "closed":
                raise ChatClosed(f"chat {message.chat_id!r}")
            seq = int(chat[0]) + 1
            c.execute(
                f"INSERT INTO messages ({MESSAGE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message.chat_id,
                    seq,
                    message.msg_id,
                    message.sender,
                    message.ts,
                    body,
                    message.sender_agent_id,
                    policy,
                ),
            )
            c.execute("UPDATE chats SET last_seq = ? WHERE id = ?", (seq, message.chat_id))
            stored = StoredMessage(
                chat_id=message.chat_id,
                seq=seq,
                msg_id=message.msg_id,
                sender=message.sender,
                ts=message.ts,
                body_sealed=body or b"",
                sender_agent_id=message.sender_agent_id,
                policy=json.loads(policy),
            )
            batch = events(stored) if callable(events) else (events or [])
            if batch:
                c.executemany(_SQL_INSERT_EVENT, [_event_params(e) for e in batch])
            return AppendResult(stored, duplicate=False)

        return await self._write(fn)

    async def messages_after(
        self, chat_id: str, after_seq: int, limit: int = 1000
    ) -> list[StoredMessage]:
        rows = await self._all(
            f"SELECT {MESSAGE_COLS} FROM messages WHERE chat_id = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            (chat_id, after_seq, max(0, limit)),
        )
        return [_rows.message(r, json.loads) for r in rows]

    async def add_flag(self, flag: PolicyFlag) -> int:
        params = (
            flag.chat_id,
            flag.tenant_id,
            flag.seq,
            _dumps(flag.kinds),
            blob(flag.original_sealed),
            flag.created_at,
            flag.reviewed_by,
        )

        def fn(c: sqlite3.Connection) -> int:
            cur = c.execute(
                "INSERT INTO policy_flags"
                " (chat_id, tenant_id, seq, kinds, original_sealed, created_at, reviewed_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                params,
            )
            return int(cur.lastrowid or 0)

        return await self._write(fn)

    async def list_flags(self, tenant_id: str, *, unreviewed_only: bool = True) -> list[PolicyFlag]:
        sql = f"SELECT {FLAG_COLS} FROM policy_flags WHERE tenant_id = ?"
        if unreviewed_only:
            sql += " AND reviewed_by IS NULL"
        rows = await self._all(sql + " ORDER BY id", (tenant_id,))
        return [_rows.flag(r, json.loads) for r in rows]

    async def get_flag(self, flag_id: int) -> PolicyFlag | None:
        row = await self._one(f"SELECT {FLAG_COLS} FROM policy_flags WHERE id = ?", (flag_id,))
        return None if row is None else _rows.flag(row, json.loads)

    async def mark_flag_reviewed(self, flag_id: int, reviewer: str) -> None:
        def fn(c: sqlite3.Connection) -> None:
            cur = c.execute(
                "UPDATE policy_flags SET reviewed_by = ? WHERE id = ?", (reviewer, flag_id)
            )
            if cur.rowcount == 0:
                raise NotFound(f"flag {flag_id}")

        await self._write(fn)

    # -- plugin outbox --------------------------------------------------------------
    async def enqueue_events(self, events: list[OutboxEvent]) -> None:
        if not events:
            return
        rows = [_event_params(e) for e in events]
        await self._write(_exec(_SQL_INSERT_EVENT, rows, many=True))

    async def claim_due_events(self, now: float, limit: int = 100) -> list[OutboxItem]:
        lease = now + self.lease_seconds

        def fn(c: sqlite3.Connection) -> list[OutboxItem]:
            ids = [
                (lease, r[0])
                for r in c.execute(
                    "SELECT o.id FROM outbox o"
                    " WHERE o.state = 'pending' AND o.next_attempt_at <= ?"
                    " AND (o.leased_until IS NULL OR o.leased_until <= ?)"
                    " AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.state = 'pending'"
                    "   AND p.plugin = o.plugin AND p.chat_id = o.chat_id AND p.id < o.id)"
                    " ORDER BY o.id LIMIT ?",
                    (now, now, max(0, limit)),
                )
            ]
            if not ids:
                return []
            c.executemany(
                "UPDATE outbox SET leased_until = ?, lease_token = lease_token + 1 WHERE id = ?",
                ids,
            )
            placeholders = ", ".join("?" * len(ids))
            rows = c.execute(
                f"SELECT {OUTBOX_COLS} FROM outbox WHERE id IN ({placeholders}) ORDER BY id",
                [i for _, i in ids],
            ).fetchall()
            return [_rows.outbox(r) for r in rows]

        return await self._write(fn)

    async def _settle(self, sql: str, params: tuple[Any, ...], lease: int | None) -> bool:
        if lease is not None:
            sql += " AND lease_token = ?"
            params = (*params, lease)

        def fn(c: sqlite3.Connection) -> bool:
            return c.execute(sql, params).rowcount == 1

        return await self._write(fn)

    async def mark_delivered(self, item_id: int, now: float, *, lease: int | None = None) -> bool:
        return await self._settle(
            "UPDATE outbox SET state = 'delivered', delivered_at = ?, leased_until = NULL"
            " WHERE id = ? AND state = 'pending'",
            (now, item_id),
            lease,
        )

    async def reschedule_event(
        self,
        item_id: int,
        *,
        attempts: int,
        next_attempt_at: float,
        error: str,
        lease: int | None = None,
    ) -> bool:
        return await self._settle(
            "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ?,"
            " leased_until = NULL WHERE id = ? AND state = 'pending'",
            (attempts, next_attempt_at, error, item_id),
            lease,
        )

    async def dead_letter(
        self, item_id: int, *, attempts: int, error: str, lease: int | None = None
    ) -> bool:
        return await self._settle(
            "UPDATE outbox SET state = 'dead', attempts = ?, last_error = ?,"
            " leased_until = NULL WHERE id = ? AND state = 'pending'",
            (attempts, error, item_id),
            lease,
        )

    async def list_events(
        self,
        *,
        tenant_id: str | None = None,
        plugin: str | None = None,
        state: OutboxState | None = None,
        limit: int = 100,
    ) -> list[OutboxItem]:
        where: list[str] = []
        params: list[Any] = []
        for clause, value in (
            ("tenant_id = ?", tenant_id),
            ("plugin = ?", plugin),
            ("state = ?", state),
        ):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"SELECT {OUTBOX_COLS} FROM outbox"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id LIMIT ?"
        params.append(max(0, limit))
        return [_rows.outbox(r) for r in await self._all(sql, params)]

    async def replay_dead(self, item_id: int, now: float) -> bool:
        def fn(c: sqlite3.Connection) -> bool:
            cur = c.execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?,"
                " leased_until = NULL WHERE id = ? AND state = 'dead'",
                (now, item_id),
            )
            return cur.rowcount == 1

        return await self._write(fn)

    # -- plugin configuration -------------------------------------------------------
    async def put_plugin_config(self, config: PluginConfig) -> None:
        params = (
            config.tenant_id,
            config.plugin,
            int(config.enabled),
            _dumps(config.config),
            blob(config.secrets_sealed),
            config.updated_at,
        )
        await self._write(
            _exec(
                f"INSERT INTO plugin_configs ({PLUGIN_COLS}) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, plugin) DO UPDATE SET enabled = excluded.enabled,"
                " config = excluded.config, secrets_sealed = excluded.secrets_sealed,"
                " updated_at = excluded.updated_at",
                params,
            )
        )

    async def get_plugin_config(self, tenant_id: str, plugin: str) -> PluginConfig | None:
        row = await self._one(
            f"SELECT {PLUGIN_COLS} FROM plugin_configs WHERE tenant_id = ? AND plugin = ?",
            (tenant_id, plugin),
        )
        return None if row is None else _rows.plugin_config(row, json.loads)

    async def list_plugin_configs(self, tenant_id: str | None = None) -> list[PluginConfig]:
        if tenant_id is None:
            rows = await self._all(
                f"SELECT {PLUGIN_COLS} FROM plugin_configs ORDER BY tenant_id, plugin"
            )
        else:
            rows = await self._all(
                f"SELECT {PLUGIN_COLS} FROM plugin_configs WHERE tenant_id = ? ORDER BY plugin",
                (tenant_id,),
            )
        return [_rows.plugin_config(r, json.loads) for r in rows]

    # -- per-plugin key-value store -----------------------------------------------------
    async def kv_get(self, tenant_id: str, plugin: str, key: str, now: float) -> bytes | None:
        row = await self._one(
            "SELECT value FROM plugin_kv WHERE tenant_id = ? AND plugin = ? AND key = ?"
            " AND (expires_at IS NULL OR expires_at > ?)",
            (tenant_id, plugin, key, now),
        )
        return None if row is None else bytes(row["value"])

    async def kv_put(
        self,
        tenant_id: str,
        plugin: str,
        key: str,
        value: bytes,
        *,
        now: float,
        expires_at: float | None = None,
        only_if_absent: bool = False,
    ) -> bool:
        sql = (
            "INSERT INTO plugin_kv (tenant_id, plugin, key, value, expires_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, plugin, key) DO UPDATE SET"
            " value = excluded.value, expires_at = excluded.expires_at,"
            " updated_at = excluded.updated_at"
        )
        params: tuple[Any, ...] = (tenant_id, plugin, key, blob(value), expires_at, now)
        if only_if_absent:
            sql += " WHERE plugin_kv.expires_at IS NOT NULL AND plugin_kv.expires_at <= ?"
            params = (*params, now)

        def fn(c: sqlite3.Connection) -> bool:
            try:
                return c.execute(sql, params).rowcount == 1
            except sqlite3.IntegrityError:
                raise NotFound(f"tenant {tenant_id}") from None

        return await self._write(fn)

    async def kv_delete(self, tenant_id: str, plugin: str, key: str) -> bool:
        def fn(c: sqlite3.Connection) -> bool:
            return (
                c.execute(
                    "DELETE FROM plugin_kv WHERE tenant_id = ? AND plugin = ? AND key = ?",
                    (tenant_id, plugin, key),
                ).rowcount
                == 1
            )

        return await self._write(fn)

    # -- widget identity replay protection --------------------------------------------
    async def remember_nonce(
        self, tenant_id: str, nonce: str, expires_at: float, now: float
    ) -> bool:
        purge = now >= self._next_nonce_purge
        if purge:
            self._next_nonce_purge = now + NONCE_PURGE_INTERVAL

        def fn(c: sqlite3.Connection) -> bool:
            if purge:
                c.execute("DELETE FROM nonces WHERE expires_at <= ?", (now,))
            # A row that exists but has expired is taken over (it was purgeable anyway).
            cur = c.execute(
                "INSERT INTO nonces (tenant_id, nonce, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (tenant_id, nonce) DO UPDATE SET expires_at = excluded.expires_at"
                " WHERE nonces.expires_at <= ?",
                (tenant_id, nonce, expires_at, now),
            )
            return cur.rowcount == 1

        return await self._write(fn)

    # -- tenant keyword lists (policy) ----------------------------------------------------
    async def put_keyword_list(self, record: KeywordListRecord) -> None:
        upsert, _, _ = _keyword_lists.sqlite_sql()
        await self._write(_exec(upsert, _keyword_lists.params(record)))

    async def list_keyword_lists(self, tenant_id: str) -> list[KeywordListRecord]:
        _, select, _ = _keyword_lists.sqlite_sql()
        return [_keyword_lists.record(r) for r in await self._all(select, (tenant_id,))]

    async def delete_keyword_list(self, tenant_id: str, name: str) -> bool:
        _, _, delete = _keyword_lists.sqlite_sql()

        def fn(c: sqlite3.Connection) -> bool:
            cur = c.execute(delete, (tenant_id, name))
            return cur.rowcount == 1

        return await self._write(fn)

    # -- scoped API tokens (migration 0006) ---------------------------------------------
    async def create_api_token(self, token: ApiToken) -> None:
        await self._write(_exec(_api_tokens.sql("insert", "sqlite"), _api_tokens.params(token)))

    async def get_api_token(self, token_hash: str) -> ApiToken | None:
        row = await self._one(_api_tokens.sql("by_hash", "sqlite"), (token_hash,))
        return None if row is None else _api_tokens.record(row)

    async def list_api_tokens(self, tenant_id: str) -> list[ApiToken]:
        rows = await self._all(_api_tokens.sql("by_tenant", "sqlite"), (tenant_id,))
        return [_api_tokens.record(r) for r in rows]

    async def revoke_api_token(self, tenant_id: str, token_id: str, now: float) -> bool:
        statement = _api_tokens.sql("revoke", "sqlite")

        def fn(c: sqlite3.Connection) -> bool:
            return c.execute(statement, (now, tenant_id, token_id)).rowcount == 1

        return await self._write(fn)

    async def purge_dead_rows(self, cutoffs: PurgeCutoffs) -> dict[str, int]:
        statements = [
            (name, _api_tokens.render(template, "sqlite"), _housekeeping.params(name, cutoffs))
            for name, template in _housekeeping.STATEMENTS
        ]

        def fn(c: sqlite3.Connection) -> dict[str, int]:
            return {name: c.execute(sql, values).rowcount for name, sql, values in statements}

        return await self._write(fn)

    async def touch_api_token(self, token_id: str, now: float) -> None:
        await self._write(_exec(_api_tokens.sql("touch", "sqlite"), (now, token_id, now)))

    async def record_login(self, agent_id: str, at: float) -> None:
        await self._write(_exec(_api_tokens.sql("login_upsert", "sqlite"), (agent_id, at)))

    async def last_logins(self, tenant_id: str) -> dict[str, float]:
        rows = await self._all(_api_tokens.sql("logins_of_tenant", "sqlite"), (tenant_id,))
        return {r["agent_id"]: float(r["at"]) for r in rows}

    # -- agent invitations (migration 0007; SQL in _invites) ----------------------------
    async def create_invite(self, invite: Invite) -> None:
        await self._write(_exec(_invites.sql("insert", "sqlite"), _invites.params(invite)))

    async def get_invite(self, token_hash: str) -> Invite | None:
        row = await self._one(_invites.sql("by_hash", "sqlite"), (token_hash,))
        return None if row is None else _invites.record(row)

    async def list_invites(self, tenant_id: str) -> list[Invite]:
        rows = await self._all(_invites.sql("by_tenant", "sqlite"), (tenant_id,))
        return [_invites.record(r) for r in rows]

    async def revoke_invite(self, tenant_id: str, invite_id: str, actor: str, now: float) -> bool:
        return await self._write_count(
            _invites.sql("revoke", "sqlite"), (now, actor, tenant_id, invite_id)
        )

    async def claim_invite(self, invite_id: str, agent_id: str, now: float) -> bool:
        return await self._write_count(
            _invites.sql("claim", "sqlite"), (now, agent_id, invite_id, now)
        )

    async def _write_count(self, statement: str, values: tuple[Any, ...]) -> bool:
        """Run one UPDATE in the writer; True if it changed exactly one row."""

        def fn(c: sqlite3.Connection) -> bool:
            return c.execute(statement, values).rowcount == 1

        return await self._write(fn)


def _exec(sql: str, params: Any, *, many: bool = False) -> Callable[[sqlite3.Connection], None]:
    """A write function running one statement (no cursor escapes the writer thread)."""

    def fn(c: sqlite3.Connection) -> None:
        if many:
            c.executemany(sql, params).close()
        else:
            c.execute(sql, params).close()

    return fn


_SQL_INSERT_EVENT = (
    "INSERT INTO outbox (tenant_id, plugin, event_type, idempotency_key, payload_sealed,"
    " chat_id, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (plugin, idempotency_key) DO NOTHING"
)


def _event_params(e: OutboxEvent) -> tuple[Any, ...]:
    return (
        e.tenant_id,
        e.plugin,
        e.event_type,
        e.idempotency_key,
        blob(e.payload_sealed),
        e.chat_id,
        e.created_at,
        e.created_at,
    )
