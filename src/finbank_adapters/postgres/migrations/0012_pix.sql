-- PIX stores on PostgreSQL (pix_backend=postgres): payment records and their
-- indexes, the key directory with its per-account key counter, charges,
-- limit choices and usage, devices, and in-flight request claims.
-- Every record keeps its msgspec JSON in `body` (what the adapters decode);
-- the other columns are what the conditional writes and the listings need.
-- Times come from the adapters' injected clock, never from now().

-- Payment records (refunds inside `body`). `version` is the optimistic lock;
-- a final record (SETTLED, REJECTED) never goes back to PENDING.
CREATE TABLE pix_payments (
    end_to_end_id    text        PRIMARY KEY,
    version          integer     NOT NULL CHECK (version >= 1),
    status           text        NOT NULL,
    flow             text        NOT NULL,
    created_at       timestamptz NOT NULL,
    payer_owner_id   text,
    idempotency_key  text,
    body             text        NOT NULL,
    -- NULLs are distinct: records without a key or an owner never clash
    CONSTRAINT pix_payments_idempotency UNIQUE (payer_owner_id, idempotency_key)
);

-- One row per (account of ours, payment): listing by account, newest first.
-- `sent` / `received`: the account is the payer / the payee (both for a
-- payment from an account to itself).
CREATE TABLE pix_payment_accounts (
    account_id     uuid        NOT NULL,
    created_at     timestamptz NOT NULL,
    end_to_end_id  text        NOT NULL REFERENCES pix_payments (end_to_end_id),
    sent           boolean     NOT NULL,
    received       boolean     NOT NULL,
    PRIMARY KEY (account_id, created_at, end_to_end_id)
);

-- One row per (business day on which money of a settled record moved, record):
-- the daily reconciliation's listing, oldest settlement first.
CREATE TABLE pix_payment_days (
    day            date        NOT NULL,
    settled_at     timestamptz NOT NULL,
    end_to_end_id  text        NOT NULL REFERENCES pix_payments (end_to_end_id),
    PRIMARY KEY (day, end_to_end_id)
);
CREATE INDEX pix_payment_days_order ON pix_payment_days (day, settled_at, end_to_end_id);

-- The key directory (DICT). A key is bound once, anywhere (primary key);
-- `account_ref` is the account id, or EXT#<ispb>#<branch>#<number> for
-- another institution's account. pix_key_accounts.keys counts an account's
-- keys; registration raises it under its row lock, so the per-account limit
-- holds whoever registers at the same time.
CREATE TABLE pix_keys (
    key_type     text        NOT NULL,
    key_value    text        NOT NULL,
    id           uuid        NOT NULL UNIQUE,
    account_ref  text        NOT NULL,
    account_id   uuid,
    owner_id     text,
    created_at   timestamptz NOT NULL,
    body         text        NOT NULL,
    PRIMARY KEY (key_type, key_value)
);
CREATE INDEX pix_keys_by_account ON pix_keys (account_id, created_at, id)
    WHERE account_id IS NOT NULL;

CREATE TABLE pix_key_accounts (
    account_ref  text    PRIMARY KEY,
    keys         integer NOT NULL CHECK (keys >= 0)
);

-- Immediate charges: a txid, its first 25 characters (the static txid) and a
-- location are each taken once.
CREATE TABLE pix_charges (
    txid         text    PRIMARY KEY,
    static_txid  text    NOT NULL UNIQUE,
    location_id  text    NOT NULL UNIQUE,
    account_id   uuid    NOT NULL,
    version      integer NOT NULL CHECK (version >= 1),
    body         text    NOT NULL
);

-- Limit choices per account (last write wins), usage counters per limit
-- period and one hold per payment that says what it added to which counters.
CREATE TABLE pix_limits (
    account_id  uuid PRIMARY KEY,
    body        text NOT NULL
);

CREATE TABLE pix_limit_usage (
    account_id  uuid        NOT NULL,
    period      text        NOT NULL,
    used        bigint      NOT NULL,
    ends_at     timestamptz NOT NULL,
    PRIMARY KEY (account_id, period)
);

CREATE TABLE pix_limit_holds (
    account_id  uuid   NOT NULL,
    hold_id     text   NOT NULL,
    periods     text[] NOT NULL,
    body        text   NOT NULL,
    PRIMARY KEY (account_id, hold_id)
);

-- When each customer device was first used for PIX (the first write stays):
-- ISO 8601 with the offset it was given, as the other stores keep it.
CREATE TABLE pix_devices (
    owner_id    text NOT NULL,
    device_id   text NOT NULL,
    first_seen  text NOT NULL,
    PRIMARY KEY (owner_id, device_id)
);

-- In-flight claims of idempotent requests: the holder's token until
-- lease_until; a released claim is deleted.
CREATE TABLE pix_request_claims (
    claim_id     text        PRIMARY KEY,
    token        text        NOT NULL,
    lease_until  timestamptz NOT NULL
);
