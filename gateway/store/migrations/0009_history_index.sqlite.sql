-- cipherdesk: compatible-with-previous
-- (new tables only: the previous release never reads them)
-- Chat history search (issue 16 item 5). Keep in step with the other engine's twin.
-- Neither table holds plaintext: a token or a customer identity is stored only as a keyed
-- hash (HMAC under a per-tenant key derived from the master key, gateway/search_index.py).
-- Erasing a chat deletes its rows.
CREATE TABLE chat_search_tokens (
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    chat_id    TEXT NOT NULL REFERENCES chats (id),
    token_hash TEXT NOT NULL,
    PRIMARY KEY (chat_id, token_hash)
);
CREATE INDEX chat_search_tokens_lookup ON chat_search_tokens (tenant_id, token_hash);

CREATE TABLE chat_customer_keys (
    chat_id      TEXT PRIMARY KEY REFERENCES chats (id),
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    customer_key TEXT NOT NULL
);
CREATE INDEX chat_customer_keys_lookup ON chat_customer_keys (tenant_id, customer_key);
