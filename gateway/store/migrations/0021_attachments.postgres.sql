-- cipherdesk: compatible-with-previous
-- (new table: the previous release never reads it)
-- Files sent in chats (issue 16.6). Keep in step with the other engine's twin.
-- The bytes are sealed under the chat's data key (bound to chat and file id), so erasing
-- the chat's key shreds them like its messages; erase_chat deletes the rows as well. The
-- file's name and type live in the sealed message that carries it, not here.
CREATE TABLE attachments (
    chat_id     TEXT NOT NULL,
    file_id     TEXT NOT NULL,
    blob_sealed BYTEA NOT NULL,
    size        INTEGER NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (chat_id, file_id)
);
