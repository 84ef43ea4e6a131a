-- cipherdesk: compatible-with-previous
-- (new columns with defaults: the previous release never reads them, and its whole-row
-- update of a chat does not name them)
-- Service-quality facts of a chat (issue 15.4). Keep in step with the other engine's twin.
-- Each is written only by its own statement, never by a whole-row update:
--   first_response_at  the first agent (or helpdesk) reply; first-response time is
--                      first_response_at - accepted_at
--   transfers          how often the chat was handed to another agent or queue
--   rated_at           when the customer rated (at close or afterwards)
--   csat_comment_sealed the customer's rating comment after the policy, sealed with the
--                      chat key (shredded with the chat)
--   sla_alerted        SLA alerts already raised for this chat: bit 1 queue wait,
--                      bit 2 first response (raised once across every node)
ALTER TABLE chats ADD COLUMN first_response_at REAL;
ALTER TABLE chats ADD COLUMN transfers INTEGER NOT NULL DEFAULT 0;
ALTER TABLE chats ADD COLUMN rated_at REAL;
ALTER TABLE chats ADD COLUMN csat_comment_sealed BLOB;
ALTER TABLE chats ADD COLUMN sla_alerted INTEGER NOT NULL DEFAULT 0;
CREATE INDEX chats_tenant_created ON chats (tenant_id, created_at);
