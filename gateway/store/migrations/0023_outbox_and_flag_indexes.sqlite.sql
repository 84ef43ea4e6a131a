-- cipherdesk: compatible-with-previous
-- (indexes only: the previous release neither needs nor minds them)
-- Keep in step with the other engine's twin.
-- Claiming outbox rows (gateway/store/_outbox_claim.py) finds the due rows that belong to
-- no chat -- each heads a line of its own -- through this index instead of reading every
-- pending row.
CREATE INDEX outbox_pending_unchained ON outbox (next_attempt_at, id)
    WHERE state = 'pending' AND chat_id IS NULL;
-- Retention deletes a tenant's old delivered rows, dead letters and flags in batches
-- (gateway/store/_lifecycle.py); each batch is found through its class's index instead of
-- reading all of the tenant's rows.
CREATE INDEX outbox_delivered ON outbox (tenant_id, delivered_at) WHERE state = 'delivered';
CREATE INDEX outbox_dead ON outbox (tenant_id, created_at) WHERE state = 'dead';
CREATE INDEX policy_flags_created ON policy_flags (tenant_id, created_at);
