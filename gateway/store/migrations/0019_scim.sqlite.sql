-- cipherdesk: compatible-with-previous
-- (new tables: the previous release never reads them)
-- SCIM 2.0 provisioning (issue 20.3). Keep in step with the other engine's twin.
-- The identity provider's view of an agent: its userName and externalId (the agent row
-- keeps the login e-mail, display name, role and the disabled flag, which SCIM drives).
CREATE TABLE scim_users (
    agent_id    TEXT PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL,
    user_name   TEXT NOT NULL,
    external_id TEXT,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
-- userName is case-insensitive in SCIM (RFC 7643 §4.1.1): unique without case.
CREATE UNIQUE INDEX scim_users_name ON scim_users (tenant_id, LOWER(user_name));
-- The identity provider's groups; their display names map to roles (tenant setting).
CREATE TABLE scim_groups (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    display_name TEXT NOT NULL,
    external_id  TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);
CREATE UNIQUE INDEX scim_groups_name ON scim_groups (tenant_id, display_name);
CREATE TABLE scim_members (
    group_id TEXT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, agent_id)
);
CREATE INDEX scim_members_agent ON scim_members (agent_id);
