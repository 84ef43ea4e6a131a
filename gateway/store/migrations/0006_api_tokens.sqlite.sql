-- cipherdesk: compatible-with-previous
-- (a new table only: the previous release never reads it)
-- Scoped API tokens for automation (issue 20.4). Keep in step with the other engine's twin.
-- Only the SHA-256 of a token is stored; permissions are space-separated names.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    owner_id     TEXT NOT NULL REFERENCES agents (id),
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    permissions  TEXT NOT NULL,
    created_at   REAL NOT NULL,
    expires_at   REAL NOT NULL,
    revoked_at   REAL,
    last_used_at REAL
);
CREATE INDEX api_tokens_by_tenant ON api_tokens (tenant_id, created_at);

-- When each agent last logged in (issue 20.5): admins see it, and the tenant setting
-- "disable after N days dormant" is measured from it (from agents.created_at before the
-- first login). Its own table so sessions can be purged without losing it.
CREATE TABLE agent_last_login (
    agent_id TEXT PRIMARY KEY REFERENCES agents (id),
    at       REAL NOT NULL
);
