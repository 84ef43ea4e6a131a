-- cipherdesk schema v2 (PostgreSQL): authentication hardening. Keep in step with the
-- SQLite twin.
--
-- Login throttling is redesigned (auth/lockout.py): keys are now keyed hashes (no tried
-- e-mail address in plaintext), failure counts decay (REAL) and ceiling keys remember
-- when they last raised an alert. The old rows held plaintext e-mail addresses and
-- counted under the old rules: they are dropped, not converted.
DROP TABLE lockouts;
CREATE TABLE lockouts (
    key             TEXT PRIMARY KEY,
    failures        DOUBLE PRECISION NOT NULL DEFAULT 0,
    last_failure_at DOUBLE PRECISION NOT NULL DEFAULT 0,
    locked_until    DOUBLE PRECISION NOT NULL DEFAULT 0,
    alerted_at      DOUBLE PRECISION NOT NULL DEFAULT 0
);

-- When the session last proved password + second factor (login or step-up
-- re-authentication): credential changes need it within the last few minutes.
ALTER TABLE agent_sessions ADD COLUMN reauth_at DOUBLE PRECISION NOT NULL DEFAULT 0;
