-- cipherdesk schema v1 (PostgreSQL). Keep in step with 0001_initial.sqlite.sql.
-- JSON columns are JSONB; sealed data is BYTEA; timestamps are UNIX seconds (float8).

CREATE TABLE tenants (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL,
    allowed_origins         JSONB NOT NULL DEFAULT '[]',
    identity_mode           TEXT NOT NULL DEFAULT 'off',
    identity_secrets_sealed BYTEA,
    settings                JSONB NOT NULL DEFAULT '{}',
    frozen                  BOOLEAN NOT NULL DEFAULT false,
    created_at              DOUBLE PRECISION NOT NULL
);

CREATE TABLE agents (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    email               TEXT NOT NULL UNIQUE,
    display_name        TEXT NOT NULL,
    role                TEXT NOT NULL,
    password_hash       TEXT NOT NULL,
    totp_secret_sealed  BYTEA,
    totp_confirmed      BOOLEAN NOT NULL DEFAULT false,
    totp_last_step      BIGINT NOT NULL DEFAULT 0,
    disabled            BOOLEAN NOT NULL DEFAULT false,
    created_at          DOUBLE PRECISION NOT NULL,
    password_changed_at DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE INDEX agents_tenant ON agents (tenant_id);

CREATE TABLE recovery_codes (
    agent_id  TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at   DOUBLE PRECISION,
    PRIMARY KEY (agent_id, code_hash)
);

CREATE TABLE agent_sessions (
    token_hash   TEXT PRIMARY KEY,
    agent_id     TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    tenant_id    TEXT NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    last_seen_at DOUBLE PRECISION NOT NULL,
    revoked_at   DOUBLE PRECISION,
    ip           TEXT NOT NULL DEFAULT '',
    user_agent   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX agent_sessions_agent ON agent_sessions (agent_id, created_at);

CREATE TABLE lockouts (
    key             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL DEFAULT 0,
    last_failure_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    locked_until    DOUBLE PRECISION NOT NULL DEFAULT 0
);

-- Append-only: triggers refuse UPDATE, DELETE and TRUNCATE.
CREATE TABLE audit_log (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ts        DOUBLE PRECISION NOT NULL,
    action    TEXT NOT NULL,
    tenant_id TEXT,
    actor     TEXT,
    target    TEXT,
    ip        TEXT,
    details   JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id);
CREATE INDEX audit_log_action ON audit_log (action, id);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_ts ON audit_log (ts);

CREATE FUNCTION cipherdesk_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION cipherdesk_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION cipherdesk_audit_append_only();

-- `erased` marks a crypto-shredded tombstone (its chat_keys row is gone). It lives on
-- the chat row so that writers holding the row lock re-check it (READ COMMITTED).
CREATE TABLE chats (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    state             TEXT NOT NULL CHECK (state IN ('queued', 'active', 'closed')),
    created_at        DOUBLE PRECISION NOT NULL,
    queue             TEXT NOT NULL DEFAULT 'default',
    assigned_agent_id TEXT,
    resume_token_hash TEXT NOT NULL DEFAULT '',
    identity_sealed   BYTEA,
    verified          BOOLEAN NOT NULL DEFAULT false,
    profile_sealed    BYTEA,
    last_seq          BIGINT NOT NULL DEFAULT 0,
    closed_at         DOUBLE PRECISION,
    close_reason      TEXT,
    csat              INTEGER,
    accepted_at       DOUBLE PRECISION,
    erased            BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX chats_tenant_state ON chats (tenant_id, state, created_at);
CREATE INDEX chats_agent ON chats (assigned_agent_id, state);
CREATE INDEX chats_closed ON chats (closed_at) WHERE state = 'closed' AND NOT erased;

CREATE TABLE chat_keys (
    chat_id     TEXT PRIMARY KEY REFERENCES chats (id) ON DELETE CASCADE,
    wrapped_key BYTEA NOT NULL
);

CREATE TABLE messages (
    chat_id         TEXT NOT NULL REFERENCES chat_keys (chat_id) ON DELETE CASCADE,
    seq             BIGINT NOT NULL,
    msg_id          TEXT NOT NULL,
    sender          TEXT NOT NULL CHECK (sender IN ('customer', 'agent', 'system')),
    ts              DOUBLE PRECISION NOT NULL,
    body_sealed     BYTEA NOT NULL,
    sender_agent_id TEXT,
    policy          JSONB NOT NULL DEFAULT '{}',
    PRIMARY KEY (chat_id, seq),
    UNIQUE (chat_id, msg_id)
);

CREATE TABLE policy_flags (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id         TEXT NOT NULL REFERENCES chat_keys (chat_id) ON DELETE CASCADE,
    tenant_id       TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    kinds           JSONB NOT NULL DEFAULT '[]',
    original_sealed BYTEA NOT NULL,
    created_at      DOUBLE PRECISION NOT NULL,
    reviewed_by     TEXT
);
CREATE INDEX policy_flags_tenant ON policy_flags (tenant_id, id);
CREATE INDEX policy_flags_chat ON policy_flags (chat_id);

CREATE TABLE outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    plugin          TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    payload_sealed  BYTEA NOT NULL,
    chat_id         TEXT REFERENCES chats (id),
    created_at      DOUBLE PRECISION NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    last_error      TEXT,
    delivered_at    DOUBLE PRECISION,
    leased_until    DOUBLE PRECISION,
    UNIQUE (plugin, idempotency_key)
);
CREATE INDEX outbox_pending_group ON outbox (plugin, chat_id, id) WHERE state = 'pending';
CREATE INDEX outbox_pending_due ON outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_chat ON outbox (chat_id);
CREATE INDEX outbox_tenant ON outbox (tenant_id, id);

CREATE TABLE plugin_configs (
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    plugin         TEXT NOT NULL,
    enabled        BOOLEAN NOT NULL DEFAULT false,
    config         JSONB NOT NULL DEFAULT '{}',
    secrets_sealed BYTEA,
    updated_at     DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, plugin)
);

CREATE TABLE nonces (
    tenant_id  TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant_id, nonce)
);
CREATE INDEX nonces_expiry ON nonces (expires_at);
