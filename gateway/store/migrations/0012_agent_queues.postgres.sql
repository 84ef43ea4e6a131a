-- cipherdesk: compatible-with-previous
-- (a new column with a default: the previous release never reads it)
-- Queue scoping (issue 14.3): the queues whose waiting chats an agent sees and may accept,
-- comma-separated queue names (each [A-Za-z0-9_-:.]+, so never a comma); '' = every
-- queue of the tenant. Written only by its own statement, never by a whole-row update.
ALTER TABLE agents ADD COLUMN queues TEXT NOT NULL DEFAULT '';
