-- ledger_create_transfer_group (0024) with, per member, an optional check of
-- the two customer accounts (0003) in the same transaction: an internal
-- transfer (finbank_core.accounts.use_cases.InternalTransfer) is then ONE
-- round trip, instead of a read of both accounts followed by the ledger's
-- call. Members without a check (p_owner[i] NULL) run exactly as in
-- ledger_create_transfer_group, so checked and plain transfers still share
-- one group, one transaction and one commit. ledger_create_transfer_group
-- and every other function keep their signatures and behaviour.
--
-- The check of member i (p_owner[i] NOT NULL), the rules of InternalTransfer:
--   * the source (p_debit[i]) is missing or not p_owner[i]'s:
--       'account_not_found', always (the id derives from owner and key, so
--       another owner cannot reach the same transfer id);
--   * the target is missing, or either account is not 'active': only when no
--     transfer p_id[i] is stored yet, 'account_not_active:<source status>' if
--     the source is not active, else 'account_not_found' if the target is
--     missing, else 'account_not_active:<target status>'. When the id is
--     stored, the ledger answers (exists, or exists_with_different_fields):
--     a replay is answered as the first call was even after a block.
-- A refused member runs nothing: no transfer, no entry, no event (its events
-- are appended only for 'ok', as in ledger_create_transfer_group).
--
-- Locks: every ledger account of the group first, in id order (as 0024).
-- Then each checked member's two customer_accounts rows FOR SHARE, source
-- then target: a status change (an UPDATE of the row) committed before the
-- check is seen by it (each statement of the function reads the latest
-- committed rows), and one started after it waits until the transfer has
-- committed; so a block and a transfer are serialized, never interleaved.
-- Nothing that holds a customer_accounts row lock waits for a ledger lock
-- (status changes and account opening touch that one table only), so the
-- order cannot deadlock; FOR SHARE locks do not conflict with each other.
--
-- Returns NULL, having done nothing, when a pending transfer is due to
-- expire at the group's latest time (as 0024): the caller expires it
-- (ledger_expire) and sends the group again. A pending transfer committed
-- due meanwhile raises SQLSTATE 40001 (retried by the caller).
CREATE FUNCTION ledger_create_checked_transfer_group(
    p_now            timestamptz[],
    p_id             uuid[],
    p_debit          uuid[],
    p_credit         uuid[],
    p_amount         bigint[],
    p_code           integer[],
    p_ledger         integer[],
    p_user_data      text[],
    p_ud128          uuid[],
    p_ud64           bigint[],
    p_ud32           integer[],
    p_mid            text[],
    p_owner          text[],
    p_event_group    integer[],
    p_event_id       uuid[],
    p_event_agg      text[],
    p_event_type     text[],
    p_event_topic    text[],
    p_event_occurred timestamptz[],
    p_event_envelope bytea[]
) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    n          integer := coalesce(array_length(p_id, 1), 0);
    results    text[];
    res        text;
    i          integer;
    v_latest   timestamptz;
    v_owner    text;
    v_source   text;
    v_target   text;
    v_has_target boolean;
BEGIN
    IF n = 0 THEN
        RETURN '{}';
    END IF;
    IF coalesce(array_length(p_owner, 1), 0) <> n THEN
        RAISE EXCEPTION 'p_owner must have one value per transfer'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    v_latest := p_now[1];
    FOR i IN 2 .. n LOOP
        v_latest := greatest(v_latest, p_now[i]);
    END LOOP;
    IF EXISTS (SELECT 1 FROM ledger_transfers t
                WHERE t.status = 'pending' AND t.expires_at <= v_latest) THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM ledger_accounts a WHERE a.id = ANY (p_debit || p_credit) ORDER BY a.id
        FOR UPDATE;
    results := array_fill(NULL::text, ARRAY[n]);
    FOR i IN 1 .. n LOOP
        IF p_owner[i] IS NOT NULL THEN
            SELECT c.owner_id, c.status INTO v_owner, v_source
              FROM customer_accounts c WHERE c.id = p_debit[i] FOR SHARE;
            IF NOT FOUND OR v_owner <> p_owner[i] THEN
                results[i] := 'account_not_found';
                CONTINUE;
            END IF;
            SELECT c.status INTO v_target
              FROM customer_accounts c WHERE c.id = p_credit[i] FOR SHARE;
            v_has_target := FOUND;
            IF (NOT v_has_target OR v_source <> 'active' OR v_target <> 'active')
               AND NOT EXISTS (SELECT 1 FROM ledger_transfers t WHERE t.id = p_id[i]) THEN
                results[i] := CASE
                    WHEN v_source <> 'active' THEN 'account_not_active:' || v_source
                    WHEN NOT v_has_target THEN 'account_not_found'
                    ELSE 'account_not_active:' || v_target
                END;
                CONTINUE;
            END IF;
        END IF;
        res := ledger_create_transfer(
            p_now[i], p_id[i], p_debit[i], p_credit[i], p_amount[i], p_code[i], p_ledger[i],
            p_user_data[i], p_ud128[i], p_ud64[i], p_ud32[i], p_mid[i]);
        IF res IS NULL THEN
            RAISE EXCEPTION 'a pending transfer fell due during the group'
                USING ERRCODE = 'serialization_failure';
        END IF;
        results[i] := res;
    END LOOP;
    IF coalesce(array_length(p_event_id, 1), 0) > 0 THEN
        PERFORM outbox_append(
            array_agg(e.id ORDER BY e.ord), array_agg(e.agg ORDER BY e.ord),
            array_agg(e.type ORDER BY e.ord), array_agg(e.topic ORDER BY e.ord),
            array_agg(e.occurred ORDER BY e.ord), array_agg(e.envelope ORDER BY e.ord))
           FROM unnest(p_event_group, p_event_id, p_event_agg, p_event_type, p_event_topic,
                       p_event_occurred, p_event_envelope)
                WITH ORDINALITY AS e(grp, id, agg, type, topic, occurred, envelope, ord)
          WHERE results[e.grp] = 'ok';
    END IF;
    RETURN results;
END;
$$;
