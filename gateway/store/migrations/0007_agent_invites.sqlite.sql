-- cipherdesk: compatible-with-previous
-- (a new table only: the previous release never reads it)
-- Agent invitations (issue 16.9). Keep in step with the other engine's twin.
-- An admin invites an address with a role; the invitee chooses their own password and
-- enrols TOTP through a single-use, expiring link. Only a keyed hash (HMAC under a key
-- derived from the master key) of the link's token is stored, never the token.
CREATE TABLE agent_invites (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    email        TEXT NOT NULL,
    display_name TEXT NOT NULL,
    role         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_by   TEXT NOT NULL,
    created_at   REAL NOT NULL,
    expires_at   REAL NOT NULL,
    used_at      REAL,
    agent_id     TEXT,
    revoked_at   REAL,
    revoked_by   TEXT
);
CREATE INDEX agent_invites_by_tenant ON agent_invites (tenant_id, created_at);
