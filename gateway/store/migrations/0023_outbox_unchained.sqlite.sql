-- cipherdesk: compatible-with-previous
-- (an index only: the previous release neither needs nor minds it)
-- Claiming outbox rows (gateway/store/_outbox_claim.py) finds the due rows that belong to
-- no chat -- each heads a line of its own -- through this index instead of reading every
-- pending row. Keep in step with the other engine's twin.
CREATE INDEX outbox_pending_unchained ON outbox (next_attempt_at, id)
    WHERE state = 'pending' AND chat_id IS NULL;
