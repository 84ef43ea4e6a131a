-- cipherdesk schema v1 (SQLite). Keep in step with 0001_initial.postgres.sql.
-- JSON columns are TEXT holding JSON; booleans are INTEGER 0/1; sealed data is BLOB.

CREATE TABLE tenants (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL,
    allowed_origins         TEXT NOT NULL DEFAULT '[]',
    identity_mode           TEXT NOT NULL DEFAULT 'off',
    identity_secrets_sealed BLOB,
    settings                TEXT NOT NULL DEFAULT '{}',
    frozen                  INTEGER NOT NULL DEFAULT 0 CHECK (frozen IN (0, 1)),
    created_at              REAL NOT NULL
);

CREATE TABLE agents (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    email               TEXT NOT NULL UNIQUE,
    display_name        TEXT NOT NULL,
    role                TEXT NOT NULL,
    password_hash       TEXT NOT NULL,
    totp_secret_sealed  BLOB,
    totp_confirmed      INTEGER NOT NULL DEFAULT 0 CHECK (totp_confirmed IN (0, 1)),
    totp_last_step      INTEGER NOT NULL DEFAULT 0,
    disabled            INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at          REAL NOT NULL,
    password_changed_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX agents_tenant ON agents (tenant_id);

CREATE TABLE recovery_codes (
    agent_id  TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   REAL,
    PRIMARY KEY (agent_id, code_hash)
);

CREATE TABLE agent_sessions (
    token_hash   TEXT PRIMARY KEY,
    agent_id     TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    tenant_id    TEXT NOT NULL,
    created_at   REAL NOT NULL,
    last_seen_at REAL NOT NULL,
    revoked_at   REAL,
    ip           TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX agent_sessions_agent ON agent_sessions (agent_id, created_at);

CREATE TABLE lockouts (
    key             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL DEFAULT 0,
    last_failure_at REAL NOT NULL DEFAULT 0,
    locked_until    REAL NOT NULL DEFAULT 0
);

-- Append-only: the triggers below refuse UPDATE and DELETE (a non-empty trigger also
-- disables SQLite's truncate optimisation, so a bare DELETE is refused too).
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ts        REAL NOT NULL,
    action    TEXT NOT NULL,
    tenant_id TEXT,
    actor     TEXT,
    target    TEXT,
    ip        TEXT,
    details   TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_ts ON audit_log (ts);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- `erased` marks a crypto-shredded tombstone (its chat_keys row is gone).
CREATE TABLE chats (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    state             TEXT NOT NULL CHECK (state IN ('queued', 'active', 'closed')),
    created_at        REAL NOT NULL,
    queue             TEXT NOT NULL DEFAULT 'default',
    assigned_agent_id TEXT,
    resume_token_hash TEXT NOT NULL DEFAULT '',
    identity_sealed   BLOB,
    verified          INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
    profile_sealed    BLOB,
    last_seq          INTEGER NOT NULL DEFAULT 0,
    closed_at         REAL,
    close_reason      TEXT,
    csat              INTEGER,
    accepted_at       REAL,
    erased            INTEGER NOT NULL DEFAULT 0 CHECK (erased IN (0, 1))
);
CREATE INDEX chats_tenant_state ON chats (tenant_id, state, created_at);
CREATE INDEX chats_agent ON chats (assigned_agent_id, state);
CREATE INDEX chats_closed ON chats (closed_at) WHERE state = 'closed' AND erased = 0;

-- The wrapped data key of a chat. Deleting it shreds every sealed row of the chat; the
-- foreign keys below make "no key" mean "no messages, no flags" at the database level.
CREATE TABLE chat_keys (
    chat_id     TEXT PRIMARY KEY REFERENCES chats (id) ON DELETE CASCADE,
    wrapped_key BLOB NOT NULL
);

CREATE TABLE messages (
    chat_id         TEXT NOT NULL REFERENCES chat_keys (chat_id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    msg_id          TEXT NOT NULL,
    sender          TEXT NOT NULL CHECK (sender IN ('customer', 'agent', 'system')),
    ts              REAL NOT NULL,
    body_sealed     BLOB NOT NULL,
    sender_agent_id TEXT,
    policy          TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (chat_id, seq),
    UNIQUE (chat_id, msg_id)
);

CREATE TABLE policy_flags (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id         TEXT NOT NULL REFERENCES chat_keys (chat_id) ON DELETE CASCADE,
    tenant_id       TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    kinds           TEXT NOT NULL DEFAULT '[]',
    original_sealed BLOB NOT NULL,
    created_at      REAL NOT NULL,
    reviewed_by     TEXT
);
CREATE INDEX policy_flags_tenant ON policy_flags (tenant_id, id);
CREATE INDEX policy_flags_chat ON policy_flags (chat_id);

-- Durable plugin outbox. `leased_until` is set by claim_due_events: while the lease runs
-- no other claim returns the item (several gateway nodes share one outbox).
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    plugin          TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    payload_sealed  BLOB NOT NULL,
    chat_id         TEXT REFERENCES chats (id),
    created_at      REAL NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error      TEXT,
    delivered_at    REAL,
    leased_until    REAL,
    UNIQUE (plugin, idempotency_key)
);
CREATE INDEX outbox_pending_group ON outbox (plugin, chat_id, id) WHERE state = 'pending';
CREATE INDEX outbox_pending_due ON outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_chat ON outbox (chat_id);
CREATE INDEX outbox_tenant ON outbox (tenant_id, id);

CREATE TABLE plugin_configs (
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    plugin         TEXT NOT NULL,
    enabled        INTEGER NOT NULL DEFAULT 0 CHECK (enabled IN (0, 1)),
    config         TEXT NOT NULL DEFAULT '{}',
    secrets_sealed BLOB,
    updated_at     REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, plugin)
);

CREATE TABLE nonces (
    tenant_id  TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (tenant_id, nonce)
);
CREATE INDEX nonces_expiry ON nonces (expires_at);
