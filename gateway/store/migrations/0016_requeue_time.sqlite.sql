-- cipherdesk: compatible-with-previous
-- (a new nullable column: the previous release never reads it)
-- When a chat last started waiting in a queue (issue 15.4): at open, and again when it is
-- transferred back to a queue. The SLA watch times the queue wait from here, so a chat sent
-- back to the queue is timed (and alerted) again; NULL (rows before 0016) = created_at.
ALTER TABLE chats ADD COLUMN queued_at REAL;
