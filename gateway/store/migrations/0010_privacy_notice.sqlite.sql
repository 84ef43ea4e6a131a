-- cipherdesk: compatible-with-previous
-- (a new table and a new nullable column: the previous release never reads them)
-- Privacy notice and consent (issue 15.3). Keep in step with the other engine's twin.
-- Each change of a tenant's notice is a new version; versions are never edited or
-- deleted, so the version recorded with a chat keeps naming the text the customer saw.
CREATE TABLE privacy_notices (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    version    INTEGER NOT NULL,
    required   INTEGER NOT NULL,
    texts      TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (tenant_id, version)
);
-- The customer's consent ({"version", "at"}), sealed with the chat's key like the
-- profile; written only by its own statement (never by a whole-row update) and
-- cleared with the chat on erasure.
ALTER TABLE chats ADD COLUMN consent_sealed BLOB;
