-- One more at each password change only (UserRecord.password_version): a login or an
-- MFA challenge that checked an older password gets no session. A rehash of the same
-- password (new argon2 parameters) keeps it, so logins racing a rehash are not refused.
-- Existing rows start at 0.

ALTER TABLE auth_users ADD COLUMN IF NOT EXISTS password_version bigint NOT NULL DEFAULT 0;
