-- A revision per user record, so the self-hosted provider writes a user with a
-- compare-and-set (PostgresUserStore.replace: UPDATE ... WHERE version = the one
-- read) instead of replacing whatever is stored: a slow step (an authenticator
-- removed while a password change was being hashed) wrote a record read before
-- the other write and undid it, e.g. brought the old password back.
-- Existing rows start at 0; every update and replace adds one. Claiming a TOTP
-- step does not: that column merges (GREATEST) instead.

ALTER TABLE auth_users ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0;
