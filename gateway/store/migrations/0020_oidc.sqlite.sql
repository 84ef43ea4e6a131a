-- cipherdesk: compatible-with-previous
-- (new tables: the previous release never reads them)
-- OpenID Connect single sign-on (issue 20.2). Keep in step with the other engine's twin.
-- A login in flight: the SHA-256 of its state, the nonce the ID token must carry and the
-- PKCE verifier; taken (deleted) by the callback, so a state is used once, on any node.
CREATE TABLE oidc_states (
    state_hash TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    verifier   TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX oidc_states_expiry ON oidc_states (expires_at);
-- A session opened by single sign-on and the identity provider's refresh token (sealed
-- under the master keyring): refreshed on a schedule, so an account disabled at the IdP
-- loses its session here.
CREATE TABLE oidc_sessions (
    token_hash     TEXT PRIMARY KEY REFERENCES agent_sessions (token_hash) ON DELETE CASCADE,
    agent_id       TEXT NOT NULL,
    tenant_id      TEXT NOT NULL,
    refresh_sealed BLOB NOT NULL,
    checked_at     REAL NOT NULL
);
CREATE INDEX oidc_sessions_due ON oidc_sessions (checked_at);
