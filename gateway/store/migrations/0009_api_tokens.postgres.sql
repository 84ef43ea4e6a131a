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
    created_at   DOUBLE PRECISION NOT NULL,
    expires_at   DOUBLE PRECISION NOT NULL,
    revoked_at   DOUBLE PRECISION,
    last_used_at DOUBLE PRECISION
);
CREATE INDEX api_tokens_by_tenant ON api_tokens (tenant_id, created_at);
