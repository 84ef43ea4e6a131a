# ruff: noqa: S608
# (S608: SQL text here is built only from constant column lists and placeholders; every
# value is a bound parameter.)
"""The store's methods, written once for SQLite and PostgreSQL.

:class:`SqlStore` implements :class:`gateway.store.base.Store` on top of two primitives
that each backend provides: run one :class:`~gateway.store.sql.Query`, or run a
:data:`~gateway.store.sql.Program` as one transaction. Statements are written in SQLite's
spelling and rendered per engine by :mod:`gateway.store.sql`.

What stays in the backends is only what truly differs between the engines: connecting,
migrations, SQLite's group commit, the hot ``append_message`` path, and the audit chain
append that runs inside those transactions.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any, TypeVar

from gateway.store import (
    _api_tokens,
    _attachments,
    _custom_roles,
    _e2e,
    _history,
    _housekeeping,
    _invites,
    _keyword_lists,
    _lifecycle,
    _notices,
    _oidc,
    _outbox_admin,
    _outbox_claim,
    _passkeys,
    _quality,
    _rows,
    _scim,
)
from gateway.store._rows import (
    AGENT_COLS,
    AGENT_SELECT,
    AUDIT_COLS,
    CHAT_COLS,
    FLAG_COLS,
    LOCKOUT_COLS,
    MESSAGE_COLS,
    PLUGIN_COLS,
    SESSION_COLS,
    TENANT_COLS,
    blob,
)
from gateway.store.base import (
    Agent,
    AgentCsat,
    AgentSession,
    ApiToken,
    AuditEvent,
    AuditSeal,
    Chat,
    ChatState,
    CustomRole,
    E2EDevice,
    HistoryQuery,
    Invite,
    KeywordListRecord,
    LifecycleCutoffs,
    LockoutChange,
    LockoutRecord,
    NotFound,
    OidcSession,
    OpenChatCount,
    OpenQueue,
    OutboxEvent,
    OutboxItem,
    OutboxState,
    Passkey,
    PendingChallenge,
    PluginConfig,
    PolicyFlag,
    PrivacyNotice,
    PurgeCutoffs,
    QualityFacts,
    ScimGroup,
    ScimUser,
    StoredMessage,
    StoredReport,
    Tenant,
)
from gateway.store.governance import SqlGovernance, append_chained
from gateway.store.sql import (
    Dialect,
    Json,
    Program,
    Query,
    placeholders,
    read_row,
    read_rows,
    where_given,
    write,
    write_many,
    write_row,
    write_rows,
)

T = TypeVar("T")

NONCE_PURGE_INTERVAL = 60.0
KV_KEYS_PER_QUERY = 500
"""Keys one ``kv_live_keys`` query asks about (well under SQLite's bound on parameters)."""

EVENT_INSERT_COLS = (
    "tenant_id, plugin, event_type, idempotency_key, payload_sealed, chat_id, created_at,"
    " next_attempt_at"
)
"""The outbox columns an event is written with (:func:`event_params` gives their values)."""
ON_DUPLICATE_EVENT = " ON CONFLICT (plugin, idempotency_key) DO NOTHING"
LIST_QUEUE = (
    f"SELECT {CHAT_COLS}, waiting FROM ("
    f" SELECT {CHAT_COLS}, COUNT(*) OVER (PARTITION BY queue) AS waiting,"
    "  ROW_NUMBER() OVER (PARTITION BY queue ORDER BY COALESCE(queued_at, created_at), id)"
    "  AS place"
    " FROM chats WHERE tenant_id = ? AND state = 'queued'"
    ") AS waiting_chats WHERE place <= ?"
    f" UNION ALL SELECT {CHAT_COLS}, 0 AS waiting FROM chats"
    " WHERE tenant_id = ? AND state = 'active'"
    " ORDER BY created_at, id"
)
"""The queue consoles list (``Store.list_queue``): the longest-waiting queued chats of each
queue with their queue's total, and every active chat."""
COUNT_OPEN_CHATS = (
    "SELECT queue, state, assigned_agent_id, COUNT(*) AS n FROM chats"
    " WHERE tenant_id = ? AND state IN ('queued', 'active')"
    " GROUP BY queue, state, assigned_agent_id"
)
INSERT_EVENT = (
    f"INSERT INTO outbox ({EVENT_INSERT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)" + ON_DUPLICATE_EVENT
)
INSERT_MESSAGE = f"INSERT INTO messages ({MESSAGE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
SELECT_MESSAGE = f"SELECT {MESSAGE_COLS} FROM messages WHERE chat_id = ? AND msg_id = ?"
_PUT_LOCKOUT = (
    f"INSERT INTO lockouts ({LOCKOUT_COLS}) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET failures = excluded.failures,"
    " last_failure_at = excluded.last_failure_at, locked_until = excluded.locked_until,"
    " alerted_at = excluded.alerted_at"
)
_FOR_AUDIT = (
    ("tenant_id = ?", "tenant_id"),
    ("action = ?", "action"),
    ("actor = ?", "actor"),
    ("ts >= ?", "since"),
    ("ts < ?", "until"),
    ("id < ?", "before_id"),
)


def event_params(e: OutboxEvent) -> tuple[Any, ...]:
    """Arguments of :data:`INSERT_EVENT` (first attempt due at creation)."""
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


def message_params(m: StoredMessage) -> tuple[Any, ...]:
    """Arguments of :data:`INSERT_MESSAGE`."""
    return (
        m.chat_id,
        m.seq,
        m.msg_id,
        m.sender,
        m.ts,
        blob(m.body_sealed),
        m.sender_agent_id,
        Json(dict(m.policy)),
    )


def _lockout_args(record: LockoutRecord) -> tuple[Any, ...]:
    return (
        record.key,
        record.failures,
        record.last_failure_at,
        record.locked_until,
        record.alerted_at,
    )


class SqlStore(SqlGovernance):
    """:class:`gateway.store.base.Store` over a SQL engine (see the module docstring)."""

    dialect: Dialect
    lease_seconds: float
    _next_nonce_purge: float = float("-inf")

    # -- what a backend provides ------------------------------------------------------
    @abc.abstractmethod
    async def _query(self, query: Query) -> Any:
        """Run one statement on its own (reads on a reader where the engine has one)."""

    @abc.abstractmethod
    async def _transaction(self, program: Program[T]) -> T:
        """Run a program as one transaction; an exception inside rolls it back."""

    def _sql(self, template: str) -> str:
        return self.dialect.render(template)

    # -- tenants ----------------------------------------------------------------------
    async def create_tenant(self, tenant: Tenant) -> None:
        await self._query(
            write(
                f"INSERT INTO tenants ({TENANT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                tenant.id,
                tenant.name,
                Json(list(tenant.allowed_origins)),
                tenant.identity_mode,
                blob(tenant.identity_secrets_sealed),
                Json(dict(tenant.settings)),
                tenant.frozen,
                tenant.created_at,
            )
        )

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        row = await self._query(
            read_row(f"SELECT {TENANT_COLS} FROM tenants WHERE id = ?", tenant_id)
        )
        return None if row is None else _rows.tenant(row, self.dialect.load_json)

    async def list_tenants(self) -> list[Tenant]:
        rows = await self._query(
            read_rows(f"SELECT {TENANT_COLS} FROM tenants ORDER BY created_at, id")
        )
        return [_rows.tenant(r, self.dialect.load_json) for r in rows]

    async def update_tenant(self, tenant: Tenant) -> None:
        changed = await self._query(
            write(
                "UPDATE tenants SET name = ?, allowed_origins = ?, identity_mode = ?,"
                " identity_secrets_sealed = ?, settings = ?, frozen = ? WHERE id = ?",
                tenant.name,
                Json(list(tenant.allowed_origins)),
                tenant.identity_mode,
                blob(tenant.identity_secrets_sealed),
                Json(dict(tenant.settings)),
                tenant.frozen,
                tenant.id,
            )
        )
        if changed == 0:
            raise NotFound(f"tenant {tenant.id!r}")

    # -- agents -----------------------------------------------------------------------
    async def create_agent(self, agent: Agent) -> None:
        await self._query(
            write(
                f"INSERT INTO agents ({AGENT_COLS}) VALUES ({placeholders(13)})",
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
                ",".join(agent.queues),
            )
        )

    async def set_agent_queues(self, agent_id: str, queues: Sequence[str]) -> bool:
        changed = await self._query(
            write("UPDATE agents SET queues = ? WHERE id = ?", ",".join(queues), agent_id)
        )
        return bool(changed == 1)

    # -- single sign-on ---------------------------------------------------------------
    async def add_oidc_state(
        self, state_hash: str, tenant_id: str, nonce: str, verifier: str, expires_at: float
    ) -> None:
        def program() -> Program[None]:
            yield write(_oidc.PURGE_STATES, expires_at - 3600.0)
            yield write(_oidc.INSERT_STATE, state_hash, tenant_id, nonce, verifier, expires_at)

        await self._transaction(program())

    async def take_oidc_state(self, state_hash: str, now: float) -> tuple[str, str, str] | None:
        row = await self._query(write_row(_oidc.TAKE_STATE, state_hash, now))
        return None if row is None else (row["tenant_id"], row["nonce"], row["verifier"])

    async def save_oidc_session(self, session: OidcSession) -> None:
        await self._query(
            write(
                _oidc.SAVE_SESSION,
                session.token_hash,
                session.agent_id,
                session.tenant_id,
                blob(session.refresh_sealed),
                session.checked_at,
            )
        )

    async def oidc_sessions_due(self, checked_before: float, limit: int) -> list[OidcSession]:
        rows = await self._query(read_rows(_oidc.DUE, checked_before, max(0, int(limit))))
        return [_oidc.session(r) for r in rows]

    async def delete_oidc_session(self, token_hash: str) -> None:
        await self._query(write(_oidc.DELETE_SESSION, token_hash))

    # -- SCIM provisioning ------------------------------------------------------------
    async def scim_users(
        self, tenant_id: str, *, user_name: str | None = None, external_id: str | None = None
    ) -> list[ScimUser]:
        sql, args = _scim.USERS, [tenant_id]
        if user_name is not None:
            sql += " AND LOWER(user_name) = LOWER(?)"
            args.append(user_name)
        if external_id is not None:
            sql += " AND external_id = ?"
            args.append(external_id)
        rows = await self._query(read_rows(sql + " ORDER BY created_at, agent_id", *args))
        return [_scim.user(r) for r in rows]

    async def scim_user(self, tenant_id: str, agent_id: str) -> ScimUser | None:
        row = await self._query(read_row(_scim.USER, tenant_id, agent_id))
        return None if row is None else _scim.user(row)

    async def save_scim_user(self, user: ScimUser, *, new: bool) -> None:
        # The unique index (tenant, LOWER(userName)) answers a taken name with Conflict.
        statement = _scim.INSERT_USER if new else _scim.UPDATE_USER
        await self._query(write(statement, *_scim.user_params(user, new=new)))

    async def delete_scim_user(self, tenant_id: str, agent_id: str) -> bool:
        return bool(await self._query(write(_scim.DELETE_USER, tenant_id, agent_id)) == 1)

    async def scim_groups(self, tenant_id: str) -> list[ScimGroup]:
        rows = await self._query(read_rows(_scim.GROUPS + " ORDER BY display_name, id", tenant_id))
        members: dict[str, list[str]] = {}
        for r in await self._query(read_rows(_scim.MEMBERS, tenant_id)):
            members.setdefault(r["group_id"], []).append(r["agent_id"])
        return [_scim.group(r, tuple(members.get(r["id"], ()))) for r in rows]

    async def save_scim_group(self, group: ScimGroup, *, new: bool) -> None:
        # The unique index (tenant, displayName) answers a taken name with Conflict.
        statement = _scim.INSERT_GROUP if new else _scim.UPDATE_GROUP
        await self._query(write(statement, *_scim.group_params(group, new=new)))

    async def delete_scim_group(self, tenant_id: str, group_id: str) -> bool:
        return bool(await self._query(write(_scim.DELETE_GROUP, tenant_id, group_id)) == 1)

    async def change_scim_members(
        self,
        group_id: str,
        *,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
        replace: bool = False,
    ) -> None:
        def program() -> Program[None]:
            if replace:
                yield write(_scim.CLEAR_MEMBERS, group_id)
            if remove:
                yield write_many(_scim.REMOVE_MEMBER, [(group_id, a) for a in remove])
            if add:
                yield write_many(_scim.ADD_MEMBER, [(group_id, a) for a in dict.fromkeys(add)])

        await self._transaction(program())

    async def scim_group_names(self, tenant_id: str, agent_id: str) -> list[str]:
        rows = await self._query(read_rows(_scim.GROUP_NAMES_OF, tenant_id, agent_id))
        return [str(r["display_name"]) for r in rows]

    # -- custom roles ---------------------------------------------------------------
    async def list_custom_roles(self, tenant_id: str) -> list[CustomRole]:
        rows = await self._query(read_rows(_custom_roles.BY_TENANT, tenant_id))
        return [_custom_roles.custom_role(r) for r in rows]

    async def save_custom_role(self, role: CustomRole) -> None:
        await self._query(write(_custom_roles.UPSERT, *_custom_roles.params(role)))

    async def delete_custom_role(self, tenant_id: str, name: str) -> bool:
        changed = await self._query(write(_custom_roles.DELETE_UNHELD, tenant_id, name, name))
        return bool(changed == 1)

    async def set_agent_role(self, agent_id: str, role: str, custom_role: str | None) -> bool:
        changed = await self._query(write(_custom_roles.ASSIGN, role, custom_role, agent_id))
        return bool(changed == 1)

    async def get_agent(self, agent_id: str) -> Agent | None:
        row = await self._query(read_row(f"{AGENT_SELECT} WHERE a.id = ?", agent_id))
        return None if row is None else _rows.agent(row)

    async def get_agent_by_email(self, email: str) -> Agent | None:
        row = await self._query(read_row(f"{AGENT_SELECT} WHERE a.email = ?", email))
        return None if row is None else _rows.agent(row)

    async def list_agents(self, tenant_id: str | None = None) -> list[Agent]:
        where, args = where_given([("a.tenant_id = ?", tenant_id)])
        rows = await self._query(
            read_rows(f"{AGENT_SELECT}{where} ORDER BY a.created_at, a.id", *args)
        )
        return [_rows.agent(r) for r in rows]

    async def update_agent(self, agent: Agent) -> None:
        changed = await self._query(
            write(
                "UPDATE agents SET email = ?, display_name = ?, role = ?, password_hash = ?,"
                " totp_secret_sealed = ?, totp_confirmed = ?,"
                " totp_last_step = {greatest}(totp_last_step, ?), disabled = ?,"
                " password_changed_at = ? WHERE id = ?",
                agent.email,
                agent.display_name,
                agent.role,
                agent.password_hash,
                blob(agent.totp_secret_sealed),
                agent.totp_confirmed,
                agent.totp_last_step,
                agent.disabled,
                agent.password_changed_at,
                agent.id,
            )
        )
        if changed == 0:
            raise NotFound(f"agent {agent.id!r}")

    async def advance_totp_step(self, agent_id: str, step: int) -> bool:
        # One statement: concurrent callers queue on the row (PostgreSQL) or the single
        # writer (SQLite) and re-check the WHERE, so exactly one of them wins a step.
        changed = await self._query(
            write(
                "UPDATE agents SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?",
                step,
                agent_id,
                step,
            )
        )
        return bool(changed == 1)

    async def set_recovery_codes(self, agent_id: str, code_hashes: list[str]) -> None:
        codes = [(agent_id, h) for h in dict.fromkeys(code_hashes)]

        def program() -> Program[None]:
            found = yield read_row("SELECT 1 FROM agents WHERE id = ?{lock_shared_key}", agent_id)
            if found is None:
                raise NotFound(f"agent {agent_id!r}")
            yield write("DELETE FROM recovery_codes WHERE agent_id = ?", agent_id)
            if codes:
                yield write_many(
                    "INSERT INTO recovery_codes (agent_id, code_hash) VALUES (?, ?)", codes
                )

        await self._transaction(program())

    async def use_recovery_code(self, agent_id: str, code_hash: str, now: float) -> bool:
        changed = await self._query(
            write(
                "UPDATE recovery_codes SET used_at = ?"
                " WHERE agent_id = ? AND code_hash = ? AND used_at IS NULL",
                now,
                agent_id,
                code_hash,
            )
        )
        return bool(changed == 1)

    async def count_recovery_codes(self, agent_id: str) -> int:
        row = await self._query(
            read_row(
                "SELECT COUNT(*) AS n FROM recovery_codes WHERE agent_id = ? AND used_at IS NULL",
                agent_id,
            )
        )
        return 0 if row is None else int(row["n"])

    # -- agent sessions ---------------------------------------------------------------
    async def create_session(self, session: AgentSession) -> None:
        await self._query(
            write(
                f"INSERT INTO agent_sessions ({SESSION_COLS}) VALUES ({placeholders(10)})",
                session.token_hash,
                session.agent_id,
                session.tenant_id,
                session.created_at,
                session.last_seen_at,
                session.revoked_at,
                session.ip,
                session.user_agent,
                session.reauth_at,
                session.factor,
            )
        )

    async def get_session(self, token_hash: str) -> AgentSession | None:
        row = await self._query(
            read_row(f"SELECT {SESSION_COLS} FROM agent_sessions WHERE token_hash = ?", token_hash)
        )
        return None if row is None else _rows.session(row)

    async def touch_session(self, token_hash: str, now: float) -> None:
        await self._query(
            write(
                "UPDATE agent_sessions SET last_seen_at = {greatest}(last_seen_at, ?)"
                " WHERE token_hash = ? AND revoked_at IS NULL",
                now,
                token_hash,
            )
        )

    async def revoke_session(self, token_hash: str, now: float) -> bool:
        changed = await self._query(
            write(
                "UPDATE agent_sessions SET revoked_at = ?"
                " WHERE token_hash = ? AND revoked_at IS NULL",
                now,
                token_hash,
            )
        )
        return bool(changed == 1)

    async def revoke_agent_sessions(self, agent_id: str, now: float) -> list[str]:
        rows = await self._query(
            write_rows(
                "UPDATE agent_sessions SET revoked_at = ?"
                " WHERE agent_id = ? AND revoked_at IS NULL RETURNING token_hash, created_at",
                now,
                agent_id,
            )
        )
        return [r["token_hash"] for r in sorted(rows, key=lambda r: r["created_at"])]

    async def list_sessions(self, agent_id: str) -> list[AgentSession]:
        rows = await self._query(
            read_rows(
                f"SELECT {SESSION_COLS} FROM agent_sessions WHERE agent_id = ?"
                " ORDER BY created_at DESC, token_hash",
                agent_id,
            )
        )
        return [_rows.session(r) for r in rows]

    async def mark_session_reauth(self, token_hash: str, now: float) -> bool:
        changed = await self._query(
            write(
                "UPDATE agent_sessions SET reauth_at = {greatest}(reauth_at, ?)"
                " WHERE token_hash = ? AND revoked_at IS NULL",
                now,
                token_hash,
            )
        )
        return bool(changed == 1)

    # -- brute-force state ------------------------------------------------------------
    async def get_lockout(self, key: str) -> LockoutRecord | None:
        row = await self._query(read_row(f"SELECT {LOCKOUT_COLS} FROM lockouts WHERE key = ?", key))
        return None if row is None else _rows.lockout(row)

    async def put_lockout(self, record: LockoutRecord) -> None:
        await self._query(write(_PUT_LOCKOUT, *_lockout_args(record)))

    async def clear_lockout(self, key: str) -> None:
        await self._query(write("DELETE FROM lockouts WHERE key = ?", key))

    async def update_lockout(
        self, key: str, change: LockoutChange
    ) -> tuple[LockoutRecord | None, LockoutRecord | None]:
        def program() -> Program[tuple[LockoutRecord | None, LockoutRecord | None]]:
            # Make sure a row exists to lock (a concurrent first insert waits on the
            # unique index, then finds the row), then hold its lock until commit. On
            # SQLite the single writer already excludes every other write.
            yield write("INSERT INTO lockouts (key) VALUES (?) ON CONFLICT (key) DO NOTHING", key)
            row = yield read_row(f"SELECT {LOCKOUT_COLS} FROM lockouts WHERE key = ?{{lock}}", key)
            stored = _rows.lockout(row)
            before = None if stored == LockoutRecord(key) else stored
            after = change(before)
            if after is None:
                yield write("DELETE FROM lockouts WHERE key = ?", key)
            else:
                after.key = key
                yield write(_PUT_LOCKOUT, *_lockout_args(after))
            return before, after

        return await self._transaction(program())

    async def clear_lockouts(self, prefix: str) -> int:
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return int(
            await self._query(write("DELETE FROM lockouts WHERE key LIKE ? ESCAPE '\\'", pattern))
        )

    # -- audit ------------------------------------------------------------------------
    async def append_audit(self, event: AuditEvent, seal: AuditSeal | None = None) -> int:
        return await self._transaction(append_chained(event, seal))

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
        values = {
            "tenant_id": tenant_id,
            "action": action,
            "actor": actor,
            "since": since,
            "until": until,
            "before_id": before_id,
        }
        where, args = where_given([(clause, values[name]) for clause, name in _FOR_AUDIT])
        rows = await self._query(
            read_rows(
                f"SELECT {AUDIT_COLS} FROM audit_log{where} ORDER BY id DESC LIMIT ?",
                *args,
                max(0, limit),
            )
        )
        return [_rows.audit(r, self.dialect.load_json) for r in rows]

    # -- chats ------------------------------------------------------------------------
    async def create_chat(
        self, chat: Chat, wrapped_key: bytes, customer_keys: Sequence[str] = ()
    ) -> None:
        def program() -> Program[None]:
            yield write(
                f"INSERT INTO chats ({CHAT_COLS}) VALUES ({placeholders(26)})",
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
                blob(chat.consent_sealed),
                chat.first_response_at,
                chat.transfers,
                chat.rated_at,
                blob(chat.csat_comment_sealed),
                chat.sla_alerted,
                chat.mode,
                chat.e2e_epoch,
                chat.queued_at,
                chat.assigned_at,
                chat.answered_at,
            )
            yield write(
                "INSERT INTO chat_keys (chat_id, wrapped_key) VALUES (?, ?)",
                chat.id,
                blob(wrapped_key),
            )
            if customer_keys:
                yield write_many(
                    _lifecycle.INSERT_CUSTOMER_KEY,
                    [(chat.tenant_id, key, chat.id) for key in dict.fromkeys(customer_keys)],
                )

        await self._transaction(program())

    async def get_chat(self, chat_id: str) -> Chat | None:
        row = await self._query(read_row(f"SELECT {CHAT_COLS} FROM chats WHERE id = ?", chat_id))
        return None if row is None else _rows.chat(row)

    async def get_chat_key(self, chat_id: str) -> bytes | None:
        row = await self._query(
            read_row("SELECT wrapped_key FROM chat_keys WHERE chat_id = ?", chat_id)
        )
        return None if row is None else bytes(row["wrapped_key"])

    async def list_chat_keys(self, after_chat_id: str, limit: int) -> list[tuple[str, bytes]]:
        rows = await self._query(
            read_rows(
                "SELECT chat_id, wrapped_key FROM chat_keys WHERE chat_id > ?"
                " ORDER BY chat_id LIMIT ?",
                after_chat_id,
                max(0, int(limit)),
            )
        )
        return [(str(r["chat_id"]), bytes(r["wrapped_key"])) for r in rows]

    async def replace_chat_key(self, chat_id: str, wrapped: bytes) -> bool:
        changed = await self._query(
            write("UPDATE chat_keys SET wrapped_key = ? WHERE chat_id = ?", blob(wrapped), chat_id)
        )
        return bool(changed == 1)

    async def update_chat(self, chat: Chat) -> None:
        changed = await self._query(
            write(
                "UPDATE chats SET state = ?, queue = ?, assigned_agent_id = ?,"
                " resume_token_hash = ?, identity_sealed = ?, verified = ?, profile_sealed = ?,"
                " closed_at = ?, close_reason = ?, csat = ?, accepted_at = ?"
                " WHERE id = ? AND NOT erased",
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
                chat.id,
            )
        )
        if changed == 0:
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
        # One conditional UPDATE: concurrent callers queue on the row lock (or SQLite's
        # single writer) and the loser re-checks the condition against the winner's
        # committed row. agent_id None → back to the queue; otherwise active with that agent.
        if not from_states:
            return None
        if agent_id is None:
            # Back in a queue: the queue wait is timed anew and its SLA alert (bit 1 of
            # sla_alerted) armed again.
            sets = (
                "state = 'queued', assigned_agent_id = NULL, queue = COALESCE(?, queue),"
                " queued_at = ?, sla_alerted = sla_alerted & ~1"
            )
            args: list[Any] = [queue, now]
        else:
            # A new assignment: its first reply is timed anew from now, and the reply SLA
            # alert (bit 2 of sla_alerted) armed again.
            sets = (
                "state = 'active', assigned_agent_id = ?, queue = COALESCE(?, queue),"
                " accepted_at = COALESCE(accepted_at, ?), assigned_at = ?, answered_at = NULL,"
                " sla_alerted = sla_alerted & ~2"
            )
            args = [agent_id, queue, now, now]
        sql = (
            f"UPDATE chats SET {sets} WHERE id = ? AND NOT erased"
            f" AND state IN ({placeholders(len(from_states))})"
        )
        args += [chat_id, *from_states]
        if check_agent:
            sql += " AND assigned_agent_id {same_as} ?"
            args.append(expected_agent_id)
        row = await self._query(write_row(sql + f" RETURNING {CHAT_COLS}", *args))
        return None if row is None else _rows.chat(row)

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
            f" AND state IN ({placeholders(len(states))})"
        )
        args: list[Any] = [tenant_id, *states]
        if agent_id is not None:
            sql += " AND assigned_agent_id = ?"
            args.append(agent_id)
        rows = await self._query(
            read_rows(sql + " ORDER BY created_at, id LIMIT ?", *args, max(0, limit))
        )
        return [_rows.chat(r) for r in rows]

    async def list_queue(self, tenant_id: str, *, waiting_per_queue: int) -> OpenQueue:
        rows = await self._query(
            read_rows(LIST_QUEUE, tenant_id, max(0, waiting_per_queue), tenant_id)
        )
        waiting = {r["queue"]: int(r["waiting"]) for r in rows if r["state"] == "queued"}
        return OpenQueue([_rows.chat(r) for r in rows], waiting)

    async def count_open_chats(self, tenant_id: str) -> list[OpenChatCount]:
        rows = await self._query(read_rows(COUNT_OPEN_CHATS, tenant_id))
        return [
            OpenChatCount(r["queue"], r["state"], r["assigned_agent_id"], int(r["n"])) for r in rows
        ]

    async def close_chat(self, chat_id: str, *, closed_at: float, reason: str) -> Chat | None:
        # One conditional UPDATE: a concurrent close waits on the row lock, then re-checks
        # ``state`` against the winner's committed row and matches nothing.
        row = await self._query(
            write_row(
                "UPDATE chats SET state = 'closed', closed_at = ?, close_reason = ?"
                " WHERE id = ? AND NOT erased AND state <> 'closed'"
                f" RETURNING {CHAT_COLS}",
                closed_at,
                reason,
                chat_id,
            )
        )
        return None if row is None else _rows.chat(row)

    async def erase_chat(self, chat_id: str, *, shred: bool = True) -> bool:
        def program() -> Program[bool]:
            found = yield write(
                "UPDATE chats SET state = 'closed', close_reason = 'erased', erased = TRUE,"
                " identity_sealed = NULL, profile_sealed = NULL, consent_sealed = NULL,"
                " csat_comment_sealed = NULL, resume_token_hash = ''"
                " WHERE id = ?",
                chat_id,
            )
            if found == 0:
                return False
            yield write("DELETE FROM messages WHERE chat_id = ?", chat_id)
            yield write("DELETE FROM policy_flags WHERE chat_id = ?", chat_id)
            yield write(
                "DELETE FROM outbox WHERE chat_id = ? AND state IN ('pending', 'dead')", chat_id
            )
            for statement in _history.ERASE:  # the search index goes with the chat
                yield write(statement, chat_id)
            yield write("DELETE FROM chat_keys WHERE chat_id = ?", chat_id)
            for statement in _e2e.ERASE:  # wrapped chat keys and members go with the chat
                yield write(statement, chat_id)
            yield write(_attachments.ERASE, chat_id)
            yield write(_lifecycle.DELETE_CUSTOMER_KEYS, chat_id)
            return True

        return await self._transaction(program())

    async def shred_erased(self) -> None:
        return None  # PostgreSQL: nothing of ours outside the tables; SQLite overrides

    async def list_history(self, query: HistoryQuery) -> list[Chat]:
        sql, args = _history.list_query(query)
        return [_rows.chat(r) for r in await self._query(read_rows(sql, *args))]

    # -- end-to-end mode (issue 13) -------------------------------------------------------
    async def add_e2e_device(self, device: E2EDevice) -> None:
        await self._query(write(_e2e.INSERT_DEVICE, *_e2e.device_params(device)))

    # -- attachments ------------------------------------------------------------------
    async def put_attachment(
        self, chat_id: str, file_id: str, blob_sealed: bytes, size: int, created_at: float
    ) -> None:
        await self._query(
            write(_attachments.INSERT, chat_id, file_id, blob(blob_sealed), size, created_at)
        )

    async def get_attachment(self, chat_id: str, file_id: str) -> bytes | None:
        row = await self._query(read_row(_attachments.BLOB, chat_id, file_id))
        return None if row is None else bytes(row["blob_sealed"])

    async def attachment_size(self, chat_id: str, file_id: str) -> int | None:
        row = await self._query(read_row(_attachments.SIZE, chat_id, file_id))
        return None if row is None else int(row["size"])

    async def delete_attachment(self, chat_id: str, file_id: str) -> None:
        await self._query(write(_attachments.DELETE, chat_id, file_id))

    async def get_e2e_device(self, device_id: str) -> E2EDevice | None:
        row = await self._query(read_row(_e2e.DEVICE_BY_ID, device_id))
        return None if row is None else _e2e.device(row)

    async def list_e2e_devices(
        self, tenant_id: str, agent_id: str | None = None
    ) -> list[E2EDevice]:
        if agent_id is None:
            rows = await self._query(read_rows(_e2e.DEVICES_OF_TENANT, tenant_id))
        else:
            rows = await self._query(read_rows(_e2e.DEVICES_OF_AGENT, agent_id))
        return [d for d in map(_e2e.device, rows) if d.tenant_id == tenant_id]

    async def certify_e2e_device(
        self, device_id: str, tenant_id: str, certificate: str, signature: str, expires_at: float
    ) -> bool:
        changed = await self._query(
            write(_e2e.CERTIFY, certificate, signature, expires_at, device_id, tenant_id)
        )
        return bool(changed == 1)

    async def revoke_e2e_device(self, device_id: str, tenant_id: str, at: float) -> bool:
        return bool(await self._query(write(_e2e.REVOKE, at, device_id, tenant_id)) == 1)

    async def count_pending_e2e_devices(self, agent_id: str) -> int:
        row = await self._query(read_row(_e2e.COUNT_PENDING_OF_AGENT, agent_id))
        return 0 if row is None else int(row["n"])

    async def add_e2e_member(self, chat_id: str, agent_id: str, reason: str, at: float) -> bool:
        changed = await self._query(write(_e2e.ADD_MEMBER, chat_id, agent_id, reason, at))
        return bool(changed == 1)

    async def remove_e2e_member(self, chat_id: str, agent_id: str) -> bool:
        return bool(await self._query(write(_e2e.REMOVE_MEMBER, chat_id, agent_id)) == 1)

    async def list_e2e_members(self, chat_id: str) -> list[tuple[str, str]]:
        rows = await self._query(read_rows(_e2e.MEMBERS, chat_id))
        return [(r["agent_id"], r["reason"]) for r in rows]

    async def add_e2e_wraps(
        self,
        chat_id: str,
        epoch: int,
        wraps: Sequence[tuple[str, str]],
        at: float,
        older: Sequence[tuple[int, str, str]] = (),
        *,
        rekey: bool = False,
    ) -> bool:
        def program() -> Program[bool]:
            current = yield read_row(_e2e.CURRENT_EPOCH, chat_id)
            if current is None:
                return False
            if rekey:
                if epoch != int(current["e2e_epoch"]) + 1:
                    return False
                moved = yield write(_e2e.NEXT_EPOCH, epoch, chat_id, epoch - 1)
                if moved != 1:
                    return False
            elif epoch != int(current["e2e_epoch"]):
                return False
            rows = [(chat_id, d, epoch, w, at) for d, w in wraps]
            rows += [(chat_id, d, e, w, at) for e, d, w in older if 1 <= e < epoch]
            if rows:
                yield write_many(_e2e.ADD_WRAP, rows)
            return True

        return await self._transaction(program())

    async def e2e_wraps_for(self, chat_id: str, device_id: str) -> list[tuple[int, str]]:
        rows = await self._query(read_rows(_e2e.WRAPS_FOR_DEVICE, chat_id, device_id))
        return [(int(r["epoch"]), r["wrapped"]) for r in rows]

    async def e2e_wrapped_devices(self, chat_id: str, epoch: int) -> set[str]:
        rows = await self._query(read_rows(_e2e.WRAPPED_DEVICES, chat_id, epoch))
        return {r["device_id"] for r in rows}

    async def add_passkey(self, passkey: Passkey) -> bool:
        changed = await self._query(write(_passkeys.INSERT, *_passkeys.params(passkey)))
        return bool(changed == 1)

    async def list_passkeys(self, agent_id: str) -> list[Passkey]:
        rows = await self._query(read_rows(_passkeys.BY_AGENT, agent_id))
        return [_passkeys.passkey(r) for r in rows]

    async def get_passkey(self, credential_id: str) -> Passkey | None:
        row = await self._query(read_row(_passkeys.BY_ID, credential_id))
        return None if row is None else _passkeys.passkey(row)

    async def passkey_counts(self, tenant_id: str) -> dict[str, int]:
        rows = await self._query(read_rows(_passkeys.COUNTS, tenant_id))
        return {str(r["agent_id"]): int(r["n"]) for r in rows}

    async def delete_passkey(self, credential_id: str, agent_id: str) -> bool:
        return bool(await self._query(write(_passkeys.DELETE, credential_id, agent_id)) == 1)

    async def passkey_used(self, credential_id: str, sign_count: int, at: float) -> bool:
        changed = await self._query(
            write(_passkeys.USED, sign_count, at, credential_id, sign_count)
        )
        return bool(changed == 1)

    async def add_challenge(
        self,
        challenge_id: str,
        purpose: str,
        agent_id: str | None,
        challenge: bytes,
        expires_at: float,
    ) -> None:
        def program() -> Program[None]:
            yield write(_passkeys.PURGE_CHALLENGES, expires_at - 3600.0)
            yield write(
                _passkeys.INSERT_CHALLENGE, challenge_id, purpose, agent_id, challenge, expires_at
            )

        await self._transaction(program())

    async def take_challenge(
        self, challenge_id: str, purpose: str, now: float
    ) -> PendingChallenge | None:
        row = await self._query(write_row(_passkeys.TAKE_CHALLENGE, challenge_id, purpose, now))
        if row is None:
            return None
        return PendingChallenge(agent_id=row["agent_id"], challenge=bytes(row["challenge"]))

    async def mark_answered(self, chat_id: str, at: float) -> float | None:
        row = await self._query(write_row(_quality.MARK_ANSWERED, at, at, chat_id))
        return None if row is None else float(row["first_response_at"])

    async def count_transfer(self, chat_id: str) -> None:
        await self._query(write(_quality.COUNT_TRANSFER, chat_id))

    async def rate_chat(
        self, chat_id: str, csat: int, at: float, comment_sealed: bytes | None
    ) -> bool:
        changed = await self._query(write(_quality.RATE, csat, at, blob(comment_sealed), chat_id))
        return bool(changed == 1)

    async def mark_sla_alerted(self, chat_id: str, bit: int) -> bool:
        changed = await self._query(write(_quality.MARK_SLA, bit, chat_id, bit))
        return bool(changed == 1)

    async def quality_facts(
        self, tenant_id: str, since: float, until: float, limit: int
    ) -> list[QualityFacts]:
        rows = await self._query(
            read_rows(_quality.FACTS, tenant_id, since, until, max(0, int(limit)))
        )
        return [_quality.facts(r) for r in rows]

    async def reopened_chats(
        self, tenant_id: str, since: float, until: float, within: float
    ) -> set[str]:
        rows = await self._query(read_rows(_quality.REOPENED, tenant_id, since, until, within))
        return {str(r["chat_id"]) for r in rows}

    async def sla_due(
        self, tenant_id: str, queue_cutoff: float, reply_cutoff: float, limit: int
    ) -> list[QualityFacts]:
        rows = await self._query(
            read_rows(
                _quality.SLA_DUE,
                tenant_id,
                queue_cutoff,
                reply_cutoff,
                reply_cutoff,
                max(0, int(limit)),
            )
        )
        return [_quality.facts(r) for r in rows]

    async def csat_by_agent(self, query: HistoryQuery) -> list[AgentCsat]:
        sql, args = _history.csat_query(query)
        rows = await self._query(read_rows(sql, *args))
        return [
            AgentCsat(agent_id=r["agent_id"], rated=int(r["rated"]), average=float(r["average"]))
            for r in rows
        ]

    async def chats_to_index(self, limit: int = 50) -> list[Chat]:
        rows = await self._query(read_rows(_history.PENDING_INDEX, max(0, limit)))
        return [_rows.chat(r) for r in rows]

    async def index_closed_chat(self, chat_id: str, token_hashes: Sequence[str]) -> bool:
        def program() -> Program[bool]:
            row = yield write_row(_history.MARK_INDEXED, chat_id)
            if row is None:
                return False
            rows = [(row["tenant_id"], chat_id, h) for h in dict.fromkeys(token_hashes)]
            if rows:
                yield write_many(_history.INSERT_INDEX_ROW, rows)
            return True

        return await self._transaction(program())

    async def chats_closed_before(
        self, cutoff: float, limit: int = 500, tenant_id: str | None = None
    ) -> list[str]:
        sql = "SELECT id FROM chats WHERE state = 'closed' AND NOT erased AND closed_at < ?"
        args: list[Any] = [cutoff]
        if tenant_id is not None:
            sql += " AND tenant_id = ?"
            args.append(tenant_id)
        rows = await self._query(
            read_rows(sql + " ORDER BY closed_at, id LIMIT ?", *args, max(0, limit))
        )
        return [r["id"] for r in rows]

    async def chats_idle_before(self, tenant_id: str, cutoff: float, limit: int = 500) -> list[str]:
        rows = await self._query(read_rows(_lifecycle.IDLE_CHATS, tenant_id, cutoff, max(0, limit)))
        return [r["id"] for r in rows]

    async def purge_lifecycle(
        self, tenant_id: str, cutoffs: LifecycleCutoffs, batch: int
    ) -> dict[str, int]:
        def program() -> Program[dict[str, int]]:
            counts: dict[str, int] = {}
            for name, template in _lifecycle.PURGE:
                cutoff = _lifecycle.cutoff(name, cutoffs)
                counts[name] = (
                    0
                    if cutoff is None
                    else int((yield write(template, tenant_id, cutoff, max(1, batch))))
                )
            return counts

        return await self._transaction(program())

    # -- customers ----------------------------------------------------------------------
    async def chats_of_customer(self, tenant_id: str, keys: Sequence[str]) -> list[str]:
        if not keys:
            return []
        rows = await self._query(
            read_rows(_lifecycle.chats_of_customer(len(keys)), tenant_id, *keys)
        )
        return [str(r["chat_id"]) for r in rows]

    async def customer_keys_of(self, chat_id: str) -> list[str]:
        rows = await self._query(read_rows(_lifecycle.CUSTOMER_KEYS_OF_CHAT, chat_id))
        return [str(r["key"]) for r in rows]

    async def chat_by_resume_hash(self, tenant_id: str, token_hash: str) -> str | None:
        row = await self._query(read_row(_lifecycle.CHAT_BY_RESUME_HASH, tenant_id, token_hash))
        return None if row is None else str(row["id"])

    # -- destruction reports ----------------------------------------------------------
    async def add_report(self, report: StoredReport) -> None:
        await self._query(write(_lifecycle.INSERT_REPORT, *_lifecycle.report_params(report)))

    async def list_reports(
        self, tenant_id: str, *, before: float | None = None, limit: int = 50
    ) -> list[StoredReport]:
        bound = float("inf") if before is None else before
        rows = await self._query(
            read_rows(_lifecycle.REPORTS_OF_TENANT, tenant_id, bound, max(0, limit))
        )
        return [_lifecycle.report(r) for r in rows]

    async def get_report(self, report_id: str) -> StoredReport | None:
        row = await self._query(read_row(_lifecycle.REPORT_BY_ID, report_id))
        return None if row is None else _lifecycle.report(row)

    # -- messages ---------------------------------------------------------------------
    async def messages_after(
        self, chat_id: str, after_seq: int, limit: int = 1000
    ) -> list[StoredMessage]:
        rows = await self._query(
            read_rows(
                f"SELECT {MESSAGE_COLS} FROM messages WHERE chat_id = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                chat_id,
                after_seq,
                max(0, limit),
            )
        )
        return [_rows.message(r, self.dialect.load_json) for r in rows]

    async def add_flag(self, flag: PolicyFlag) -> int:
        row = await self._query(
            write_row(
                "INSERT INTO policy_flags"
                " (chat_id, tenant_id, seq, kinds, original_sealed, created_at, reviewed_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                flag.chat_id,
                flag.tenant_id,
                flag.seq,
                Json(list(flag.kinds)),
                blob(flag.original_sealed),
                flag.created_at,
                flag.reviewed_by,
            )
        )
        return int(row["id"])

    async def list_flags(
        self,
        tenant_id: str,
        *,
        unreviewed_only: bool = True,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[PolicyFlag]:
        sql = f"SELECT {FLAG_COLS} FROM policy_flags WHERE tenant_id = ?"
        args: list[Any] = [tenant_id]
        if unreviewed_only:
            sql += " AND reviewed_by IS NULL"
        if before_id is not None:
            sql += " AND id < ?"
            args.append(before_id)
        rows = await self._query(read_rows(sql + " ORDER BY id DESC LIMIT ?", *args, max(0, limit)))
        return [_rows.flag(r, self.dialect.load_json) for r in rows]

    async def get_flag(self, flag_id: int) -> PolicyFlag | None:
        row = await self._query(
            read_row(f"SELECT {FLAG_COLS} FROM policy_flags WHERE id = ?", flag_id)
        )
        return None if row is None else _rows.flag(row, self.dialect.load_json)

    async def mark_flag_reviewed(self, flag_id: int, reviewer: str) -> None:
        changed = await self._query(
            write("UPDATE policy_flags SET reviewed_by = ? WHERE id = ?", reviewer, flag_id)
        )
        if changed == 0:
            raise NotFound(f"flag {flag_id}")

    # -- plugin outbox ----------------------------------------------------------------
    async def enqueue_events(self, events: list[OutboxEvent]) -> None:
        if not events:
            return
        chat_ids = sorted({e.chat_id for e in events if e.chat_id is not None})

        def program() -> Program[None]:
            if chat_ids and self.dialect.name == "postgres":
                # Same row lock as append_message: per-chat outbox ids follow commit order
                # across nodes (SQLite's single writer gives that order already).
                yield read_rows(
                    f"SELECT 1 FROM chats WHERE id IN ({placeholders(len(chat_ids))})"
                    " ORDER BY id{lock_shared_key}",
                    *chat_ids,
                )
            yield write_many(INSERT_EVENT, [event_params(e) for e in events])

        await self._transaction(program())

    async def _settle(self, sql: str, args: tuple[Any, ...], lease: int | None) -> bool:
        if lease is not None:
            sql += " AND lease_token = ?"
            args = (*args, lease)
        return bool(await self._query(write(sql, *args)) == 1)

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
        rows = await self._query(_outbox_admin.listing(tenant_id, plugin, state, limit))
        return [_rows.outbox(r) for r in rows]

    async def get_event(self, item_id: int) -> OutboxItem | None:
        row = await self._query(_outbox_admin.one(item_id))
        return None if row is None else _rows.outbox(row)

    async def count_events(
        self,
        *,
        tenant_id: str,
        state: OutboxState,
        plugin: str | None = None,
        cap: int,
    ) -> dict[str, int]:
        rows = await self._query(_outbox_admin.counting(tenant_id, state, plugin, cap))
        return {str(r[0]): int(r[1]) for r in rows}

    async def claim_due_events(self, now: float, limit: int = 100) -> list[OutboxItem]:
        # Several PostgreSQL nodes claim side by side: look beyond the first ``limit`` heads.
        spare = limit * _outbox_claim.SPARE_PER_ROW if self.dialect.name == "postgres" else 0
        rows = await self._transaction(
            _outbox_claim.claim(now, limit, now + self.lease_seconds, spare)
        )
        return sorted((_rows.outbox(r) for r in rows), key=lambda item: item.id)

    async def replay_dead(self, item_id: int, now: float) -> bool:
        changed = await self._query(
            write(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?,"
                " leased_until = NULL WHERE id = ? AND state = 'dead'",
                now,
                item_id,
            )
        )
        return bool(changed == 1)

    # -- plugin configuration ---------------------------------------------------------
    async def put_plugin_config(self, config: PluginConfig) -> None:
        await self._query(
            write(
                f"INSERT INTO plugin_configs ({PLUGIN_COLS}) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant_id, plugin) DO UPDATE SET enabled = excluded.enabled,"
                " config = excluded.config, secrets_sealed = excluded.secrets_sealed,"
                " updated_at = excluded.updated_at",
                config.tenant_id,
                config.plugin,
                config.enabled,
                Json(dict(config.config)),
                blob(config.secrets_sealed),
                config.updated_at,
            )
        )

    async def get_plugin_config(self, tenant_id: str, plugin: str) -> PluginConfig | None:
        row = await self._query(
            read_row(
                f"SELECT {PLUGIN_COLS} FROM plugin_configs WHERE tenant_id = ? AND plugin = ?",
                tenant_id,
                plugin,
            )
        )
        return None if row is None else _rows.plugin_config(row, self.dialect.load_json)

    async def list_plugin_configs(self, tenant_id: str | None = None) -> list[PluginConfig]:
        where, args = where_given([("tenant_id = ?", tenant_id)])
        rows = await self._query(
            read_rows(
                f"SELECT {PLUGIN_COLS} FROM plugin_configs{where} ORDER BY tenant_id, plugin", *args
            )
        )
        return [_rows.plugin_config(r, self.dialect.load_json) for r in rows]

    # -- per-plugin key-value store ---------------------------------------------------
    async def kv_get(self, tenant_id: str, plugin: str, key: str, now: float) -> bytes | None:
        row = await self._query(
            read_row(
                "SELECT value FROM plugin_kv WHERE tenant_id = ? AND plugin = ? AND key = ?"
                " AND (expires_at IS NULL OR expires_at > ?)",
                tenant_id,
                plugin,
                key,
                now,
            )
        )
        return None if row is None else bytes(row["value"])

    async def kv_live_keys(
        self, tenant_id: str, plugin: str, keys: Sequence[str], now: float
    ) -> set[str]:
        live: set[str] = set()
        for at in range(0, len(keys), KV_KEYS_PER_QUERY):
            chunk = keys[at : at + KV_KEYS_PER_QUERY]
            rows = await self._query(
                read_rows(
                    "SELECT key FROM plugin_kv WHERE tenant_id = ? AND plugin = ?"
                    f" AND key IN ({placeholders(len(chunk))})"
                    " AND (expires_at IS NULL OR expires_at > ?)",
                    tenant_id,
                    plugin,
                    *chunk,
                    now,
                )
            )
            live.update(row["key"] for row in rows)
        return live

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
        args: tuple[Any, ...] = (tenant_id, plugin, key, blob(value), expires_at, now)
        if only_if_absent:
            # Only an expired entry may be taken over.
            sql += " WHERE plugin_kv.expires_at IS NOT NULL AND plugin_kv.expires_at <= ?"
            args = (*args, now)
        return bool(await self._query(write(sql, *args)) == 1)

    async def kv_delete(self, tenant_id: str, plugin: str, key: str) -> bool:
        changed = await self._query(
            write(
                "DELETE FROM plugin_kv WHERE tenant_id = ? AND plugin = ? AND key = ?",
                tenant_id,
                plugin,
                key,
            )
        )
        return bool(changed == 1)

    # -- widget identity replay protection --------------------------------------------
    async def remember_nonce(
        self, tenant_id: str, nonce: str, expires_at: float, now: float
    ) -> bool:
        purge = now >= self._next_nonce_purge
        if purge:
            self._next_nonce_purge = now + NONCE_PURGE_INTERVAL

        def program() -> Program[bool]:
            if purge:
                yield write("DELETE FROM nonces WHERE expires_at <= ?", now)
            # Insert, or take over a row that exists but has expired; atomic under the
            # unique index, so two concurrent uses of one nonce cannot both succeed.
            taken = yield write(
                "INSERT INTO nonces (tenant_id, nonce, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (tenant_id, nonce) DO UPDATE SET expires_at = excluded.expires_at"
                " WHERE nonces.expires_at <= ?",
                tenant_id,
                nonce,
                expires_at,
                now,
            )
            return bool(taken == 1)

        return await self._transaction(program())

    # -- tenant keyword lists (policy) ------------------------------------------------
    async def put_keyword_list(self, record: KeywordListRecord) -> None:
        await self._query(write(_keyword_lists.UPSERT, *_keyword_lists.params(record)))

    async def list_keyword_lists(self, tenant_id: str) -> list[KeywordListRecord]:
        rows = await self._query(read_rows(_keyword_lists.SELECT, tenant_id))
        return [_keyword_lists.record(r) for r in rows]

    async def delete_keyword_list(self, tenant_id: str, name: str) -> bool:
        return bool(await self._query(write(_keyword_lists.DELETE, tenant_id, name)) == 1)

    # -- scoped API tokens and last logins --------------------------------------------
    async def create_api_token(self, token: ApiToken) -> None:
        await self._query(write(_api_tokens.INSERT, *_api_tokens.params(token)))

    async def get_api_token(self, token_hash: str) -> ApiToken | None:
        row = await self._query(read_row(_api_tokens.BY_HASH, token_hash))
        return None if row is None else _api_tokens.record(row)

    async def list_api_tokens(self, tenant_id: str) -> list[ApiToken]:
        rows = await self._query(read_rows(_api_tokens.BY_TENANT, tenant_id))
        return [_api_tokens.record(r) for r in rows]

    async def revoke_api_token(self, tenant_id: str, token_id: str, now: float) -> bool:
        return bool(await self._query(write(_api_tokens.REVOKE, now, tenant_id, token_id)) == 1)

    async def touch_api_token(self, token_id: str, now: float) -> None:
        await self._query(write(_api_tokens.TOUCH, now, token_id, now))

    async def record_login(self, agent_id: str, at: float) -> None:
        await self._query(write(_api_tokens.LOGIN_UPSERT, agent_id, at))

    async def last_logins(self, tenant_id: str) -> dict[str, float]:
        rows = await self._query(read_rows(_api_tokens.LOGINS_OF_TENANT, tenant_id))
        return {r["agent_id"]: float(r["at"]) for r in rows}

    async def purge_dead_rows(self, cutoffs: PurgeCutoffs) -> dict[str, int]:
        def program() -> Program[dict[str, int]]:
            counts: dict[str, int] = {}
            for name, template in _housekeeping.STATEMENTS:
                counts[name] = int((yield write(template, *_housekeeping.params(name, cutoffs))))
            return counts

        return await self._transaction(program())

    # -- privacy notices and consent (migration 0010; SQL in _notices) -----------------
    async def add_privacy_notice(self, notice: PrivacyNotice) -> None:
        await self._query(write(_notices.INSERT, *_notices.params(notice)))

    async def privacy_notices(self, tenant_id: str, limit: int = 50) -> list[PrivacyNotice]:
        rows = await self._query(read_rows(_notices.BY_TENANT, tenant_id, max(1, int(limit))))
        return [_notices.record(r, self.dialect.load_json) for r in rows]

    async def set_chat_consent(self, chat_id: str, consent_sealed: bytes) -> bool:
        changed = await self._query(write(_notices.SET_CONSENT, blob(consent_sealed), chat_id))
        return bool(changed == 1)

    # -- agent invitations (migration 0007; SQL in _invites) --------------------------
    async def create_invite(self, invite: Invite) -> None:
        await self._query(write(_invites.INSERT, *_invites.params(invite)))

    async def get_invite(self, token_hash: str) -> Invite | None:
        row = await self._query(read_row(_invites.BY_HASH, token_hash))
        return None if row is None else _invites.record(row)

    async def list_invites(self, tenant_id: str) -> list[Invite]:
        rows = await self._query(read_rows(_invites.BY_TENANT, tenant_id))
        return [_invites.record(r) for r in rows]

    async def revoke_invite(self, tenant_id: str, invite_id: str, actor: str, now: float) -> bool:
        changed = await self._query(write(_invites.REVOKE, now, actor, tenant_id, invite_id))
        return bool(changed == 1)

    async def claim_invite(self, invite_id: str, agent_id: str, now: float) -> bool:
        # One conditional UPDATE: of two redemptions racing (on two nodes), one wins.
        changed = await self._query(write(_invites.CLAIM, now, agent_id, invite_id, now))
        return bool(changed == 1)
