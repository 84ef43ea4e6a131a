"""SQL for attachment blobs (migration 0021), shared by both store backends (written once
in SQLite's spelling, see :mod:`gateway.store.sql`). A blob is sealed under its chat's
data key before it gets here: the store never sees a file's bytes or its name."""

from __future__ import annotations

INSERT = (
    "INSERT INTO attachments (chat_id, file_id, blob_sealed, size, created_at)"
    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (chat_id, file_id) DO NOTHING"
)
BLOB = "SELECT blob_sealed FROM attachments WHERE chat_id = ? AND file_id = ?"
SIZE = "SELECT size FROM attachments WHERE chat_id = ? AND file_id = ?"
DELETE = "DELETE FROM attachments WHERE chat_id = ? AND file_id = ?"
ERASE = "DELETE FROM attachments WHERE chat_id = ?"
