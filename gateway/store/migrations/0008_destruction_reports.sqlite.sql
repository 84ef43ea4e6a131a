-- cipherdesk: compatible-with-previous
-- (a new table only: the previous release never reads it)
-- Signed destruction reports (issue 15.2). Keep in step with the other engine's twin.
-- One row per erase or retention run: `body` is the report's canonical JSON exactly as
-- signed (counts, hashed chat ids, destroyed key ids; never personal data), `signature`
-- the gateway's Ed25519 signature over "cipherdesk/v1/report|" + body, `signer` the
-- verify key that made it. tenant_id '' = installation-wide (the operator's audit chain).
CREATE TABLE destruction_reports (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('erase', 'retention')),
    created_at REAL NOT NULL,
    body       TEXT NOT NULL,
    signature  TEXT NOT NULL,
    signer     TEXT NOT NULL
);
CREATE INDEX destruction_reports_by_tenant ON destruction_reports (tenant_id, created_at);
