-- Keyword lists tenants upload as data (never as server paths). Keep in step with
-- 0003_keyword_lists.sqlite.sql.
CREATE TABLE policy_keyword_lists (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    name       TEXT NOT NULL,
    body       TEXT NOT NULL,
    terms      INTEGER NOT NULL,
    digest     TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    updated_by TEXT,
    PRIMARY KEY (tenant_id, name)
);
