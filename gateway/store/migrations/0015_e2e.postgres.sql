-- cipherdesk: compatible-with-previous
-- (new tables and new columns with defaults: the previous release never reads them)
-- End-to-end mode (issue 13). Keep in step with the other engine's twin.
-- A chat's mode is fixed when it opens: a tenant switching modes changes new chats only.
-- e2e_epoch is the chat key's current epoch (0 = no key wrapped yet); it moves forward
-- only, by one conditional UPDATE, so two ends re-keying at once cannot both win.
ALTER TABLE chats ADD COLUMN mode TEXT NOT NULL DEFAULT 'inspect';
ALTER TABLE chats ADD COLUMN e2e_epoch INTEGER NOT NULL DEFAULT 0;
-- Agents' device keys (X25519 public keys; the private halves never leave the browser)
-- and the tenant's certificates for them (signed JSON text, verified before storing).
CREATE TABLE e2e_devices (
    id          TEXT PRIMARY KEY,
    agent_id    TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    tenant_id   TEXT NOT NULL,
    public_key  TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    certificate TEXT,
    signature   TEXT,
    expires_at  DOUBLE PRECISION,
    revoked_at  DOUBLE PRECISION
);
CREATE INDEX e2e_devices_agent ON e2e_devices (agent_id);
CREATE INDEX e2e_devices_tenant ON e2e_devices (tenant_id);
-- Agents taking part in an e2e chat besides the assigned one (supervisors watching): the
-- customer's end wraps the chat key to their devices too and shows that they joined.
CREATE TABLE e2e_members (
    chat_id  TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    agent_id TEXT NOT NULL,
    reason   TEXT NOT NULL,
    added_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (chat_id, agent_id)
);
-- Chat keys wrapped by an end to one device (ciphertext only; erased with the chat).
CREATE TABLE e2e_wraps (
    chat_id    TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    device_id  TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    wrapped    TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (chat_id, device_id, epoch)
);
