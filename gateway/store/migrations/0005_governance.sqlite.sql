-- Governance (issue 14): tamper-evident audit chains, signed checkpoints, alerts,
-- incidents and forced password resets.

-- Every new audit row is chained per tenant (`chain` = tenant id, '' for installation
-- events): `seq` is its position, `mac` = HMAC(chain key, previous mac || row), `key_id`
-- the audit root the chain key was derived from (crypto/auditchain.py). Rows written
-- before this migration keep NULLs and are reported as "legacy" by the verifier.
ALTER TABLE audit_log ADD COLUMN chain TEXT;
ALTER TABLE audit_log ADD COLUMN seq INTEGER;
ALTER TABLE audit_log ADD COLUMN key_id TEXT;
ALTER TABLE audit_log ADD COLUMN mac BLOB;
CREATE UNIQUE INDEX audit_log_chain_seq ON audit_log (chain, seq);
CREATE INDEX audit_log_chain_id ON audit_log (chain, id);

-- The head of each chain, updated in the same transaction as the append: the write
-- lock (SQLite) / row lock (PostgreSQL) on it serialises appends to one chain.
CREATE TABLE audit_chains (
    chain TEXT PRIMARY KEY,
    seq   INTEGER NOT NULL,
    mac   BLOB NOT NULL
);

-- Audit roots, wrapped by the master keyring; exactly one is current.
CREATE TABLE audit_keys (
    key_id     TEXT PRIMARY KEY,
    wrapped    BLOB NOT NULL,
    is_current INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE UNIQUE INDEX audit_keys_one_current ON audit_keys (is_current) WHERE is_current = 1;

-- Ed25519-signed checkpoints of (chain, seq, mac); retention purges only below one.
CREATE TABLE audit_checkpoints (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    chain     TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    mac       BLOB NOT NULL,
    ts        REAL NOT NULL,
    signer    TEXT NOT NULL,
    signature BLOB NOT NULL,
    reason    TEXT NOT NULL DEFAULT 'periodic',
    UNIQUE (chain, seq)
);

-- Deleting audit rows: only rows covered by a signed checkpoint (the retention purge).
DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_delete_only_checkpointed BEFORE DELETE ON audit_log
WHEN NOT EXISTS (SELECT 1 FROM audit_checkpoints c
                 WHERE c.chain = OLD.chain AND c.seq >= OLD.seq)
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL,
    rule        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    dedup_key   TEXT NOT NULL UNIQUE,
    severity    TEXT NOT NULL,
    ts          REAL NOT NULL,
    count       INTEGER NOT NULL,
    details     TEXT NOT NULL DEFAULT '{}',
    state       TEXT NOT NULL DEFAULT 'open'
                CHECK (state IN ('open', 'acknowledged', 'resolved')),
    acked_by    TEXT,
    acked_at    REAL,
    resolved_by TEXT,
    resolved_at REAL,
    incident_id INTEGER
);
CREATE INDEX alerts_tenant ON alerts (tenant_id, id);

CREATE TABLE incidents (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id TEXT NOT NULL,
    severity  TEXT NOT NULL,
    title     TEXT NOT NULL,
    state     TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    opened_by TEXT NOT NULL,
    opened_at REAL NOT NULL,
    closed_at REAL
);
CREATE INDEX incidents_tenant ON incidents (tenant_id, id);

CREATE TABLE incident_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    ts          REAL NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    details     TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, id);

-- Agents who must choose a new password before anything else (emergency panel).
CREATE TABLE password_resets_forced (
    agent_id  TEXT PRIMARY KEY REFERENCES agents (id),
    forced_at REAL NOT NULL,
    forced_by TEXT NOT NULL
);

-- Approvals for sensitive access (reason, optional second person, expiring grants).
CREATE TABLE access_grants (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   TEXT NOT NULL,
    requester   TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied')),
    approver    TEXT,
    created_at  REAL NOT NULL,
    decided_at  REAL,
    expires_at  REAL
);
CREATE INDEX access_grants_lookup ON access_grants (tenant_id, requester, action, target);
