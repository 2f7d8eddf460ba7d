-- A group of transfers that share no account runs as a few statements for the
-- whole group, instead of about ten a member.
--
-- ledger_create_checked_transfer_group (0026) called ledger_create_transfer (0027)
-- once a member, after two reads of customer_accounts: about ten statements a
-- member, each with its executor start and end, and the server's time a transfer
-- was that of its statements, not of its rows. A group is what the group commit
-- (PostgresLedger, group_max_in_flight) sends when many callers transfer at once:
-- under the HTTP load of benchmarks/http.py, eight members or so, each from an
-- account of its own.
--
-- When no account appears twice in the group (as a debit or a credit of any two
-- members, or as both sides of one) and no transfer id appears twice, no member
-- can see another's effect: each member's answer depends only on the rows as
-- they were when the group locked them. The group is then answered and applied
-- set-wise, with the same answers, rows, locks and events as member by member:
--
--   1. the ledger accounts locked in id order, as before (FOR UPDATE), and no pending
--      transfer due (one committed due while the group waited for the locks raises
--      40001, as a member's call of ledger_create_transfer made the group do);
--   2. the checked members' customer_accounts rows locked FOR SHARE, in id order
--      (before: each member's two, source then target; FOR SHARE locks do not
--      conflict with each other, and nothing that holds one waits for a ledger
--      lock, so the order cannot deadlock);
--   3. every member's answer in one SELECT, with the checks of 0026 then of
--      ledger_create_transfer in their order (the CASE below is that order);
--   4. the ledger sequence numbers of the applied members, in member order;
--   5. one statement that moves the balances, stores the transfers, their
--      entries and the history rows (accounts flagged 8), the entries and the
--      history computed from the balances the UPDATE returns (each account is
--      moved by one member only, so these are the balances after it);
--   6. the events of the applied members, as before.
--
-- A transfer id stored by a concurrent transaction between the answer and the
-- insert raises 40001, as ledger_create_transfer does (the caller retries the
-- group). Any other group (an account or an id twice, or one member) runs member
-- by member as in 0026. ledger_create_transfer_group (0024), the same without
-- the checks, now calls this function with no owners, so both take the set path.
-- Signatures are unchanged.

CREATE OR REPLACE FUNCTION ledger_create_checked_transfer_group(
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
LANGUAGE plpgsql
-- the set path looks rows up by key from a group's arrays; its plans are cached for the
-- session, and a plan made while a table was small (or never analysed) would scan it whole
-- for every group as it grows: scans by index only, as member by member always did
SET enable_seqscan = off
AS $$
DECLARE
    c_max      CONSTANT bigint := 9223372036854775807;
    n          integer := coalesce(array_length(p_id, 1), 0);
    results    text[];
    res        text;
    i          integer;
    v_latest   timestamptz;
    v_owner    text;
    v_source   text;
    v_target   text;
    v_has_target boolean;
    v_applied  integer;
    v_seqs     bigint[];
    v_stored   integer;
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

    IF n > 1
       AND (SELECT count(DISTINCT x) FROM unnest(p_debit || p_credit) AS x) = 2 * n
       AND (SELECT count(DISTINCT x) FROM unnest(p_id) AS x) = n THEN
        -- a pending transfer committed due while the group waited for the locks: member by
        -- member, ledger_create_transfer saw it and the group raised; so does this path
        IF EXISTS (SELECT 1 FROM ledger_transfers t
                    WHERE t.status = 'pending' AND t.expires_at <= v_latest) THEN
            RAISE EXCEPTION 'a pending transfer fell due during the group'
                USING ERRCODE = 'serialization_failure';
        END IF;
        -- 2. the checked members' customer accounts
        PERFORM 1 FROM customer_accounts c
          WHERE c.id IN (SELECT s.id
                           FROM unnest(p_debit, p_credit, p_owner) AS m(debit, credit, owner)
                                CROSS JOIN LATERAL (VALUES (m.debit), (m.credit)) AS s(id)
                          WHERE m.owner IS NOT NULL)
          ORDER BY c.id FOR SHARE;
        -- 3. the answers, each check where member by member would make it
        SELECT array_agg(
                   CASE
                   WHEN m.owner IS NOT NULL AND (cs.id IS NULL OR cs.owner_id <> m.owner)
                       THEN 'account_not_found'
                   WHEN m.owner IS NOT NULL
                        AND (ct.id IS NULL OR cs.status <> 'active' OR ct.status <> 'active')
                        AND t.id IS NULL
                       THEN CASE
                            WHEN cs.status <> 'active' THEN 'account_not_active:' || cs.status
                            WHEN ct.id IS NULL THEN 'account_not_found'
                            ELSE 'account_not_active:' || ct.status
                            END
                   WHEN t.id IS NOT NULL THEN
                       CASE WHEN t.req_debit_id IS NOT DISTINCT FROM m.debit
                                 AND t.req_credit_id IS NOT DISTINCT FROM m.credit
                                 AND t.req_amount = m.amount
                                 AND t.pending_id IS NULL AND t.flags = 0
                                 AND t.timeout_seconds = 0 AND t.inherited = 0
                                 AND t.code = m.code AND t.ledger = m.ledger
                                 AND t.user_data IS NOT DISTINCT FROM m.user_data
                                 AND t.user_data_128 = m.ud128 AND t.user_data_64 = m.ud64
                                 AND t.user_data_32 = m.ud32
                            THEN 'exists' ELSE 'exists_with_different_fields' END
                   WHEN m.mid IS NOT NULL THEN m.mid
                   WHEN d.id IS NULL THEN 'debit_account_not_found'
                   WHEN c.id IS NULL THEN 'credit_account_not_found'
                   WHEN d.ledger <> c.ledger THEN 'accounts_must_have_the_same_ledger'
                   WHEN m.ledger <> d.ledger THEN 'transfer_must_have_the_same_ledger_as_accounts'
                   WHEN d.flags & 32 <> 0 OR d.closed THEN 'debit_account_already_closed'
                   WHEN c.flags & 32 <> 0 OR c.closed THEN 'credit_account_already_closed'
                   WHEN d.debits_pending > c_max - d.debits_posted - m.amount
                        OR c.credits_pending > c_max - c.credits_posted - m.amount
                       THEN 'overflows'
                   WHEN d.flags & 1 <> 0
                        AND d.debits_pending + d.debits_posted + m.amount > d.credits_posted
                       THEN 'exceeds_credits'
                   WHEN c.flags & 2 <> 0
                        AND c.credits_pending + c.credits_posted + m.amount > c.debits_posted
                       THEN 'exceeds_debits'
                   ELSE 'ok'
                   END ORDER BY m.i)
          INTO results
          FROM unnest(p_id, p_debit, p_credit, p_amount, p_code, p_ledger, p_user_data,
                      p_ud128, p_ud64, p_ud32, p_mid, p_owner)
               WITH ORDINALITY AS m(id, debit, credit, amount, code, ledger, user_data,
                                    ud128, ud64, ud32, mid, owner, i)
          LEFT JOIN customer_accounts cs ON m.owner IS NOT NULL AND cs.id = m.debit
          LEFT JOIN customer_accounts ct ON m.owner IS NOT NULL AND ct.id = m.credit
          LEFT JOIN ledger_transfers t ON t.id = m.id
          LEFT JOIN ledger_accounts d ON d.id = m.debit
          LEFT JOIN ledger_accounts c ON c.id = m.credit;
        -- 4. the sequence numbers of the applied members, increasing in member order
        v_applied := cardinality(array_positions(results, 'ok'));
        IF v_applied > 0 THEN
            SELECT array_agg(nextval('ledger_transfers_seq')) INTO v_seqs
              FROM generate_series(1, v_applied);
            -- 5. balances, transfers, entries and history rows
            WITH ok AS (
                SELECT m.*, row_number() OVER (ORDER BY m.i) AS j
                  FROM unnest(p_now, p_id, p_debit, p_credit, p_amount, p_code, p_ledger,
                              p_user_data, p_ud128, p_ud64, p_ud32)
                       WITH ORDINALITY AS m(now, id, debit, credit, amount, code, ledger,
                                            user_data, ud128, ud64, ud32, i)
                 WHERE results[m.i] = 'ok'
            ), moved AS (
                UPDATE ledger_accounts a
                   SET debits_posted = a.debits_posted + x.debit_amount,
                       credits_posted = a.credits_posted + x.credit_amount
                  FROM (SELECT ok.debit AS id, ok.amount AS debit_amount, 0 AS credit_amount
                          FROM ok
                        UNION ALL
                        SELECT ok.credit, 0, ok.amount FROM ok) AS x
                 WHERE a.id = x.id
                RETURNING a.id, a.flags, a.debits_pending, a.debits_posted, a.credits_pending,
                          a.credits_posted
            ), stored AS (
                INSERT INTO ledger_transfers (
                    id, req_debit_id, req_credit_id, req_amount, pending_id, flags, code,
                    ledger, timeout_seconds, user_data, user_data_128, user_data_64,
                    user_data_32, debit_account_id, credit_account_id, amount, status,
                    expires_at, created_at, seq)
                SELECT ok.id, ok.debit, ok.credit, ok.amount, NULL, 0, ok.code, ok.ledger, 0,
                       ok.user_data, ok.ud128, ok.ud64, ok.ud32, ok.debit, ok.credit, ok.amount,
                       'none', NULL, ok.now, v_seqs[ok.j]
                  FROM ok ORDER BY ok.i
                ON CONFLICT (id) DO NOTHING
                RETURNING 1
            ), entries AS (
                INSERT INTO ledger_entries (account_id, transfer_id, side, amount,
                                            balance_after, code, created_at, user_data)
                SELECT e.account_id, ok.id, e.side, ok.amount, e.balance_after, ok.code,
                       ok.now, ok.user_data
                  FROM ok
                  JOIN moved d ON d.id = ok.debit
                  JOIN moved c ON c.id = ok.credit
                 CROSS JOIN LATERAL (VALUES
                       (1, ok.debit, 'debit', d.credits_posted - d.debits_posted),
                       (2, ok.credit, 'credit', c.credits_posted - c.debits_posted))
                       AS e(ord, account_id, side, balance_after)
                 ORDER BY ok.i, e.ord
            ), history AS (
                INSERT INTO ledger_account_balances (
                    account_id, created_at, seq, transfer_id, is_debit, code, user_data_128,
                    user_data_64, user_data_32, debits_pending, debits_posted, credits_pending,
                    credits_posted)
                SELECT a.id, ok.now, v_seqs[ok.j], ok.id, a.id = ok.debit, ok.code, ok.ud128,
                       ok.ud64, ok.ud32, a.debits_pending, a.debits_posted, a.credits_pending,
                       a.credits_posted
                  FROM ok JOIN moved a ON a.id = ok.debit OR a.id = ok.credit
                 WHERE a.flags & 8 <> 0
            )
            SELECT count(*) INTO v_stored FROM stored;
            IF v_stored <> v_applied THEN
                RAISE EXCEPTION 'a transfer id was stored concurrently'
                    USING ERRCODE = 'serialization_failure';
            END IF;
        END IF;
    ELSE
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
    END IF;
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

CREATE OR REPLACE FUNCTION ledger_create_transfer_group(
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
LANGUAGE sql AS $$
    SELECT ledger_create_checked_transfer_group(
        p_now, p_id, p_debit, p_credit, p_amount, p_code, p_ledger, p_user_data, p_ud128,
        p_ud64, p_ud32, p_mid,
        array_fill(NULL::text, ARRAY[coalesce(array_length(p_id, 1), 0)]),
        p_event_group, p_event_id, p_event_agg, p_event_type, p_event_topic, p_event_occurred,
        p_event_envelope);
$$;
