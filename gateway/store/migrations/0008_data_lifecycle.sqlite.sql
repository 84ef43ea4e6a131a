-- cipherdesk: compatible-with-previous
-- (new tables only: the previous release never reads them)
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

-- Customer keys (issue 15.3): keyed hashes (HMAC under a secret derived from the master
-- key) of a chat's customer identifiers (verified sub, e-mail), so an erase request "every
-- chat of this customer" finds the chats without any plaintext identifier in the database.
-- Deleted with the chat's other data when it is erased.
CREATE TABLE customer_keys (
    tenant_id TEXT NOT NULL,
    key       TEXT NOT NULL,
    chat_id   TEXT NOT NULL REFERENCES chats (id),
    PRIMARY KEY (tenant_id, key, chat_id)
);
CREATE INDEX customer_keys_by_chat ON customer_keys (chat_id);
