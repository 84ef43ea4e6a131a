-- cipherdesk: compatible-with-previous
-- (a new column with a default: the previous release never reads it)
-- Agent invitations (0007) also carry MFA re-enrolment links (issue 16.9): an admin's
-- "Reset MFA" no longer shows the agent's new secret to the admin; the agent gets a
-- one-time link, proves their password and enrols an authenticator only they hold.
-- 'join' (a new agent) or 'mfa_reset' (agent_id names the existing agent from creation).
ALTER TABLE agent_invites ADD COLUMN purpose TEXT NOT NULL DEFAULT 'join';
