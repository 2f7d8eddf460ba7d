-- Two fixes of the ledger's functions (the rest of each function is unchanged):
-- ledger_create_transfers now writes the expiries it applies, and
-- ledger_create_transfer answers a racing replay with exists. Then a repair
-- of the pending balances the first bug left behind (at the end).
--
-- Fix: a pending transfer expired by ledger_create_transfers stayed 'pending'.
--
-- ledger_create_transfers voids the pending transfers that are due before it
-- works on its batch: it releases their reservations in its copy of the
-- balances and marks them expired in its copy of their statuses. It then
-- wrote back only the statuses that differ from a snapshot of them, and that
-- snapshot was taken after the expiry, so the 'expired' status was never
-- written: the reservation was released and the transfer stayed pending, and
-- the next call (of any kind) released it again. Pending balances then fell
-- below the live reservations (a customer could spend funds still reserved)
-- or below zero (every later call that expires failed on a CHECK).
--
-- The snapshot is now taken before the expiry, so the statuses the call
-- changes, by expiry or by post/void, are all written with the balances. The
-- rest of the function is unchanged.

CREATE OR REPLACE FUNCTION ledger_create_transfers(
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
    p_first          integer[],
    p_pfirst         integer[],
    p_accounts       uuid[],
    p_dslot          integer[],
    p_cslot          integer[],
    p_event_id       uuid[] DEFAULT NULL,
    p_event_agg      text[] DEFAULT NULL,
    p_event_type     text[] DEFAULT NULL,
    p_event_topic    text[] DEFAULT NULL,
    p_event_occurred timestamptz[] DEFAULT NULL,
    p_event_envelope bytea[] DEFAULT NULL
) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    c_max        CONSTANT bigint := 9223372036854775807;
    c_linked     CONSTANT integer := 1;
    c_pending    CONSTANT integer := 2;
    c_post       CONSTANT integer := 4;
    c_void       CONSTANT integer := 8;
    n            integer := coalesce(array_length(p_id, 1), 0);
    -- stored transfers locked for resolution or expiry
    tr_id uuid[]; tr_debit uuid[]; tr_credit uuid[]; tr_amount bigint[]; tr_flags integer[];
    tr_ledger integer[]; tr_status text[]; tr_expires timestamptz[]; tr_status0 text[];
    tr_dbt integer[]; tr_crd integer[];
    -- locked accounts, sorted by id; indexes below point into these
    a_id uuid[]; a_flags integer[]; a_ledger integer[];
    a_dp bigint[]; a_dpo bigint[]; a_cp bigint[]; a_cpo bigint[];
    slot_idx integer[];  -- per slot of p_accounts: index into a_* (NULL: no such account)
    -- stored transfers with an id of the batch (replays); st_at: by first batch position
    st_at integer[]; st_id uuid[];
    st_debit uuid[]; st_credit uuid[]; st_amount bigint[]; st_pending uuid[]; st_flags integer[];
    st_code integer[]; st_ledger integer[]; st_timeout integer[]; st_user_data text[];
    -- per first batch position: the position applied with that id (0: none)
    live integer[];
    b_status text[]; r_debit uuid[]; r_credit uuid[]; r_amount bigint[]; r_expires timestamptz[];
    results text[];
    -- entries to insert
    ne integer := 0;
    e_pos integer[] := '{}'; e_acc integer[] := '{}'; e_credit boolean[] := '{}';
    e_amount bigint[] := '{}'; e_balance bigint[] := '{}';
    -- chain state and its snapshot
    chain_start integer := 0;
    chain_failed boolean := false;
    s_dp bigint[]; s_dpo bigint[]; s_cp bigint[]; s_cpo bigint[];
    s_tr_status text[]; s_b_status text[]; s_live integer[]; s_ne integer;
    -- loop temporaries
    i integer; j integer; k integer; d integer; c integer; pj integer;
    phase integer; linked boolean; posting boolean; is_pending boolean; do_post boolean;
    res text; amt bigint;
    pd_flags integer; pd_debit uuid; pd_credit uuid; pd_amount bigint; pd_ledger integer;
    pd_status text; pd_d integer; pd_c integer;
    v_expected integer; v_inserted integer; na integer; m integer;
BEGIN
    IF n = 0 THEN
        RETURN '{}';
    END IF;

    -- (1) stored transfers to resolve or expire, locked in id order
    SELECT array_agg(t.id ORDER BY t.id), array_agg(t.debit_account_id ORDER BY t.id),
           array_agg(t.credit_account_id ORDER BY t.id), array_agg(t.amount ORDER BY t.id),
           array_agg(t.flags ORDER BY t.id), array_agg(t.ledger ORDER BY t.id),
           array_agg(t.status ORDER BY t.id), array_agg(t.expires_at ORDER BY t.id)
      INTO tr_id, tr_debit, tr_credit, tr_amount, tr_flags, tr_ledger, tr_status, tr_expires
      FROM (SELECT t.id, t.debit_account_id, t.credit_account_id, t.amount, t.flags, t.ledger,
                   t.status, t.expires_at
              FROM ledger_transfers t
             WHERE t.id = ANY (p_pending)
                OR (t.status = 'pending' AND t.expires_at <= p_now)
             ORDER BY t.id
               FOR UPDATE) t;

    -- (2) every account involved, locked in id order
    SELECT array_agg(a.id ORDER BY a.id), array_agg(a.flags ORDER BY a.id),
           array_agg(a.ledger ORDER BY a.id), array_agg(a.debits_pending ORDER BY a.id),
           array_agg(a.debits_posted ORDER BY a.id), array_agg(a.credits_pending ORDER BY a.id),
           array_agg(a.credits_posted ORDER BY a.id)
      INTO a_id, a_flags, a_ledger, a_dp, a_dpo, a_cp, a_cpo
      FROM (SELECT a.id, a.flags, a.ledger, a.debits_pending, a.debits_posted,
                   a.credits_pending, a.credits_posted
              FROM ledger_accounts a
             WHERE a.id = ANY (p_debit || p_credit || tr_debit || tr_credit)
             ORDER BY a.id
               FOR UPDATE) a;

    -- slots of the batch's accounts -> indexes into a_* (both sorted: one merge pass)
    na := coalesce(array_length(a_id, 1), 0);
    m := coalesce(array_length(p_accounts, 1), 0);
    slot_idx := array_fill(NULL::integer, ARRAY[greatest(m, 1)]);
    j := 1;
    FOR k IN 1 .. m LOOP
        WHILE j <= na AND a_id[j] < p_accounts[k] LOOP
            j := j + 1;
        END LOOP;
        IF j <= na AND a_id[j] = p_accounts[k] THEN
            slot_idx[k] := j;
        END IF;
    END LOOP;

    IF tr_id IS NOT NULL THEN
        -- the statuses as stored: (5) writes every status that differs from
        -- these, the expiries below included (the fix of this migration)
        tr_status0 := tr_status;
        FOR k IN 1 .. array_length(tr_id, 1) LOOP
            tr_dbt[k] := array_position(a_id, tr_debit[k]);
            tr_crd[k] := array_position(a_id, tr_credit[k]);
            -- expire what is due (the ledger's clock, not the server's)
            IF tr_status[k] = 'pending' AND tr_expires[k] <= p_now THEN
                a_dp[tr_dbt[k]] := a_dp[tr_dbt[k]] - tr_amount[k];
                a_cp[tr_crd[k]] := a_cp[tr_crd[k]] - tr_amount[k];
                tr_status[k] := 'expired';
            END IF;
        END LOOP;
    END IF;

    -- (3) transfers of the batch that are already stored (replays)
    SELECT array_agg(t.id), array_agg(t.req_debit_id), array_agg(t.req_credit_id),
           array_agg(t.req_amount), array_agg(t.pending_id), array_agg(t.flags),
           array_agg(t.code), array_agg(t.ledger), array_agg(t.timeout_seconds),
           array_agg(t.user_data)
      INTO st_id, st_debit, st_credit, st_amount, st_pending, st_flags, st_code, st_ledger,
           st_timeout, st_user_data
      FROM ledger_transfers t
     WHERE t.id = ANY (p_id);
    st_at := array_fill(NULL::integer, ARRAY[n]);
    IF st_id IS NOT NULL THEN
        FOR k IN 1 .. array_length(st_id, 1) LOOP
            st_at[array_position(p_id, st_id[k])] := k;
        END LOOP;
    END IF;

    live := array_fill(0, ARRAY[n]);
    b_status := array_fill(NULL::text, ARRAY[n]);
    r_debit := array_fill(NULL::uuid, ARRAY[n]);
    r_credit := array_fill(NULL::uuid, ARRAY[n]);
    r_amount := array_fill(NULL::bigint, ARRAY[n]);
    r_expires := array_fill(NULL::timestamptz, ARRAY[n]);
    results := array_fill(NULL::text, ARRAY[n]);

    -- (4) the batch, in order, in memory
    FOR i IN 1 .. n LOOP
        linked := p_flags[i] & c_linked <> 0;
        IF chain_start = 0 AND linked THEN
            chain_start := i;
            chain_failed := false;
            s_dp := a_dp; s_dpo := a_dpo; s_cp := a_cp; s_cpo := a_cpo;
            s_tr_status := tr_status; s_b_status := b_status; s_live := live; s_ne := ne;
        END IF;
        do_post := false;
        IF chain_start > 0 AND chain_failed THEN
            res := 'linked_event_failed';
        ELSIF linked AND i = n THEN
            res := 'linked_event_chain_open';
        ELSE
            <<apply>>
            BEGIN
                phase := p_flags[i] & (c_pending | c_post | c_void);
                IF phase <> 0 AND phase & (phase - 1) <> 0 THEN
                    res := 'flags_are_mutually_exclusive'; EXIT apply;
                END IF;
                k := st_at[p_first[i]];
                IF k IS NOT NULL THEN
                    IF st_debit[k] IS NOT DISTINCT FROM p_debit[i]
                       AND st_credit[k] IS NOT DISTINCT FROM p_credit[i]
                       AND st_amount[k] = p_amount[i]
                       AND st_pending[k] IS NOT DISTINCT FROM p_pending[i]
                       AND st_flags[k] = p_flags[i] AND st_code[k] = p_code[i]
                       AND st_ledger[k] = p_ledger[i] AND st_timeout[k] = p_timeout[i]
                       AND st_user_data[k] IS NOT DISTINCT FROM p_user_data[i] THEN
                        res := 'exists';
                    ELSE
                        res := 'exists_with_different_fields';
                    END IF;
                    EXIT apply;
                END IF;
                j := live[p_first[i]];
                IF j > 0 THEN
                    IF p_debit[j] IS NOT DISTINCT FROM p_debit[i]
                       AND p_credit[j] IS NOT DISTINCT FROM p_credit[i]
                       AND p_amount[j] = p_amount[i]
                       AND p_pending[j] IS NOT DISTINCT FROM p_pending[i]
                       AND p_flags[j] = p_flags[i] AND p_code[j] = p_code[i]
                       AND p_ledger[j] = p_ledger[i] AND p_timeout[j] = p_timeout[i]
                       AND p_user_data[j] IS NOT DISTINCT FROM p_user_data[i] THEN
                        res := 'exists';
                    ELSE
                        res := 'exists_with_different_fields';
                    END IF;
                    EXIT apply;
                END IF;
                IF p_amount[i] < 0 THEN
                    res := 'amount_must_not_be_negative'; EXIT apply;
                END IF;
                IF p_timeout[i] < 0 THEN
                    res := 'timeout_must_not_be_negative'; EXIT apply;
                END IF;

                IF phase & (c_post | c_void) <> 0 THEN
                    -- resolve a pending transfer
                    posting := phase = c_post;
                    IF p_timeout[i] <> 0 THEN
                        res := 'timeout_reserved_for_pending_transfer'; EXIT apply;
                    END IF;
                    IF p_pending[i] IS NULL THEN
                        res := 'pending_id_required'; EXIT apply;
                    END IF;
                    IF p_pending[i] = p_id[i] THEN
                        res := 'pending_id_must_be_different'; EXIT apply;
                    END IF;
                    pj := CASE WHEN p_pfirst[i] IS NULL THEN 0 ELSE live[p_pfirst[i]] END;
                    k := array_position(tr_id, p_pending[i]);
                    IF pj > 0 THEN
                        pd_flags := p_flags[pj]; pd_debit := r_debit[pj];
                        pd_credit := r_credit[pj]; pd_amount := r_amount[pj];
                        pd_ledger := p_ledger[pj]; pd_status := b_status[pj];
                        pd_d := slot_idx[p_dslot[pj]]; pd_c := slot_idx[p_cslot[pj]];
                    ELSIF k IS NOT NULL THEN
                        pd_flags := tr_flags[k]; pd_debit := tr_debit[k];
                        pd_credit := tr_credit[k]; pd_amount := tr_amount[k];
                        pd_ledger := tr_ledger[k]; pd_status := tr_status[k];
                        pd_d := tr_dbt[k]; pd_c := tr_crd[k];
                    ELSE
                        res := 'pending_transfer_not_found'; EXIT apply;
                    END IF;
                    IF pd_flags & c_pending = 0 THEN
                        res := 'pending_transfer_not_pending'; EXIT apply;
                    END IF;
                    IF p_debit[i] IS NOT NULL AND p_debit[i] <> pd_debit THEN
                        res := 'pending_transfer_has_different_debit_account_id'; EXIT apply;
                    END IF;
                    IF p_credit[i] IS NOT NULL AND p_credit[i] <> pd_credit THEN
                        res := 'pending_transfer_has_different_credit_account_id'; EXIT apply;
                    END IF;
                    IF p_ledger[i] <> pd_ledger THEN
                        res := 'transfer_must_have_the_same_ledger_as_accounts'; EXIT apply;
                    END IF;
                    IF pd_status = 'posted' THEN
                        res := 'pending_transfer_already_posted'; EXIT apply;
                    ELSIF pd_status = 'voided' THEN
                        res := 'pending_transfer_already_voided'; EXIT apply;
                    ELSIF pd_status = 'expired' THEN
                        res := 'pending_transfer_expired'; EXIT apply;
                    END IF;
                    IF posting THEN
                        amt := CASE WHEN p_amount[i] = 0 THEN pd_amount ELSE p_amount[i] END;
                        IF amt > pd_amount THEN
                            res := 'exceeds_pending_transfer_amount'; EXIT apply;
                        END IF;
                    ELSE
                        IF p_amount[i] NOT IN (0, pd_amount) THEN
                            res := 'pending_transfer_has_different_amount'; EXIT apply;
                        END IF;
                        amt := pd_amount;
                    END IF;
                    a_dp[pd_d] := a_dp[pd_d] - pd_amount;
                    a_cp[pd_c] := a_cp[pd_c] - pd_amount;
                    IF pj > 0 THEN
                        b_status[pj] := CASE WHEN posting THEN 'posted' ELSE 'voided' END;
                    ELSE
                        tr_status[k] := CASE WHEN posting THEN 'posted' ELSE 'voided' END;
                    END IF;
                    r_debit[i] := pd_debit; r_credit[i] := pd_credit; r_amount[i] := amt;
                    b_status[i] := 'none';
                    live[p_first[i]] := i;
                    d := pd_d; c := pd_c;
                    do_post := posting;
                    res := 'ok';
                ELSE
                    -- a single-phase or pending transfer
                    is_pending := phase = c_pending;
                    IF p_pending[i] IS NOT NULL THEN
                        res := 'pending_id_must_be_zero'; EXIT apply;
                    END IF;
                    IF p_timeout[i] <> 0 AND NOT is_pending THEN
                        res := 'timeout_reserved_for_pending_transfer'; EXIT apply;
                    END IF;
                    IF p_debit[i] IS NULL THEN
                        res := 'debit_account_id_required'; EXIT apply;
                    END IF;
                    IF p_credit[i] IS NULL THEN
                        res := 'credit_account_id_required'; EXIT apply;
                    END IF;
                    IF p_debit[i] = p_credit[i] THEN
                        res := 'accounts_must_be_different'; EXIT apply;
                    END IF;
                    IF p_amount[i] = 0 THEN
                        res := 'amount_must_not_be_zero'; EXIT apply;
                    END IF;
                    d := slot_idx[p_dslot[i]];
                    IF d IS NULL THEN
                        res := 'debit_account_not_found'; EXIT apply;
                    END IF;
                    c := slot_idx[p_cslot[i]];
                    IF c IS NULL THEN
                        res := 'credit_account_not_found'; EXIT apply;
                    END IF;
                    IF a_ledger[d] <> a_ledger[c] THEN
                        res := 'accounts_must_have_the_same_ledger'; EXIT apply;
                    END IF;
                    IF p_ledger[i] <> a_ledger[d] THEN
                        res := 'transfer_must_have_the_same_ledger_as_accounts'; EXIT apply;
                    END IF;
                    amt := p_amount[i];
                    -- written so that no intermediate sum can overflow bigint
                    IF a_dp[d] > c_max - a_dpo[d] - amt OR a_cp[c] > c_max - a_cpo[c] - amt THEN
                        res := 'overflows'; EXIT apply;
                    END IF;
                    IF a_flags[d] & 1 <> 0 AND a_dp[d] + a_dpo[d] + amt > a_cpo[d] THEN
                        res := 'exceeds_credits'; EXIT apply;
                    END IF;
                    IF a_flags[c] & 2 <> 0 AND a_cp[c] + a_cpo[c] + amt > a_dpo[c] THEN
                        res := 'exceeds_debits'; EXIT apply;
                    END IF;
                    r_debit[i] := p_debit[i]; r_credit[i] := p_credit[i]; r_amount[i] := amt;
                    live[p_first[i]] := i;
                    IF is_pending THEN
                        a_dp[d] := a_dp[d] + amt;
                        a_cp[c] := a_cp[c] + amt;
                        b_status[i] := 'pending';
                        IF p_timeout[i] > 0 THEN
                            r_expires[i] := p_now + make_interval(secs => p_timeout[i]);
                        END IF;
                    ELSE
                        b_status[i] := 'none';
                        do_post := true;
                    END IF;
                    res := 'ok';
                END IF;
            END apply;
        END IF;

        IF do_post THEN
            a_dpo[d] := a_dpo[d] + amt;
            a_cpo[c] := a_cpo[c] + amt;
            ne := ne + 1;
            e_pos[ne] := i; e_acc[ne] := d; e_credit[ne] := false; e_amount[ne] := amt;
            e_balance[ne] := a_cpo[d] - a_dpo[d];
            ne := ne + 1;
            e_pos[ne] := i; e_acc[ne] := c; e_credit[ne] := true; e_amount[ne] := amt;
            e_balance[ne] := a_cpo[c] - a_dpo[c];
        END IF;

        results[i] := res;
        IF chain_start > 0 AND res <> 'ok' AND NOT chain_failed THEN
            chain_failed := true;
            a_dp := s_dp; a_dpo := s_dpo; a_cp := s_cp; a_cpo := s_cpo;
            tr_status := s_tr_status; b_status := s_b_status; live := s_live; ne := s_ne;
            FOR j IN chain_start .. i - 1 LOOP
                results[j] := 'linked_event_failed';
            END LOOP;
        END IF;
        IF chain_start > 0 AND NOT linked THEN
            chain_start := 0;
        END IF;
    END LOOP;

    -- (5) write the outcome, set-based
    IF a_id IS NOT NULL THEN
        UPDATE ledger_accounts a
           SET debits_pending = u.dp, debits_posted = u.dpo,
               credits_pending = u.cp, credits_posted = u.cpo
          FROM unnest(a_id, a_dp, a_dpo, a_cp, a_cpo) AS u(id, dp, dpo, cp, cpo)
         WHERE a.id = u.id
           AND (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
               IS DISTINCT FROM (u.dp, u.dpo, u.cp, u.cpo);
    END IF;

    IF tr_id IS NOT NULL THEN
        UPDATE ledger_transfers t
           SET status = u.status
          FROM unnest(tr_id, tr_status, tr_status0) AS u(id, status, before)
         WHERE t.id = u.id AND u.status <> u.before;
    END IF;

    v_expected := 0;  -- an ok result is exactly a transfer to store
    FOR i IN 1 .. n LOOP
        IF results[i] = 'ok' THEN
            v_expected := v_expected + 1;
        END IF;
    END LOOP;
    IF v_expected > 0 THEN
        INSERT INTO ledger_transfers (
            id, req_debit_id, req_credit_id, req_amount, pending_id, flags, code, ledger,
            timeout_seconds, user_data, debit_account_id, credit_account_id, amount, status,
            expires_at, created_at)
        SELECT p_id[s.i], p_debit[s.i], p_credit[s.i], p_amount[s.i], p_pending[s.i],
               p_flags[s.i], p_code[s.i], p_ledger[s.i], p_timeout[s.i], p_user_data[s.i],
               r_debit[s.i], r_credit[s.i], r_amount[s.i], b_status[s.i], r_expires[s.i], p_now
          FROM generate_subscripts(p_id, 1) AS s(i)
         WHERE live[p_first[s.i]] = s.i
        ON CONFLICT (id) DO NOTHING;
        GET DIAGNOSTICS v_inserted = ROW_COUNT;
        IF v_inserted <> v_expected THEN
            RAISE EXCEPTION 'a transfer id of this batch was stored concurrently'
                USING ERRCODE = 'serialization_failure';
        END IF;
    END IF;

    IF ne > 0 THEN
        INSERT INTO ledger_entries (account_id, transfer_id, side, amount, balance_after, code,
                                    created_at, user_data)
        SELECT a_id[e.acc], p_id[e.pos], CASE WHEN e.credit THEN 'credit' ELSE 'debit' END,
               e.amount, e.balance, p_code[e.pos], p_now, p_user_data[e.pos]
          FROM unnest(e_pos[1:ne], e_acc[1:ne], e_credit[1:ne], e_amount[1:ne], e_balance[1:ne])
               WITH ORDINALITY AS e(pos, acc, credit, amount, balance, ord)
         ORDER BY e.ord;
    END IF;

    IF p_event_id IS NOT NULL AND v_expected > 0 THEN
        PERFORM outbox_append(p_event_id, p_event_agg, p_event_type, p_event_topic,
                              p_event_occurred, p_event_envelope);
    END IF;

    RETURN results;
END;
$$;


-- Fix: a replay racing its first submission was judged as a new transfer.
--
-- ledger_create_transfer (the single-transfer fast path) looked the id up
-- before taking the account locks. A replay submitted while the first
-- submission was running found no stored transfer, waited for the locks and
-- was then checked against the balances the first one had just moved: a
-- transfer that spent the whole balance answered exceeds_credits to its
-- replays instead of exists. The id is now looked up again once the locks are
-- held (the batch function already reads stored transfers after its locks).
-- A replay of the same id on other accounts is not serialised by these locks;
-- its insert finds the stored row and the call retries, as before.
CREATE OR REPLACE FUNCTION ledger_create_transfer(
    p_now            timestamptz,
    p_id             uuid,
    p_debit          uuid,
    p_credit         uuid,
    p_amount         bigint,
    p_pending        uuid,
    p_code           integer,
    p_ledger         integer,
    p_timeout        integer,
    p_user_data      text,
    p_event_id       uuid[] DEFAULT NULL,
    p_event_agg      text[] DEFAULT NULL,
    p_event_type     text[] DEFAULT NULL,
    p_event_topic    text[] DEFAULT NULL,
    p_event_occurred timestamptz[] DEFAULT NULL,
    p_event_envelope bytea[] DEFAULT NULL
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    c_max CONSTANT bigint := 9223372036854775807;
    st    ledger_transfers%ROWTYPE;
    d     ledger_accounts%ROWTYPE;
    c     ledger_accounts%ROWTYPE;
    v_dbal bigint;
    v_cbal bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_transfers t
                WHERE t.status = 'pending' AND t.expires_at <= p_now) THEN
        RETURN NULL;
    END IF;

    SELECT * INTO st FROM ledger_transfers t WHERE t.id = p_id;
    IF FOUND THEN
        IF st.req_debit_id IS NOT DISTINCT FROM p_debit
           AND st.req_credit_id IS NOT DISTINCT FROM p_credit
           AND st.req_amount = p_amount
           AND st.pending_id IS NOT DISTINCT FROM p_pending
           AND st.flags = 0 AND st.code = p_code AND st.ledger = p_ledger
           AND st.timeout_seconds = p_timeout
           AND st.user_data IS NOT DISTINCT FROM p_user_data THEN
            RETURN 'exists';
        END IF;
        RETURN 'exists_with_different_fields';
    END IF;
    IF p_amount < 0 THEN RETURN 'amount_must_not_be_negative'; END IF;
    IF p_timeout < 0 THEN RETURN 'timeout_must_not_be_negative'; END IF;
    IF p_pending IS NOT NULL THEN RETURN 'pending_id_must_be_zero'; END IF;
    IF p_timeout <> 0 THEN RETURN 'timeout_reserved_for_pending_transfer'; END IF;
    IF p_debit IS NULL THEN RETURN 'debit_account_id_required'; END IF;
    IF p_credit IS NULL THEN RETURN 'credit_account_id_required'; END IF;
    IF p_debit = p_credit THEN RETURN 'accounts_must_be_different'; END IF;
    IF p_amount = 0 THEN RETURN 'amount_must_not_be_zero'; END IF;

    PERFORM 1 FROM ledger_accounts a WHERE a.id IN (p_debit, p_credit) ORDER BY a.id FOR UPDATE;
    -- A replay of this id may have committed while we waited for the locks:
    -- look again, so that it answers exists and is not judged as a new
    -- transfer against the balances it already moved.
    SELECT * INTO st FROM ledger_transfers t WHERE t.id = p_id;
    IF FOUND THEN
        IF st.req_debit_id IS NOT DISTINCT FROM p_debit
           AND st.req_credit_id IS NOT DISTINCT FROM p_credit
           AND st.req_amount = p_amount
           AND st.pending_id IS NOT DISTINCT FROM p_pending
           AND st.flags = 0 AND st.code = p_code AND st.ledger = p_ledger
           AND st.timeout_seconds = p_timeout
           AND st.user_data IS NOT DISTINCT FROM p_user_data THEN
            RETURN 'exists';
        END IF;
        RETURN 'exists_with_different_fields';
    END IF;
    SELECT * INTO d FROM ledger_accounts a WHERE a.id = p_debit;
    IF NOT FOUND THEN RETURN 'debit_account_not_found'; END IF;
    SELECT * INTO c FROM ledger_accounts a WHERE a.id = p_credit;
    IF NOT FOUND THEN RETURN 'credit_account_not_found'; END IF;
    IF d.ledger <> c.ledger THEN RETURN 'accounts_must_have_the_same_ledger'; END IF;
    IF p_ledger <> d.ledger THEN RETURN 'transfer_must_have_the_same_ledger_as_accounts'; END IF;
    IF d.debits_pending::numeric + d.debits_posted + p_amount > c_max
       OR c.credits_pending::numeric + c.credits_posted + p_amount > c_max THEN
        RETURN 'overflows';
    END IF;
    IF d.flags & 1 <> 0 AND d.debits_pending + d.debits_posted + p_amount > d.credits_posted THEN
        RETURN 'exceeds_credits';
    END IF;
    IF c.flags & 2 <> 0 AND c.credits_pending + c.credits_posted + p_amount > c.debits_posted THEN
        RETURN 'exceeds_debits';
    END IF;

    UPDATE ledger_accounts a SET debits_posted = a.debits_posted + p_amount
     WHERE a.id = p_debit RETURNING a.credits_posted - a.debits_posted INTO v_dbal;
    UPDATE ledger_accounts a SET credits_posted = a.credits_posted + p_amount
     WHERE a.id = p_credit RETURNING a.credits_posted - a.debits_posted INTO v_cbal;
    INSERT INTO ledger_transfers (
        id, req_debit_id, req_credit_id, req_amount, pending_id, flags, code, ledger,
        timeout_seconds, user_data, debit_account_id, credit_account_id, amount, status,
        expires_at, created_at)
    VALUES (p_id, p_debit, p_credit, p_amount, NULL, 0, p_code, p_ledger, 0, p_user_data,
            p_debit, p_credit, p_amount, 'none', NULL, p_now)
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the transfer id was stored concurrently'
            USING ERRCODE = 'serialization_failure';
    END IF;
    INSERT INTO ledger_entries (account_id, transfer_id, side, amount, balance_after, code,
                                created_at, user_data)
    VALUES (p_debit, p_id, 'debit', p_amount, v_dbal, p_code, p_now, p_user_data),
           (p_credit, p_id, 'credit', p_amount, v_cbal, p_code, p_now, p_user_data);
    IF p_event_id IS NOT NULL THEN
        PERFORM outbox_append(p_event_id, p_event_agg, p_event_type, p_event_topic,
                              p_event_occurred, p_event_envelope);
    END IF;
    RETURN 'ok';
END;
$$;


-- Repair of what the expiry bug left behind.
--
-- An account's pending balances are, by construction, the sums of the live
-- (status 'pending') transfers on its sides. The bug released reservations
-- that stayed pending (and released them again later), so pending balances
-- may be below the live reservations; a schema where one went below zero
-- fails every call that expires it, and the fixed functions alone would
-- fail the same way. This function sets each drifted account's pending
-- balances back to its live reservations (a due transfer counted again is
-- then expired once, by the next call), except where that would break the
-- account's limit flag: the customer has already spent funds that are still
-- reserved, which needs a person (void or post the reservation, then run
-- this again). It returns every drifted account and whether it was repaired.
-- It locks both tables against writers until its transaction ends.
CREATE OR REPLACE FUNCTION ledger_repair_pending_balances()
RETURNS TABLE (account_id uuid, repaired boolean)
LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE ledger_transfers, ledger_accounts IN SHARE ROW EXCLUSIVE MODE;
    RETURN QUERY
    WITH reserved AS (
        SELECT r.id, sum(r.debits)::bigint AS debits, sum(r.credits)::bigint AS credits
          FROM (SELECT t.debit_account_id AS id, t.amount AS debits, 0::bigint AS credits
                  FROM ledger_transfers t WHERE t.status = 'pending'
                UNION ALL
                SELECT t.credit_account_id, 0::bigint, t.amount
                  FROM ledger_transfers t WHERE t.status = 'pending') r
         GROUP BY r.id
    ), drift AS (
        SELECT a.id, a.flags, a.debits_posted, a.credits_posted,
               coalesce(r.debits, 0) AS debits, coalesce(r.credits, 0) AS credits
          FROM ledger_accounts a LEFT JOIN reserved r ON r.id = a.id
         WHERE (a.debits_pending, a.credits_pending)
               IS DISTINCT FROM (coalesce(r.debits, 0), coalesce(r.credits, 0))
    ), repair AS (
        UPDATE ledger_accounts a
           SET debits_pending = d.debits, credits_pending = d.credits
          FROM drift d
         WHERE a.id = d.id
           AND (d.flags & 1 = 0 OR d.debits::numeric + d.debits_posted <= d.credits_posted)
           AND (d.flags & 2 = 0 OR d.credits::numeric + d.credits_posted <= d.debits_posted)
        RETURNING a.id
    )
    SELECT d.id, EXISTS (SELECT 1 FROM repair WHERE repair.id = d.id)
      FROM drift d
     ORDER BY d.id;
END;
$$;

DO $$
DECLARE
    v_repaired integer;
    v_left integer;
BEGIN
    SELECT count(*) FILTER (WHERE repaired), count(*) FILTER (WHERE NOT repaired)
      INTO v_repaired, v_left
      FROM ledger_repair_pending_balances();
    IF v_repaired > 0 THEN
        RAISE NOTICE 'ledger: pending balances of % account(s) set back to their live reservations',
            v_repaired;
    END IF;
    IF v_left > 0 THEN
        RAISE WARNING 'ledger: % account(s) spent funds still reserved; resolve their pending '
                      'transfers, then run SELECT * FROM ledger_repair_pending_balances()', v_left;
    END IF;
END;
$$;
