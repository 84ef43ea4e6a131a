-- cipherdesk: compatible-with-previous
-- (new tables only: the previous release never reads them)
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

-- Customer keys (issue 15.3). See the SQLite twin for the comments.
CREATE TABLE customer_keys (
    tenant_id TEXT NOT NULL,
    key       TEXT NOT NULL,
    chat_id   TEXT NOT NULL REFERENCES chats (id),
    PRIMARY KEY (tenant_id, key, chat_id)
);
CREATE INDEX customer_keys_by_chat ON customer_keys (chat_id);
