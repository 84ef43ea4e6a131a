-- Governance (issue 14): tamper-evident audit chains, signed checkpoints, alerts,
-- incidents and forced password resets. See the SQLite twin for the comments.
ALTER TABLE audit_log ADD COLUMN chain TEXT;
ALTER TABLE audit_log ADD COLUMN seq BIGINT;
ALTER TABLE audit_log ADD COLUMN key_id TEXT;
ALTER TABLE audit_log ADD COLUMN mac BYTEA;
CREATE UNIQUE INDEX audit_log_chain_seq ON audit_log (chain, seq);
CREATE INDEX audit_log_chain_id ON audit_log (chain, id);

CREATE TABLE audit_chains (
    chain TEXT PRIMARY KEY,
    seq   BIGINT NOT NULL,
    mac   BYTEA NOT NULL
);

CREATE TABLE audit_keys (
    key_id     TEXT PRIMARY KEY,
    wrapped    BYTEA NOT NULL,
    is_current BOOLEAN NOT NULL DEFAULT FALSE,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE UNIQUE INDEX audit_keys_one_current ON audit_keys (is_current) WHERE is_current;

CREATE TABLE audit_checkpoints (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain     TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    mac       BYTEA NOT NULL,
    ts        DOUBLE PRECISION NOT NULL,
    signer    TEXT NOT NULL,
    signature BYTEA NOT NULL,
    reason    TEXT NOT NULL DEFAULT 'periodic',
    UNIQUE (chain, seq)
);

-- Deleting audit rows: only rows covered by a signed checkpoint (the retention purge).
DROP TRIGGER audit_log_no_update_delete ON audit_log;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION cipherdesk_audit_append_only();
CREATE FUNCTION cipherdesk_audit_delete_checkpointed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM audit_checkpoints c
                   WHERE c.chain = OLD.chain AND c.seq >= OLD.seq) THEN
        RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER audit_log_delete_only_checkpointed BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION cipherdesk_audit_delete_checkpointed();

CREATE TABLE alerts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    rule        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    dedup_key   TEXT NOT NULL UNIQUE,
    severity    TEXT NOT NULL,
    ts          DOUBLE PRECISION NOT NULL,
    count       INTEGER NOT NULL,
    details     JSONB NOT NULL DEFAULT '{}',
    state       TEXT NOT NULL DEFAULT 'open'
                CHECK (state IN ('open', 'acknowledged', 'resolved')),
    acked_by    TEXT,
    acked_at    DOUBLE PRECISION,
    resolved_by TEXT,
    resolved_at DOUBLE PRECISION,
    incident_id BIGINT
);
CREATE INDEX alerts_tenant ON alerts (tenant_id, id);

CREATE TABLE incidents (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    severity  TEXT NOT NULL,
    title     TEXT NOT NULL,
    state     TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    opened_by TEXT NOT NULL,
    opened_at DOUBLE PRECISION NOT NULL,
    closed_at DOUBLE PRECISION
);
CREATE INDEX incidents_tenant ON incidents (tenant_id, id);

CREATE TABLE incident_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    ts          DOUBLE PRECISION NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    details     JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, id);

CREATE TABLE password_resets_forced (
    agent_id  TEXT PRIMARY KEY REFERENCES agents (id),
    forced_at DOUBLE PRECISION NOT NULL,
    forced_by TEXT NOT NULL
);

-- Approvals for sensitive access (reason, optional second person, expiring grants).
CREATE TABLE access_grants (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    requester   TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied')),
    approver    TEXT,
    created_at  DOUBLE PRECISION NOT NULL,
    decided_at  DOUBLE PRECISION,
    expires_at  DOUBLE PRECISION
);
CREATE INDEX access_grants_lookup ON access_grants (tenant_id, requester, action, target);
