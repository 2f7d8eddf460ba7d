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
-- named by (id, period). Same steps: the hold row first (a hold id recorded before
-- answers 'ALREADY_HELD' and adds nothing), then any missing counter, then the
-- counters locked and raised together, checked against the caps in the hold's order,
-- and over a cap everything this call wrote undone and 'EXCEEDED:<limit>' returned.
-- Counter rows are inserted and locked in one global order, (id, period), whatever
-- accounts and scopes they are kept under (the release in pix_records.py locks in the
-- same order), so reservations that share a scoped counter from several accounts queue
-- instead of deadlocking.
-- p_ids / p_periods / p_ends / p_caps / p_limits: one entry per counter, in the
-- hold's order (p_ids: the id it is kept under).
-- pix_reserve_usage stays for instances still running the code before this migration.
CREATE FUNCTION pix_reserve_scoped_usage(
    p_account  uuid,
    p_hold     text,
    p_body     text,
    p_amount   bigint,
    p_ids      uuid[],
    p_periods  text[],
    p_ends     timestamptz[],
    p_caps     bigint[],
    p_limits   text[]
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    passed text;
BEGIN
    BEGIN
        INSERT INTO pix_limit_holds (account_id, hold_id, periods, scoped, body)
        SELECT
            p_account,
            p_hold,
            coalesce(
                array_agg(DISTINCT c.period ORDER BY c.period)
                    FILTER (WHERE c.id = p_account),
                '{}'
            ),
            coalesce(
                array_agg(DISTINCT c.id::text || '/' || c.period ORDER BY c.id::text || '/' || c.period)
                    FILTER (WHERE c.id <> p_account),
                '{}'
            ),
            p_body
        FROM unnest(p_ids, p_periods) AS c(id, period)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RETURN 'ALREADY_HELD';
        END IF;
        INSERT INTO pix_limit_usage (account_id, period, used, ends_at)
        SELECT DISTINCT ON (c.id, c.period) c.id, c.period, 0, c.ends_at
        FROM unnest(p_ids, p_periods, p_ends) AS c(id, period, ends_at)
        ORDER BY c.id, c.period
        ON CONFLICT DO NOTHING;
        PERFORM 1 FROM pix_limit_usage u
        JOIN (SELECT DISTINCT id, period FROM unnest(p_ids, p_periods) AS k(id, period)) c
            ON u.account_id = c.id AND u.period = c.period
        ORDER BY u.account_id, u.period FOR UPDATE OF u;
        UPDATE pix_limit_usage u SET used = u.used + p_amount
        FROM (SELECT DISTINCT id, period FROM unnest(p_ids, p_periods) AS k(id, period)) c
        WHERE u.account_id = c.id AND u.period = c.period;
        SELECT c.limit_name INTO passed
        FROM unnest(p_ids, p_periods, p_caps, p_limits) WITH ORDINALITY
             AS c(id, period, cap, limit_name, n)
        JOIN pix_limit_usage u ON u.account_id = c.id AND u.period = c.period
        WHERE u.used > c.cap
        ORDER BY c.n
        LIMIT 1;
        IF passed IS NOT NULL THEN
            RAISE EXCEPTION 'pix limit passed' USING ERRCODE = 'PXL01';
        END IF;
    EXCEPTION WHEN SQLSTATE 'PXL01' THEN
        RETURN 'EXCEEDED:' || passed;
    END;
    RETURN 'RESERVED';
END;
$$;
