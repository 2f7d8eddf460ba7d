-- A PIX limit reservation in one round trip (it took four: BEGIN, the hold,
-- the counters, COMMIT). Same steps, same lock order as the adapter's
-- transaction had (migration 0012, pix_records.py): the hold row and any
-- missing counter first (a hold id recorded before answers 'ALREADY_HELD' and
-- adds nothing), then the hold's counters locked in period order and raised
-- together; what they then hold is checked against the caps in the hold's
-- order, and over a cap everything this call wrote is undone (the inner block
-- is a subtransaction) and the first limit passed comes back as
-- 'EXCEEDED:<limit>'. Otherwise 'RESERVED'.
-- p_periods / p_ends: the hold's distinct periods, sorted, with their ends;
-- p_check_periods / p_caps / p_limits: one entry per counter, in the hold's order.
CREATE FUNCTION pix_reserve_usage(
    p_account        uuid,
    p_hold           text,
    p_periods        text[],
    p_body           text,
    p_ends           timestamptz[],
    p_amount         bigint,
    p_check_periods  text[],
    p_caps           bigint[],
    p_limits         text[]
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    passed text;
BEGIN
    BEGIN
        INSERT INTO pix_limit_holds (account_id, hold_id, periods, body)
        VALUES (p_account, p_hold, p_periods, p_body)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RETURN 'ALREADY_HELD';
        END IF;
        INSERT INTO pix_limit_usage (account_id, period, used, ends_at)
        SELECT p_account, c.period, 0, c.ends_at
        FROM unnest(p_periods, p_ends) AS c(period, ends_at)
        ORDER BY c.period
        ON CONFLICT DO NOTHING;
        PERFORM 1 FROM pix_limit_usage
        WHERE account_id = p_account AND period = ANY(p_periods)
        ORDER BY period FOR UPDATE;
        UPDATE pix_limit_usage SET used = used + p_amount
        WHERE account_id = p_account AND period = ANY(p_periods);
        SELECT c.limit_name INTO passed
        FROM unnest(p_check_periods, p_caps, p_limits) WITH ORDINALITY
             AS c(period, cap, limit_name, n)
        JOIN pix_limit_usage u ON u.account_id = p_account AND u.period = c.period
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
