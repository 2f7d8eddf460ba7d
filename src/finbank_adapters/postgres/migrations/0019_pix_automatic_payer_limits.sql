-- Pix Automático: each payer account's own daily limit for Pix Automático debits
-- (PostgresRecurrenceStore.set_payer_limit / get_payer_limit). No row: no limit of
-- its own (the balance is the limit). What each day used is counted by the PIX
-- limits store (its counters and holds), not here.

CREATE TABLE pix_automatic_payer_limits (
    account_id   uuid        PRIMARY KEY,
    daily_cents  bigint      NOT NULL CHECK (daily_cents > 0)
);
