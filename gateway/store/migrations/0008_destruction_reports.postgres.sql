-- cipherdesk: compatible-with-previous
-- (a new table only: the previous release never reads it)
-- Signed destruction reports (issue 15.2). See the SQLite twin for the comments.
CREATE TABLE destruction_reports (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('erase', 'retention')),
    created_at DOUBLE PRECISION NOT NULL,
    body       TEXT NOT NULL,
    signature  TEXT NOT NULL,
    signer     TEXT NOT NULL
);
CREATE INDEX destruction_reports_by_tenant ON destruction_reports (tenant_id, created_at);
