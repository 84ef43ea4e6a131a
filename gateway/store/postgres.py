# ruff: noqa: S608
# (S608: SQL text here is built only from constant column lists and placeholders; every
# value is a bound parameter.)
"""PostgreSQL store (asyncpg, connection pool): production, shared by N gateway nodes.

Concurrency rules, all under READ COMMITTED:

- ``append_message`` increments ``chats.last_seq`` with ``UPDATE ... RETURNING`` first:
  the row lock serialises appends to one chat across nodes, so seqs are distinct and
  gap-free (a rolled-back append also rolls back its increment). ``erase_chat`` takes the
  same row lock, and the ``erased`` flag lives on that row, so an append waiting behind
  an erase re-checks it and fails with :class:`NotFound`.
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
from gateway.store.governance_postgres import PostgresGovernance, append_chained
from gateway.store.migrate import migrate_postgres, pg_current_version

P = ParamSpec("P")
T = TypeVar("T")

NONCE_PURGE_INTERVAL = 60.0


def _ident(value: Any) -> Any:
    return value


def _translated(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Map constraint violations to the store's errors (still a coroutine function, so the
    methods satisfy the ``Store`` protocol's ``async def``s)."""

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

    return wrapper


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("jsonb", "json"):
        await conn.set_type_codec(
            type_name,
            encoder=functools.partial(json.dumps, separators=(",", ":"), ensure_ascii=False),
            decoder=json.loads,
            schema="pg_catalog",
        )


class _Duplicate(Exception):  # internal control flow: rolls the append back
    pass


_SQL_INSERT_EVENT = (
    "INSERT INTO outbox (tenant_id, plugin, event_type, idempotency_key, payload_sealed,"
    " chat_id, created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
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
    )


_PUT_LOCKOUT = (
    f"INSERT INTO lockouts ({LOCKOUT_COLS}) VALUES ($1, $2, $3, $4, $5)"
    " ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,"
    " last_failure_at = excluded.last_failure_at, locked_until = excluded.locked_until,"
    " alerted_at = excluded.alerted_at"
)


def _lockout_args(record: LockoutRecord) -> tuple[Any, ...]:
    return (
        record.key,
        record.failures,
        record.last_failure_at,
        record.locked_until,
        record.alerted_at,
    )


class PostgresStore(PostgresGovernance):
    """:class:`gateway.store.base.Store` on PostgreSQL."""

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

    # -- lifecycle ------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        pool = await asyncpg.create_pool(
            self.dsn, min_size=self.min_size, max_size=self.max_size, init=_init_connection
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

    async def schema_version(self) -> int:
        async with self.pool.acquire() as conn:
            return await pg_current_version(conn)

    # -- tenants --------------------------------------------------------------------
    @_translated
    async def create_tenant(self, tenant: Tenant) -> None:
        await self.pool.execute(
            f"INSERT INTO tenants ({TENANT_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            tenant.id,
            tenant.name,
            list(tenant.allowed_origins),
            tenant.identity_mode,
            blob(tenant.identity_secrets_sealed),
            dict(tenant.settings),
            tenant.frozen,
            tenant.created_at,
        )

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        row = await self.pool.fetchrow(
            f"SELECT {TENANT_COLS} FROM tenants WHERE id = $1", tenant_id
        )
        return None if row is None else _rows.tenant(row, _ident)

    async def list_tenants(self) -> list[Tenant]:
        rows = await self.pool.fetch(f"SELECT {TENANT_COLS} FROM tenants ORDER BY created_at, id")
        return [_rows.tenant(r, _ident) for r in rows]

    @_translated
    async def update_tenant(self, tenant: Tenant) -> None:
        status = await self.pool.execute(
            "UPDATE tenants SET name = $2, allowed_origins = $3, identity_mode = $4,"
            " identity_secrets_sealed = $5, settings = $6, frozen = $7 WHERE id = $1",
            tenant.id,
            tenant.name,
            list(tenant.allowed_origins),
            tenant.identity_mode,
            blob(tenant.identity_secrets_sealed),
            dict(tenant.settings),
            tenant.frozen,
        )
        if status.endswith(" 0"):
            raise NotFound(f"tenant {tenant.id!r}")

    # -- agents ---------------------------------------------------------------------
    @_translated
    async def create_agent(self, agent: Agent) -> None:
        await self.pool.execute(
            f"INSERT INTO agents ({AGENT_COLS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            agent.id,
            agent.tenant_id,
            agent.email,
            agent.display_name,
            agent.role,
            agent.password_hash,
            blob(agent.totp_secret_sealed),
            agent.totp_confirmed,
            agent.totp_last_step,
            agent.disabled,
            agent.created_at,
            agent.password_changed_at,
        )

    async def get_agent(self, agent_id: str) -> Agent | None:
        row = await self.pool.fetchrow(f"SELECT {AGENT_COLS} FROM agents WHERE id = $1", agent_id)
        return None if row is None else _rows.agent(row)

    async def get_agent_by_email(self, email: str) -> Agent | None:
        row = await self.pool.fetchrow(f"SELECT {AGENT_COLS} FROM agents WHERE email = $1", email)
        return None if row is None else _rows.agent(row)

    async def list_agents(self, tenant_id: str | None = None) -> list[Agent]:
        if tenant_id is None:
            rows = await self.pool.fetch(f"SELECT {AGENT_COLS} FROM agents ORDER BY created_at, id")
        else:
            rows = await self.pool.fetch(
                f"SELECT {AGENT_COLS} FROM agents WHERE tenant_id = $1 ORDER BY created_at, id",
                tenant_id,
            )
        return [_rows.agent(r) for r in rows]

    @_translated
    async def update_agent(self, agent: Agent) -> None:
        status = await self.pool.execute(
            "UPDATE agents SET email = $2, display_name = $3, role = $4, password_hash = $5,"
            " totp_secret_sealed = $6, totp_confirmed = $7,"
            " totp_last_step = GREATEST(totp_last_step, $8), disabled = $9,"
            " password_changed_at = $10 WHERE id = $1",
            agent.id,
            agent.email,
            agent.display_name,
            agent.role,
            agent.password_hash,
            blob(agent.totp_secret_sealed),
            agent.totp_confirmed,
            agent.totp_last_step,
            agent.disabled,
            agent.password_changed_at,
        )
        if status.endswith(" 0"):
            raise NotFound(f"agent {agent.id!r}")

    async def advance_totp_step(self, agent_id: str, step: int) -> bool:
        # One statement: concurrent callers queue on the row lock and re-check the WHERE
        # against the committed value, so exactly one of them wins a given step.
        status = await self.pool.execute(
            "UPDATE agents SET totp_last_step = $2 WHERE id = $1 AND totp_last_step < $2",
            agent_id,
            step,
        )
        return status == "UPDATE 1"

    @_translated
    async def set_recovery_codes(self, agent_id: str, code_hashes: list[str]) -> None:
        codes = [(agent_id, h) for h in dict.fromkeys(code_hashes)]
        async with self.pool.acquire() as conn, conn.transaction():
            found = await conn.fetchval(
                "SELECT 1 FROM agents WHERE id = $1 FOR NO KEY UPDATE", agent_id
            )
            if found is None:
                raise NotFound(f"agent {agent_id!r}")
            await conn.execute("DELETE FROM recovery_codes WHERE agent_id = $1", agent_id)
            if codes:
                await conn.executemany(
                    "INSERT INTO recovery_codes (agent_id, code_hash) VALUES ($1, $2)", codes
                )

    async def use_recovery_code(self, agent_id: str, code_hash: str, now: float) -> bool:
        status = await self.pool.execute(
            "UPDATE recovery_codes SET used_at = $3"
            " WHERE agent_id = $1 AND code_hash = $2 AND used_at IS NULL",
            agent_id,
            code_hash,
            now,
        )
        return status == "UPDATE 1"

    async def count_recovery_codes(self, agent_id: str) -> int:
        return int(
            await self.pool.fetchval(
                "SELECT COUNT(*) FROM recovery_codes WHERE agent_id = $1 AND used_at IS NULL",
                agent_id,
            )
        )

    # -- agent sessions -------------------------------------------------------------
    @_translated
    async def create_session(self, session: AgentSession) -> None:
        await self.pool.execute(
            f"INSERT INTO agent_sessions ({SESSION_COLS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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

    async def get_session(self, token_hash: str) -> AgentSession | None:
        row = await self.pool.fetchrow(
            f"SELECT {SESSION_COLS} FROM agent_sessions WHERE token_hash = $1", token_hash
        )
        return None if row is None else _rows.session(row)

    async def touch_session(self, token_hash: str, now: float) -> None:
        await self.pool.execute(
            "UPDATE agent_sessions SET last_seen_at = GREATEST(last_seen_at, $2)"
            " WHERE token_hash = $1 AND revoked_at IS NULL",
            token_hash,
            now,
        )

    async def revoke_session(self, token_hash: str, now: float) -> bool:
        status = await self.pool.execute(
            "UPDATE agent_sessions SET revoked_at = $2"
            " WHERE token_hash = $1 AND revoked_at IS NULL",
            token_hash,
            now,
        )
        return status == "UPDATE 1"

    async def revoke_agent_sessions(self, agent_id: str, now: float) -> list[str]:
        rows = await self.pool.fetch(
            "UPDATE agent_sessions SET revoked_at = $2"
            " WHERE agent_id = $1 AND revoked_at IS NULL RETURNING token_hash, created_at",
            agent_id,
            now,
        )
        return [r["token_hash"] for r in sorted(rows, key=lambda r: r["created_at"])]

    async def list_sessions(self, agent_id: str) -> list[AgentSession]:
        rows = await self.pool.fetch(
            f"SELECT {SESSION_COLS} FROM agent_sessions WHERE agent_id = $1"
            " ORDER BY created_at DESC, token_hash",
            agent_id,
        )
        return [_rows.session(r) for r in rows]

    async def mark_session_reauth(self, token_hash: str, now: float) -> bool:
        status = await self.pool.execute(
            "UPDATE agent_sessions SET reauth_at = GREATEST(reauth_at, $2)"
            " WHERE token_hash = $1 AND revoked_at IS NULL",
            token_hash,
            now,
        )
        return status == "UPDATE 1"

    # -- brute-force state ----------------------------------------------------------
    async def get_lockout(self, key: str) -> LockoutRecord | None:
        row = await self.pool.fetchrow(f"SELECT {LOCKOUT_COLS} FROM lockouts WHERE key = $1", key)
        return None if row is None else _rows.lockout(row)

    async def put_lockout(self, record: LockoutRecord) -> None:
        await self.pool.execute(_PUT_LOCKOUT, *_lockout_args(record))

    async def clear_lockout(self, key: str) -> None:
        await self.pool.execute("DELETE FROM lockouts WHERE key = $1", key)

    async def update_lockout(
        self, key: str, change: LockoutChange
    ) -> tuple[LockoutRecord | None, LockoutRecord | None]:
        async with self.pool.acquire() as conn, conn.transaction():
            # Make sure a row exists to lock (a concurrent first insert waits on the
            # unique index, then finds the row), then hold its lock until commit.
            await conn.execute(
                "INSERT INTO lockouts (key) VALUES ($1) ON CONFLICT (key) DO NOTHING", key
            )
            row = await conn.fetchrow(
                f"SELECT {LOCKOUT_COLS} FROM lockouts WHERE key = $1 FOR UPDATE", key
            )
            stored = _rows.lockout(row)
            before = None if stored == LockoutRecord(key) else stored
            after = change(before)
            if after is None:
                await conn.execute("DELETE FROM lockouts WHERE key = $1", key)
            else:
                after.key = key
                await conn.execute(_PUT_LOCKOUT, *_lockout_args(after))
            return before, after

    async def clear_lockouts(self, prefix: str) -> int:
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        status = await self.pool.execute("DELETE FROM lockouts WHERE key LIKE $1", pattern)
        return int(status.rsplit(" ", 1)[-1])

    # -- audit ----------------------------------------------------------------------
    async def append_audit(self, event: AuditEvent, seal: AuditSeal | None = None) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            return await append_chained(conn, event, seal)

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
            ("tenant_id = ", tenant_id),
            ("action = ", action),
            ("actor = ", actor),
            ("ts >= ", since),
            ("ts < ", until),
            ("id < ", before_id),
        ):
            if value is not None:
                params.append(value)
                where.append(f"{clause}${len(params)}")
        sql = f"SELECT {AUDIT_COLS} FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        params.append(max(0, limit))
        sql += f" ORDER BY id DESC LIMIT ${len(params)}"
        return [_rows.audit(r, _ident) for r in await self.pool.fetch(sql, *params)]

    # -- chats ----------------------------------------------------------------------
    @_translated
    async def create_chat(self, chat: Chat, wrapped_key: bytes) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"INSERT INTO chats ({CHAT_COLS}) VALUES"
                " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                chat.id,
                chat.tenant_id,
                chat.state,
                chat.created_at,
                chat.queue,
                chat.assigned_agent_id,
                chat.resume_token_hash,
                blob(chat.identity_sealed),
                chat.verified,
                blob(chat.profile_sealed),
                chat.last_seq,
                chat.closed_at,
                chat.close_reason,
                chat.csat,
                chat.accepted_at,
            )
            await conn.execute(
                "INSERT INTO chat_keys (chat_id, wrapped_key) VALUES ($1, $2)",
                chat.id,
                blob(wrapped_key),
            )

    async def get_chat(self, chat_id: str) -> Chat | None:
        row = await self.pool.fetchrow(f"SELECT {CHAT_COLS} FROM chats WHERE id = $1", chat_id)
        return None if row is None else _rows.chat(row)

    async def get_chat_key(self, chat_id: str) -> bytes | None:
        value = await self.pool.fetchval(
            "SELECT wrapped_key FROM chat_keys WHERE chat_id = $1", chat_id
        )
        return None if value is None else bytes(value)

    async def list_chat_keys(self, after_chat_id: str, limit: int) -> list[tuple[str, bytes]]:
        rows = await self.pool.fetch(
            "SELECT chat_id, wrapped_key FROM chat_keys WHERE chat_id > $1"
            " ORDER BY chat_id LIMIT $2",
            after_chat_id,
            max(0, int(limit)),
        )
        return [(r["chat_id"], bytes(r["wrapped_key"])) for r in rows]

    async def replace_chat_key(self, chat_id: str, wrapped: bytes) -> bool:
        status = await self.pool.execute(
            "UPDATE chat_keys SET wrapped_key = $2 WHERE chat_id = $1", chat_id, blob(wrapped)
        )
        return status == "UPDATE 1"

    @_translated
    async def update_chat(self, chat: Chat) -> None:
        status = await self.pool.execute(
            "UPDATE chats SET state = $2, queue = $3, assigned_agent_id = $4,"
            " resume_token_hash = $5, identity_sealed = $6, verified = $7, profile_sealed = $8,"
            " closed_at = $9, close_reason = $10, csat = $11, accepted_at = $12"
            " WHERE id = $1 AND NOT erased",
            chat.id,
            chat.state,
            chat.queue,
            chat.assigned_agent_id,
            chat.resume_token_hash,
            blob(chat.identity_sealed),
            chat.verified,
            blob(chat.profile_sealed),
            chat.closed_at,
            chat.close_reason,
            chat.csat,
            chat.accepted_at,
        )
        if status.endswith(" 0"):
            raise NotFound(f"chat {chat.id!r}")

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
        # One conditional UPDATE: concurrent callers queue on the row lock and the loser
        # re-checks the condition against the winner's committed row (READ COMMITTED).
        # agent_id NULL → back to the queue; otherwise active with that agent.
        sets = (
            "state = CASE WHEN $2::text IS NULL THEN 'queued' ELSE 'active' END,"
            " assigned_agent_id = $2, queue = COALESCE($3, queue),"
            " accepted_at = CASE WHEN $2::text IS NULL THEN accepted_at"
            " ELSE COALESCE(accepted_at, $4) END"
        )
        sql = (
            f"UPDATE chats SET {sets} WHERE id = $1 AND NOT erased"
            " AND state = ANY($5::text[])"
            " AND (NOT $6 OR assigned_agent_id IS NOT DISTINCT FROM $7)"
            f" RETURNING {CHAT_COLS}"
        )
        row = await self.pool.fetchrow(
            sql,
            chat_id,
            agent_id,
            queue,
            now,
            list(from_states),
            check_agent,
            expected_agent_id,
        )
        return None if row is None else _rows.chat(row)

    async def list_chats(
        self,
        tenant_id: str,
        *,
        states: tuple[ChatState, ...] = ("queued", "active"),
        agent_id: str | None = None,
        limit: int = 500,
    ) -> list[Chat]:
        sql = f"SELECT {CHAT_COLS} FROM chats WHERE tenant_id = $1 AND state = ANY($2::text[])"
        params: list[Any] = [tenant_id, list(states)]
        if agent_id is not None:
            params.append(agent_id)
            sql += f" AND assigned_agent_id = ${len(params)}"
        params.append(max(0, limit))
        sql += f" ORDER BY created_at, id LIMIT ${len(params)}"
        return [_rows.chat(r) for r in await self.pool.fetch(sql, *params)]

    async def close_chat(
        self, chat_id: str, *, closed_at: float, reason: str, csat: int | None = None
    ) -> Chat | None:
        # One conditional UPDATE: a concurrent close waits on the row lock, then re-checks
        # ``state`` against the winner's committed row and matches nothing.
        row = await self.pool.fetchrow(
            "UPDATE chats SET state = 'closed', closed_at = $2, close_reason = $3,"
            " csat = COALESCE($4, csat) WHERE id = $1 AND NOT erased AND state <> 'closed'"
            f" RETURNING {CHAT_COLS}",
            chat_id,
            closed_at,
            reason,
            csat,
        )
        return None if row is None else _rows.chat(row)

    async def erase_chat(self, chat_id: str) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            found = await conn.fetchval(
                "UPDATE chats SET state = 'closed', close_reason = 'erased', erased = true,"
                " identity_sealed = NULL, profile_sealed = NULL, resume_token_hash = ''"
                " WHERE id = $1 RETURNING 1",
                chat_id,
            )
            if found is None:
                return False
            await conn.execute("DELETE FROM messages WHERE chat_id = $1", chat_id)
            await conn.execute("DELETE FROM policy_flags WHERE chat_id = $1", chat_id)
            await conn.execute(
                "DELETE FROM outbox WHERE chat_id = $1 AND state IN ('pending', 'dead')", chat_id
            )
            await conn.execute("DELETE FROM chat_keys WHERE chat_id = $1", chat_id)
        return True

    async def chats_closed_before(self, cutoff: float, limit: int = 500) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT id FROM chats WHERE state = 'closed' AND NOT erased AND closed_at < $1"
            " ORDER BY closed_at, id LIMIT $2",
            cutoff,
            max(0, limit),
        )
        return [r["id"] for r in rows]

    # -- messages -------------------------------------------------------------------
    @_translated
    async def append_message(self, message: NewMessage, events: EventsArg = None) -> AppendResult:
        body = blob(message.body_sealed)
        async with self.pool.acquire() as conn:
            try:
                async with conn.transaction():
                    # Row lock on the chat: appends to one chat serialise here, on every node.
                    seq = await conn.fetchval(
                        "UPDATE chats SET last_seq = last_seq + 1"
                        " WHERE id = $1 AND NOT erased AND state <> 'closed' RETURNING last_seq",
                        message.chat_id,
                    )
                    if seq is None:
                        # Unknown, erased or closed (a close holds the same row lock).
                        state = await conn.fetchval(
                            "SELECT state FROM chats WHERE id = $1 AND NOT erased",
                            message.chat_id,
                        )
                        if state is None:
                            raise NotFound(f"chat {message.chat_id!r}")
                        raise _Duplicate  # closed: a re-send of a stored message, or refused
                    inserted = await conn.fetchval(
                        f"INSERT INTO messages ({MESSAGE_COLS})"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                        " ON CONFLICT (chat_id, msg_id) DO NOTHING RETURNING seq",
                        message.chat_id,
                        seq,
                        message.msg_id,
                        message.sender,
                        message.ts,
                        body,
                        message.sender_agent_id,
                        dict(message.policy),
                    )
                    if inserted is None:
                        raise _Duplicate  # rolls the last_seq increment back
                    stored = StoredMessage(
                        chat_id=message.chat_id,
                        seq=int(seq),
                        msg_id=message.msg_id,
                        sender=message.sender,
                        ts=message.ts,
                        body_sealed=body or b"",
                        sender_agent_id=message.sender_agent_id,
                        policy=dict(message.policy),
                    )
                    batch = events(stored) if callable(events) else (events or [])
                    if batch:
                        await conn.executemany(_SQL_INSERT_EVENT, [_event_params(e) for e in batch])
            except _Duplicate:
                row = await conn.fetchrow(
                    f"SELECT {MESSAGE_COLS} FROM messages WHERE chat_id = $1 AND msg_id = $2",
                    message.chat_id,
                    message.msg_id,
                )
                if row is None:
                    erased = await conn.fetchval(
                        "SELECT erased FROM chats WHERE id = $1", message.chat_id
                    )
                    if erased is None or erased:
                        raise NotFound(f"chat {message.chat_id!r}") from None
                    raise ChatClosed(f"chat {message.chat_id!r}") from None
                return AppendResult(_rows.message(row, _ident), duplicate=True)
        return AppendResult(stored, duplicate=False)

    async def messages_after(
        self, chat_id: str, after_seq: int, limit: int = 1000
    ) -> list[StoredMessage]:
        rows = await self.pool.fetch(
            f"SELECT {MESSAGE_COLS} FROM messages WHERE chat_id = $1 AND seq > $2"
            " ORDER BY seq LIMIT $3",
            chat_id,
            after_seq,
            max(0, limit),
        )
        return [_rows.message(r, _ident) for r in rows]

    @_translated
    async def add_flag(self, flag: PolicyFlag) -> int:
        return int(
            await self.pool.fetchval(
                "INSERT INTO policy_flags"
                " (chat_id, tenant_id, seq, kinds, original_sealed, created_at, reviewed_by)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                flag.chat_id,
                flag.tenant_id,
                flag.seq,
                list(flag.kinds),
                blob(flag.original_sealed),
                flag.created_at,
                flag.reviewed_by,
            )
        )

    async def list_flags(self, tenant_id: str, *, unreviewed_only: bool = True) -> list[PolicyFlag]:
        sql = f"SELECT {FLAG_COLS} FROM policy_flags WHERE tenant_id = $1"
        if unreviewed_only:
            sql += " AND reviewed_by IS NULL"
        rows = await self.pool.fetch(sql + " ORDER BY id", tenant_id)
        return [_rows.flag(r, _ident) for r in rows]

    async def get_flag(self, flag_id: int) -> PolicyFlag | None:
        row = await self.pool.fetchrow(
            f"SELECT {FLAG_COLS} FROM policy_flags WHERE id = $1", flag_id
        )
        return None if row is None else _rows.flag(row, _ident)

    async def mark_flag_reviewed(self, flag_id: int, reviewer: str) -> None:
        status = await self.pool.execute(
            "UPDATE policy_flags SET reviewed_by = $2 WHERE id = $1", flag_id, reviewer
        )
        if status.endswith(" 0"):
            raise NotFound(f"flag {flag_id}")

    # -- plugin outbox --------------------------------------------------------------
    @_translated
    async def enqueue_events(self, events: list[OutboxEvent]) -> None:
        if not events:
            return
        rows = [_event_params(e) for e in events]
        chat_ids = sorted({e.chat_id for e in events if e.chat_id is not None})
        async with self.pool.acquire() as conn, conn.transaction():
            if chat_ids:
                # Same lock as append_message: per-chat outbox ids follow commit order.
                await conn.execute(
                    "SELECT 1 FROM chats WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE",
                    chat_ids,
                )
            await conn.executemany(_SQL_INSERT_EVENT, rows)

    async def claim_due_events(self, now: float, limit: int = 100) -> list[OutboxItem]:
        rows = await self.pool.fetch(
            "WITH heads AS ("
            "  SELECT o.id FROM outbox o"
            "  WHERE o.state = 'pending' AND o.next_attempt_at <= $1"
            "  AND (o.leased_until IS NULL OR o.leased_until <= $1)"
            "  AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.state = 'pending'"
            "    AND p.plugin = o.plugin AND p.chat_id = o.chat_id AND p.id < o.id)"
            "  ORDER BY o.id LIMIT $3"
            "  FOR UPDATE OF o SKIP LOCKED)"
            " UPDATE outbox u SET leased_until = $2, lease_token = u.lease_token + 1"
            " FROM heads WHERE u.id = heads.id"
            f" RETURNING {', '.join('u.' + c.strip() for c in OUTBOX_COLS.split(','))}",
            now,
            now + self.lease_seconds,
            max(0, limit),
        )
        return sorted((_rows.outbox(r) for r in rows), key=lambda item: item.id)

    async def _settle(self, sql: str, params: tuple[Any, ...], lease: int | None) -> bool:
        if lease is not None:
            params = (*params, lease)
            sql += f" AND lease_token = ${len(params)}"
        status = await self.pool.execute(sql, *params)
        return status == "UPDATE 1"

    async def mark_delivered(self, item_id: int, now: float, *, lease: int | None = None) -> bool:
        return await self._settle(
            "UPDATE outbox SET state = 'delivered', delivered_at = $2, leased_until = NULL"
            " WHERE id = $1 AND state = 'pending'",
            (item_id, now),
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
            "UPDATE outbox SET attempts = $2, next_attempt_at = $3, last_error = $4,"
            " leased_until = NULL WHERE id = $1 AND state = 'pending'",
            (item_id, attempts, next_attempt_at, error),
            lease,
        )

    async def dead_letter(
        self, item_id: int, *, attempts: int, error: str, lease: int | None = None
    ) -> bool:
        return await self._settle(
            "UPDATE outbox SET state = 'dead', attempts = $2, last_error = $3,"
            " leased_until = NULL WHERE id = $1 AND state = 'pending'",
            (item_id, attempts, error),
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
            ("tenant_id = ", tenant_id),
            ("plugin = ", plugin),
            ("state = ", state),
        ):
            if value is not None:
                params.append(value)
                where.append(f"{clause}${len(params)}")
        sql = f"SELECT {OUTBOX_COLS} FROM outbox"
        if where:
            sql += " WHERE " + " AND ".join(where)
        params.append(max(0, limit))
        sql += f" ORDER BY id LIMIT ${len(params)}"
        return [_rows.outbox(r) for r in await self.pool.fetch(sql, *params)]

    async def replay_dead(self, item_id: int, now: float) -> bool:
        status = await self.pool.execute(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $2,"
            " leased_until = NULL WHERE id = $1 AND state = 'dead'",
            item_id,
            now,
        )
        return status == "UPDATE 1"

    # -- plugin configuration -------------------------------------------------------
    @_translated
    async def put_plugin_config(self, config: PluginConfig) -> None:
        await self.pool.execute(
            f"INSERT INTO plugin_configs ({PLUGIN_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (tenant_id, plugin) DO UPDATE SET enabled = excluded.enabled,"
            " config = excluded.config, secrets_sealed = excluded.secrets_sealed,"
            " updated_at = excluded.updated_at",
            config.tenant_id,
            config.plugin,
            config.enabled,
            dict(config.config),
            blob(config.secrets_sealed),
            config.updated_at,
        )

    async def get_plugin_config(self, tenant_id: str, plugin: str) -> PluginConfig | None:
        row = await self.pool.fetchrow(
            f"SELECT {PLUGIN_COLS} FROM plugin_configs WHERE tenant_id = $1 AND plugin = $2",
            tenant_id,
            plugin,
        )
        return None if row is None else _rows.plugin_config(row, _ident)

    async def list_plugin_configs(self, tenant_id: str | None = None) -> list[PluginConfig]:
        if tenant_id is None:
            rows = await self.pool.fetch(
                f"SELECT {PLUGIN_COLS} FROM plugin_configs ORDER BY tenant_id, plugin"
            )
        else:
            rows = await self.pool.fetch(
                f"SELECT {PLUGIN_COLS} FROM plugin_configs WHERE tenant_id = $1 ORDER BY plugin",
                tenant_id,
            )
        return [_rows.plugin_config(r, _ident) for r in rows]

    # -- per-plugin key-value store -----------------------------------------------------
    async def kv_get(self, tenant_id: str, plugin: str, key: str, now: float) -> bytes | None:
        value = await self.pool.fetchval(
            "SELECT value FROM plugin_kv WHERE tenant_id = $1 AND plugin = $2 AND key = $3"
            " AND (expires_at IS NULL OR expires_at > $4)",
            tenant_id,
            plugin,
            key,
            now,
        )
        return None if value is None else bytes(value)

    @_translated
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
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, plugin, key) DO UPDATE"
            " SET value = excluded.value, expires_at = excluded.expires_at,"
            " updated_at = excluded.updated_at"
        )
        if only_if_absent:
            sql += " WHERE plugin_kv.expires_at IS NOT NULL AND plugin_kv.expires_at <= $6"
        status = await self.pool.execute(sql, tenant_id, plugin, key, value, expires_at, now)
        return status == "INSERT 0 1"

    async def kv_delete(self, tenant_id: str, plugin: str, key: str) -> bool:
        status = await self.pool.execute(
            "DELETE FROM plugin_kv WHERE tenant_id = $1 AND plugin = $2 AND key = $3",
            tenant_id,
            plugin,
            key,
        )
        return status == "DELETE 1"

    # -- widget identity replay protection --------------------------------------------
    async def remember_nonce(
        self, tenant_id: str, nonce: str, expires_at: float, now: float
    ) -> bool:
        if now >= self._next_nonce_purge:
            self._next_nonce_purge = now + NONCE_PURGE_INTERVAL
            await self.pool.execute("DELETE FROM nonces WHERE expires_at <= $1", now)
        # Insert, or take over a row that exists but has expired; atomic under the
        # unique index, so two concurrent uses of one nonce cannot both succeed.
        inserted = await self.pool.fetchval(
            "INSERT INTO nonces (tenant_id, nonce, expires_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (tenant_id, nonce) DO UPDATE SET expires_at = excluded.expires_at"
            " WHERE nonces.expires_at <= $4 RETURNING 1",
            tenant_id,
            nonce,
            expires_at,
            now,
        )
        return inserted is not None

    # -- tenant keyword lists (policy) ----------------------------------------------------
    async def put_keyword_list(self, record: KeywordListRecord) -> None:
        upsert, _, _ = _keyword_lists.postgres_sql()
        await self.pool.execute(upsert, *_keyword_lists.params(record))

    async def list_keyword_lists(self, tenant_id: str) -> list[KeywordListRecord]:
        _, select, _ = _keyword_lists.postgres_sql()
        return [_keyword_lists.record(r) for r in await self.pool.fetch(select, tenant_id)]

    async def delete_keyword_list(self, tenant_id: str, name: str) -> bool:
        _, _, delete = _keyword_lists.postgres_sql()
        status = await self.pool.execute(delete, tenant_id, name)
        return status.endswith(" 1")

    # -- scoped API tokens (migration 0006) ---------------------------------------------
    async def create_api_token(self, token: ApiToken) -> None:
        await self.pool.execute(_api_tokens.sql("insert", "postgres"), *_api_tokens.params(token))

    async def get_api_token(self, token_hash: str) -> ApiToken | None:
        row = await self.pool.fetchrow(_api_tokens.sql("by_hash", "postgres"), token_hash)
        return None if row is None else _api_tokens.record(row)

    async def list_api_tokens(self, tenant_id: str) -> list[ApiToken]:
        rows = await self.pool.fetch(_api_tokens.sql("by_tenant", "postgres"), tenant_id)
        return [_api_tokens.record(r) for r in rows]

    async def revoke_api_token(self, tenant_id: str, token_id: str, now: float) -> bool:
        status = await self.pool.execute(
            _api_tokens.sql("revoke", "postgres"), now, tenant_id, token_id
        )
        return status == "UPDATE 1"

    async def purge_dead_rows(self, cutoffs: PurgeCutoffs) -> dict[str, int]:
        counts: dict[str, int] = {}
        async with self.pool.acquire() as conn, conn.transaction():
            for name, template in _housekeeping.STATEMENTS:
                status = await conn.execute(
                    _api_tokens.render(template, "postgres"), *_housekeeping.params(name, cutoffs)
                )
                counts[name] = int(status.split()[-1])
        return counts

    async def touch_api_token(self, token_id: str, now: float) -> None:
        await self.pool.execute(_api_tokens.sql("touch", "postgres"), now, token_id, now)

    async def record_login(self, agent_id: str, at: float) -> None:
        await self.pool.execute(_api_tokens.sql("login_upsert", "postgres"), agent_id, at)

    async def last_logins(self, tenant_id: str) -> dict[str, float]:
        rows = await self.pool.fetch(_api_tokens.sql("logins_of_tenant", "postgres"), tenant_id)
        return {r["agent_id"]: float(r["at"]) for r in rows}

    # -- agent invitations (migration 0007; SQL in _invites) ----------------------------
    async def create_invite(self, invite: Invite) -> None:
        await self.pool.execute(_invites.sql("insert", "postgres"), *_invites.params(invite))

    async def get_invite(self, token_hash: str) -> Invite | None:
        row = await self.pool.fetchrow(_invites.sql("by_hash", "postgres"), token_hash)
        return None if row is None else _invites.record(row)

    async def list_invites(self, tenant_id: str) -> list[Invite]:
        rows = await self.pool.fetch(_invites.sql("by_tenant", "postgres"), tenant_id)
        return [_invites.record(r) for r in rows]

    async def revoke_invite(self, tenant_id: str, invite_id: str, actor: str, now: float) -> bool:
        status = await self.pool.execute(
            _invites.sql("revoke", "postgres"), now, actor, tenant_id, invite_id
        )
        return status == "UPDATE 1"

    async def claim_invite(self, invite_id: str, agent_id: str, now: float) -> bool:
        status = await self.pool.execute(
            _invites.sql("claim", "postgres"), now, agent_id, invite_id, now
        )
        return status == "UPDATE 1"
