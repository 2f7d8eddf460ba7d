-- Users of the self-hosted identity provider. username_key is the case-folded
-- username (Python's str.casefold, computed by the adapter), unique.

CREATE TABLE auth_users (
    subject             text        PRIMARY KEY,
    username            text        NOT NULL,
    username_key        text        NOT NULL,
    password_hash       text        NOT NULL,
    created_at          timestamptz NOT NULL,
    email               text,
    phone_number        text,
    name                text,
    confirmed           boolean     NOT NULL,
    totp_secret         text,
    pending_totp_secret text,
    mfa_enabled         boolean     NOT NULL,
    totp_last_step      bigint,
    roles               text[]      NOT NULL,
    CONSTRAINT auth_users_username_key_key UNIQUE (username_key)
);
