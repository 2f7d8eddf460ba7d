-- PIX key claims (portability and ownership) and the key look-up buckets.
--
-- pix_key_claims: one row per claim; body is the claim (msgspec JSON), the
-- columns beside it are what the store filters and guards on. The partial
-- unique index lets a key have at most one active claim: of concurrent
-- claims on one key exactly one INSERT succeeds. version guards updates.
--
-- pix_lookup_buckets: the token bucket of each customer's key look-ups;
-- pix_lookup_take() refills and takes in one call, under the row's lock.
-- Times are the application's clock, passed in.

CREATE TABLE pix_key_claims (
    id                uuid        PRIMARY KEY,
    key_type          text        NOT NULL,
    key_value         text        NOT NULL,
    status            text        NOT NULL,
    claimer_owner_id  text,
    donor_owner_id    text,
    opened_at         timestamptz NOT NULL,
    version           integer     NOT NULL,
    body              text        NOT NULL
);

CREATE UNIQUE INDEX pix_key_claims_one_active ON pix_key_claims (key_type, key_value)
    WHERE status IN ('OPEN', 'WAITING_RESOLUTION', 'CONFIRMED');
CREATE INDEX pix_key_claims_claimer ON pix_key_claims (claimer_owner_id, opened_at)
    WHERE claimer_owner_id IS NOT NULL;
CREATE INDEX pix_key_claims_donor ON pix_key_claims (donor_owner_id, opened_at)
    WHERE donor_owner_id IS NOT NULL;

CREATE TABLE pix_lookup_buckets (
    bucket      text             PRIMARY KEY,
    tokens      double precision NOT NULL,
    updated_at  timestamptz      NOT NULL
);

-- finbank_core.pix.claims.lookups.take, atomically: a new bucket is full; a take
-- needs one token and removes cost (not below 0); a refused take changes nothing.
CREATE FUNCTION pix_lookup_take(
    p_bucket text, p_capacity double precision, p_per_minute double precision,
    p_cost double precision, p_now timestamptz
) RETURNS TABLE (allowed boolean, tokens double precision)
LANGUAGE plpgsql AS $$
DECLARE
    v_tokens double precision;
    v_at timestamptz;
    v_current double precision;
BEGIN
    INSERT INTO pix_lookup_buckets AS b (bucket, tokens, updated_at)
    VALUES (p_bucket, p_capacity, p_now)
    ON CONFLICT (bucket) DO NOTHING;
    SELECT b.tokens, b.updated_at INTO v_tokens, v_at
      FROM pix_lookup_buckets AS b WHERE b.bucket = p_bucket FOR UPDATE;
    v_current := least(
        p_capacity,
        v_tokens + greatest(extract(epoch FROM (p_now - v_at)), 0) * p_per_minute / 60.0
    );
    IF v_current < 1.0 THEN
        RETURN QUERY SELECT false, v_current;
        RETURN;
    END IF;
    UPDATE pix_lookup_buckets AS b
       SET tokens = greatest(v_current - p_cost, 0), updated_at = greatest(p_now, v_at)
     WHERE b.bucket = p_bucket;
    RETURN QUERY SELECT true, greatest(v_current - p_cost, 0);
END;
$$;
