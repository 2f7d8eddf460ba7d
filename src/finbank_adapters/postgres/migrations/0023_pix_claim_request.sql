-- A PIX request's idempotency lookup and in-flight claim in one round trip
-- (they took three: the lookup, the claim, the lookup again under the claim).
-- The same steps as SendPix took them (finbank_core.shared.idempotency):
-- 1. a record with this (owner, idempotency key) is returned at once, no claim
--    taken: the caller replays it, or, if it is PENDING, asks the claim apart;
-- 2. otherwise the claim is taken as PostgresRequestClaims.acquire takes it
--    (free, or its lease over); not taken: (NULL, false), the request is in flight;
-- 3. taken: the record is looked up again. A function's statements each take a
--    new snapshot (read committed), so this one sees every record committed
--    before the claim was taken, as the lookup after acquire did: a request
--    that answered and released its claim in between is replayed, not re-run.
CREATE FUNCTION pix_claim_request(
    p_owner     text,
    p_key       text,
    p_claim_id  text,
    p_token     text,
    p_now       timestamptz,
    p_until     timestamptz
) RETURNS TABLE (body text, taken boolean)
LANGUAGE plpgsql AS $$
DECLARE
    recorded text;
BEGIN
    SELECT p.body INTO recorded FROM pix_payments p
     WHERE p.payer_owner_id = p_owner AND p.idempotency_key = p_key;
    IF recorded IS NOT NULL THEN
        RETURN QUERY SELECT recorded, false;
        RETURN;
    END IF;
    INSERT INTO pix_request_claims AS c (claim_id, token, lease_until)
    VALUES (p_claim_id, p_token, p_until)
    ON CONFLICT (claim_id) DO UPDATE
       SET token = EXCLUDED.token, lease_until = EXCLUDED.lease_until
     WHERE c.lease_until <= p_now;
    IF NOT FOUND THEN
        RETURN QUERY SELECT NULL::text, false;
        RETURN;
    END IF;
    SELECT p.body INTO recorded FROM pix_payments p
     WHERE p.payer_owner_id = p_owner AND p.idempotency_key = p_key;
    RETURN QUERY SELECT recorded, true;
END
$$;
