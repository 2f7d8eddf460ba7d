-- PIX usage counters kept under a scope: a new device's day is counted per owner and
-- device, across all the owner's accounts, not per account (it was per account, so an
-- owner with three accounts sent three times the cap from one new device).
--
-- A counter is a pix_limit_usage row keyed by (the id it is kept under, period): the
-- account of the hold (the windows) or the counter's scope (UsageCounter.scope, the
-- owner's uuid5; never an account's id). The account_id column keeps its name and
-- holds either. A hold stays the account's row in pix_limit_holds; its periods are
-- those of its counters kept under the account (as before, so holds recorded before
-- this migration, all of whose counters are the account's, read and release as they
-- did), and the new scoped column lists its other counters as '<id>/<period>' (the id
-- is 36 characters: the first '/' after it ends it), for PixLimiter's reclaim to find
-- the holds of every account on a shared counter (usage_holds, through the index).
ALTER TABLE pix_limit_holds ADD COLUMN scoped text[] NOT NULL DEFAULT '{}';

-- Only holds with a scoped counter (a payment from a new device) are in it.
CREATE INDEX pix_limit_holds_scoped ON pix_limit_holds USING gin (scoped)
    WHERE scoped <> '{}';

-- A reservation in one round trip, as pix_reserve_usage (0021) is, with each counter
-- named by (id, period). The hold row first (a hold id recorded before answers
-- 'ALREADY_HELD' and adds nothing); then each distinct counter, in one global order,
-- (id, period), whatever accounts and scopes they are kept under (the release in
-- pix_records.py locks in the same order), raised by an upsert that creates it if
-- missing and locks it; so reservations that share a scoped counter from several
-- accounts queue instead of deadlocking. Then every counter of the hold, in the hold's
-- order, is checked against its cap on what its row now holds; over a cap everything
-- this call wrote is undone and 'EXCEEDED:<limit>' returned.
-- The client prepares the arrays (pix_records.py), so the function runs one statement
-- per counter (0021's three set statements over arrays cost twice the CPU):
--   p_periods / p_scoped: the hold row's periods (its account's counters) and scoped
--     entries ('<id>/<period>': the others'), distinct and sorted;
--   p_ids / p_keys / p_ends: the distinct counters, sorted by (id, period);
--   p_check_keys / p_caps / p_limits: per counter in the hold's order, the 1-based
--     position of its row in p_ids/p_keys, its cap and its limit's name.
-- pix_reserve_usage stays for instances still running the code before this migration.
CREATE FUNCTION pix_reserve_scoped_usage(
    p_account     uuid,
    p_hold        text,
    p_periods     text[],
    p_scoped      text[],
    p_body        text,
    p_amount      bigint,
    p_ids         uuid[],
    p_keys        text[],
    p_ends        timestamptz[],
    p_check_keys  integer[],
    p_caps        bigint[],
    p_limits      text[]
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    now_used bigint[] := '{}';
    row_used bigint;
    passed text;
BEGIN
    BEGIN
        INSERT INTO pix_limit_holds (account_id, hold_id, periods, scoped, body)
        VALUES (p_account, p_hold, p_periods, p_scoped, p_body)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RETURN 'ALREADY_HELD';
        END IF;
        FOR i IN 1 .. cardinality(p_ids) LOOP
            INSERT INTO pix_limit_usage AS u (account_id, period, used, ends_at)
            VALUES (p_ids[i], p_keys[i], p_amount, p_ends[i])
            ON CONFLICT (account_id, period) DO UPDATE SET used = u.used + p_amount
            RETURNING u.used INTO row_used;
            now_used := now_used || row_used;
        END LOOP;
        FOR j IN 1 .. cardinality(p_check_keys) LOOP
            IF now_used[p_check_keys[j]] > p_caps[j] THEN
                passed := p_limits[j];
                RAISE EXCEPTION 'pix limit passed' USING ERRCODE = 'PXL01';
            END IF;
        END LOOP;
    EXCEPTION WHEN SQLSTATE 'PXL01' THEN
        RETURN 'EXCEEDED:' || passed;
    END;
    RETURN 'RESERVED';
END;
$$;
