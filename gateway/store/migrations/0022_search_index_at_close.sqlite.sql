-- cipherdesk: compatible-with-previous
-- (a column with a default and an index: the previous release neither reads nor writes
-- them, and keeps indexing per message, which the new indexer's inserts tolerate)
-- History search is indexed once per chat after it closes (gateway/search_indexer.py),
-- no longer per message in the relay's transaction. Keep in step with the other engine's
-- twin. Chats closed before this migration were indexed message by message already.
ALTER TABLE chats ADD COLUMN search_indexed INTEGER NOT NULL DEFAULT 0;
UPDATE chats SET search_indexed = 1 WHERE state = 'closed';
CREATE INDEX chats_search_pending ON chats (closed_at)
    WHERE state = 'closed' AND NOT search_indexed AND NOT erased;
