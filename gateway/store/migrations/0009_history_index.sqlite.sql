-- cipherdesk: compatible-with-previous
-- (new tables only: the previous release never reads them)
-- Chat history search (issue 16 item 5). Keep in step with the other engine's twin.
-- The table holds no plaintext: a token is stored only as a keyed
-- hash (HMAC under a per-tenant key derived from the master key, gateway/search_index.py).
-- Erasing a chat deletes its rows. A customer's previous chats are found
-- through customer_keys (0008).
CREATE TABLE chat_search_tokens (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    chat_id    TEXT NOT NULL REFERENCES chats (id),
    token_hash TEXT NOT NULL,
    PRIMARY KEY (chat_id, token_hash)
);
CREATE INDEX chat_search_tokens_lookup ON chat_search_tokens (tenant_id, token_hash);

