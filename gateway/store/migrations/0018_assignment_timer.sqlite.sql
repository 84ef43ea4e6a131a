-- cipherdesk: compatible-with-previous
-- (new nullable columns: the previous release never reads them)
-- The first-response SLA per assignment (issue 15.4): when the chat's current assignment
-- began (accept, transfer to an agent, takeover) and the first agent reply since then.
-- A chat handed to another agent, or sent back to a queue and taken again, is timed (and
-- alerted) anew from that moment. Both moved only by `assign_chat` and `mark_answered`;
-- NULL in rows before 0018 (and in rows a previous release assigned): the SLA watch then
-- times from accepted_at as before.
ALTER TABLE chats ADD COLUMN assigned_at REAL;
ALTER TABLE chats ADD COLUMN answered_at REAL;
