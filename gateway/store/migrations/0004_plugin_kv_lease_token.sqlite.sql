-- Outbox fencing: every claim increments lease_token; settling a row (delivered, backed
-- off, dead) names the token it was claimed with, so a dispatcher whose lease expired
-- and was taken over can no longer settle the row.
ALTER TABLE outbox ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;

-- Per-plugin key-value store (chat -> ticket mappings, OAuth tokens...). Values arrive
-- sealed by the gateway (master key, AAD bound to tenant/plugin/key).
CREATE TABLE plugin_kv (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    plugin     TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      BLOB NOT NULL,
    expires_at REAL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (tenant_id, plugin, key)
);
CREATE INDEX plugin_kv_expiry ON plugin_kv (expires_at) WHERE expires_at IS NOT NULL;
