-- Several callers' transfer batches in one call of ledger_create_transfers
-- (the adapter's group commit, finbank_adapters.postgres.ledger): one round
-- trip, one transaction, one commit for all of them.
--
-- ledger_create_transfers appends ALL of a call's events when any transfer of
-- the call is ok. With several callers in one call that is wrong: each
-- caller's events belong to its own transfers. This wrapper runs the batch
-- without events, then appends each caller's events iff at least one of THAT
-- caller's transfers is ok, in the same transaction (one outbox_append, so its
-- advisory locks stay the last locks taken, sorted).
--
-- p_group_end[g]: the position of caller g's last transfer (1-based, rising;
-- caller g holds the positions after p_group_end[g-1] up to p_group_end[g]).
-- p_event_group[e]: the caller (index into p_group_end) event e belongs to.
-- The transfer arguments are ledger_create_transfers' own, unchanged; the
-- existing call shapes of ledger_create_transfers keep their behaviour.
-- The adapter only groups batches that cannot interact by position (not
-- imported, no linked chain open at a caller's end), so the combined batch
-- answers each caller as its own batch would at that point of the order.
CREATE FUNCTION ledger_create_transfers_grouped(
    p_now            timestamptz,
    p_id             uuid[],
    p_debit          uuid[],
    p_credit         uuid[],
    p_amount         bigint[],
    p_pending        uuid[],
    p_flags          integer[],
    p_code           integer[],
    p_ledger         integer[],
    p_timeout        integer[],
    p_user_data      text[],
    p_ud128          uuid[],
    p_ud64           bigint[],
    p_ud32           integer[],
    p_ts             timestamptz[],
    p_expires        timestamptz[],
    p_pre            text[],
    p_mid            text[],
    p_late           text[],
    p_first          integer[],
    p_pfirst         integer[],
    p_accounts       uuid[],
    p_dslot          integer[],
    p_cslot          integer[],
    p_group_end      integer[],
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
    results text[];
    groups  integer := coalesce(array_length(p_group_end, 1), 0);
    ok      boolean[];
    g       integer;
    i       integer;
    lo      integer := 1;
BEGIN
    IF groups = 0 OR p_group_end[groups] <> coalesce(array_length(p_id, 1), 0) THEN
        RAISE EXCEPTION 'p_group_end must end at the last transfer'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    results := ledger_create_transfers(
        p_now, p_id, p_debit, p_credit, p_amount, p_pending, p_flags, p_code, p_ledger,
        p_timeout, p_user_data, p_ud128, p_ud64, p_ud32, p_ts, p_expires, p_pre, p_mid,
        p_late, p_first, p_pfirst, p_accounts, p_dslot, p_cslot, false);
    IF coalesce(array_length(p_event_id, 1), 0) = 0 THEN
        RETURN results;
    END IF;
    ok := array_fill(false, ARRAY[groups]);
    FOR g IN 1 .. groups LOOP
        IF p_group_end[g] < lo - 1 THEN
            RAISE EXCEPTION 'p_group_end must rise' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR i IN lo .. p_group_end[g] LOOP
            IF results[i] = 'ok' THEN
                ok[g] := true;
                EXIT;
            END IF;
        END LOOP;
        lo := p_group_end[g] + 1;
    END LOOP;
    PERFORM outbox_append(
        array_agg(e.id ORDER BY e.ord), array_agg(e.agg ORDER BY e.ord),
        array_agg(e.type ORDER BY e.ord), array_agg(e.topic ORDER BY e.ord),
        array_agg(e.occurred ORDER BY e.ord), array_agg(e.envelope ORDER BY e.ord))
       FROM unnest(p_event_group, p_event_id, p_event_agg, p_event_type, p_event_topic,
                   p_event_occurred, p_event_envelope)
            WITH ORDINALITY AS e(grp, id, agg, type, topic, occurred, envelope, ord)
      WHERE ok[e.grp];
    RETURN results;
END;
$$;


-- The same for the commonest group: every caller sent one plain transfer
-- (what ledger_create_transfer takes: no flag, pending id, timeout or
-- timestamp). ledger_create_transfers has a high fixed cost per call (its
-- array set-up and set-based writes, ~0.7 ms of server CPU here); one
-- transaction running ledger_create_transfer per caller costs a fraction of
-- it. Transfer i is caller i's; p_now[i] its time (its created_at).
--
-- Locks: every account of the group is locked first, in id order, in one
-- statement (as ledger_create_transfers does); each ledger_create_transfer
-- then finds its two accounts already held. No transfer row is locked (plain
-- transfers resolve nothing). The events are appended once, at the end
-- (outbox_append's advisory locks stay the last locks taken, sorted).
--
-- Returns NULL, having done nothing, when a pending transfer is due to
-- expire at the group's latest time: the caller then sends the group
-- through ledger_create_transfers_grouped, which expires it first. A
-- pending transfer committed due meanwhile makes a member's call answer
-- NULL: SQLSTATE 40001, and the retry takes that path.
CREATE FUNCTION ledger_create_transfer_group(
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
    n       integer := coalesce(array_length(p_id, 1), 0);
    results text[];
    res     text;
    i       integer;
    v_latest timestamptz;
BEGIN
    IF n = 0 THEN
        RETURN '{}';
    END IF;
    v_latest := p_now[1];
    FOR i IN 2 .. n LOOP
        v_latest := greatest(v_latest, p_now[i]);
    END LOOP;
    -- as ledger_create_transfer asks it (a parameter, not a subquery: the same plan)
    IF EXISTS (SELECT 1 FROM ledger_transfers t
                WHERE t.status = 'pending' AND t.expires_at <= v_latest) THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM ledger_accounts a WHERE a.id = ANY (p_debit || p_credit) ORDER BY a.id
        FOR UPDATE;
    results := array_fill(NULL::text, ARRAY[n]);
    FOR i IN 1 .. n LOOP
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
