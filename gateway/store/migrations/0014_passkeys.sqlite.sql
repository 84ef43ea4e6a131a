-- cipherdesk: compatible-with-previous
-- (new tables and a new column with a default: the previous release never reads them)
-- Passkeys (issue 20.1). Keep in step with the other engine's twin.
-- A passkey's public key is public by nature: stored as is (COSE bytes). The credential
-- id is the authenticator's (base64url), unique across the installation.
CREATE TABLE passkeys (
    credential_id TEXT PRIMARY KEY,
    agent_id      TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    tenant_id     TEXT NOT NULL,
    name          TEXT NOT NULL,
    public_key    BLOB NOT NULL,
    sign_count    INTEGER NOT NULL DEFAULT 0,
    transports    TEXT NOT NULL DEFAULT '',
    created_at    REAL NOT NULL,
    last_used_at  REAL
);
CREATE INDEX passkeys_agent ON passkeys (agent_id);
-- One row per ceremony in flight: taken (deleted) by the answer, so a challenge is
-- signed at most once, on whichever node the answer reaches.
CREATE TABLE webauthn_challenges (
    id         TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL CHECK (purpose IN ('register', 'login')),
    agent_id   TEXT,
    challenge  BLOB NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges (expires_at);
-- How the session was opened (totp, recovery_code, passkey, invite): the tenant's
-- "phishing-resistant MFA required" rule admits only passkey sessions.
ALTER TABLE agent_sessions ADD COLUMN factor TEXT NOT NULL DEFAULT '';
