-- ledger_create_transfer (0010) with three statements fewer per applied transfer, the
-- same answers and the same stored rows. It runs for every plain transfer: alone
-- (PostgresLedger's fast path, pgbench's floor), and per member of the grouped
-- functions (0024, 0026), whose PostgreSQL cost per HTTP transfer it mostly is.
--
-- * The two accounts are locked and read by the same statements (SELECT ... FOR
--   UPDATE, in id order: uuid's < is its btree order, as 0010's ORDER BY a.id), instead
--   of one statement that locked them and two that read them.
-- * The transfer id is looked up once, after the locks, instead of before and again
--   after them. The second look-up was what mattered (0009: a replay that committed
--   while this call waited for the locks answers exists, not a check against the
--   balances it moved); the first let a replay answer without waiting for the
--   accounts' locks. A replay now waits for them too, and answers as before. The
--   order of the answers is unchanged: exists / exists_with_different_fields, then
--   p_mid, then the accounts' checks.
-- * Both balances are moved by one UPDATE of the two rows; the new balances, which
--   the entries and the history rows carry, are computed from the rows read under the
--   lock, as the two UPDATE ... RETURNING gave them (a debit and a credit account that
--   are the same row, which every caller refuses through p_mid, keep 0010's values too).

CREATE OR REPLACE FUNCTION ledger_create_transfer(
    p_now            timestamptz,
    p_id             uuid,
    p_debit          uuid,
    p_credit         uuid,
    p_amount         bigint,
    p_code           integer,
    p_ledger         integer,
    p_user_data      text,
    p_ud128          uuid,
    p_ud64           bigint,
    p_ud32           integer,
    p_mid            text,
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
    v_seq bigint;
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_transfers t
                WHERE t.status = 'pending' AND t.expires_at <= p_now) THEN
        RETURN NULL;
    END IF;

    -- lock and read both accounts, in id order (no deadlock with any other locker)
    IF p_debit < p_credit THEN
        SELECT * INTO d FROM ledger_accounts a WHERE a.id = p_debit FOR UPDATE;
        SELECT * INTO c FROM ledger_accounts a WHERE a.id = p_credit FOR UPDATE;
    ELSE
        SELECT * INTO c FROM ledger_accounts a WHERE a.id = p_credit FOR UPDATE;
        SELECT * INTO d FROM ledger_accounts a WHERE a.id = p_debit FOR UPDATE;
    END IF;
    -- after the locks: a replay committed while this call waited for them is seen
    SELECT * INTO st FROM ledger_transfers t WHERE t.id = p_id;
    IF FOUND THEN
        IF st.req_debit_id IS NOT DISTINCT FROM p_debit
           AND st.req_credit_id IS NOT DISTINCT FROM p_credit
           AND st.req_amount = p_amount
           AND st.pending_id IS NULL AND st.flags = 0 AND st.timeout_seconds = 0
           AND st.inherited = 0 AND st.code = p_code AND st.ledger = p_ledger
           AND st.user_data IS NOT DISTINCT FROM p_user_data
           AND st.user_data_128 = p_ud128 AND st.user_data_64 = p_ud64
           AND st.user_data_32 = p_ud32 THEN
            RETURN 'exists';
        END IF;
        RETURN 'exists_with_different_fields';
    END IF;
    IF p_mid IS NOT NULL THEN RETURN p_mid; END IF;
    IF d.id IS NULL THEN RETURN 'debit_account_not_found'; END IF;
    IF c.id IS NULL THEN RETURN 'credit_account_not_found'; END IF;
    IF d.ledger <> c.ledger THEN RETURN 'accounts_must_have_the_same_ledger'; END IF;
    IF p_ledger <> d.ledger THEN RETURN 'transfer_must_have_the_same_ledger_as_accounts'; END IF;
    IF d.flags & 32 <> 0 OR d.closed THEN RETURN 'debit_account_already_closed'; END IF;
    IF c.flags & 32 <> 0 OR c.closed THEN RETURN 'credit_account_already_closed'; END IF;
    IF d.debits_pending > c_max - d.debits_posted - p_amount
       OR c.credits_pending > c_max - c.credits_posted - p_amount THEN
        RETURN 'overflows';
    END IF;
    IF d.flags & 1 <> 0 AND d.debits_pending + d.debits_posted + p_amount > d.credits_posted THEN
        RETURN 'exceeds_credits';
    END IF;
    IF c.flags & 2 <> 0 AND c.credits_pending + c.credits_posted + p_amount > c.debits_posted THEN
        RETURN 'exceeds_debits';
    END IF;

    UPDATE ledger_accounts a
       SET debits_posted = a.debits_posted + CASE WHEN a.id = p_debit THEN p_amount ELSE 0 END,
           credits_posted = a.credits_posted + CASE WHEN a.id = p_credit THEN p_amount ELSE 0 END
     WHERE a.id IN (p_debit, p_credit);
    d.debits_posted := d.debits_posted + p_amount;
    c.credits_posted := c.credits_posted + p_amount;
    IF p_debit = p_credit THEN  -- one row: 0010's second RETURNING saw both moves
        c.debits_posted := d.debits_posted;
    END IF;
    v_seq := nextval('ledger_transfers_seq');
    INSERT INTO ledger_transfers (
        id, req_debit_id, req_credit_id, req_amount, pending_id, flags, code, ledger,
        timeout_seconds, user_data, user_data_128, user_data_64, user_data_32,
        debit_account_id, credit_account_id, amount, status, expires_at, created_at, seq)
    VALUES (p_id, p_debit, p_credit, p_amount, NULL, 0, p_code, p_ledger, 0, p_user_data,
            p_ud128, p_ud64, p_ud32, p_debit, p_credit, p_amount, 'none', NULL, p_now, v_seq)
    ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the transfer id was stored concurrently'
            USING ERRCODE = 'serialization_failure';
    END IF;
    INSERT INTO ledger_entries (account_id, transfer_id, side, amount, balance_after, code,
                                created_at, user_data)
    VALUES (p_debit, p_id, 'debit', p_amount, d.credits_posted - d.debits_posted, p_code, p_now,
            p_user_data),
           (p_credit, p_id, 'credit', p_amount, c.credits_posted - c.debits_posted, p_code,
            p_now, p_user_data);
    IF d.flags & 8 <> 0 OR c.flags & 8 <> 0 THEN
        INSERT INTO ledger_account_balances (
            account_id, created_at, seq, transfer_id, is_debit, code, user_data_128,
            user_data_64, user_data_32, debits_pending, debits_posted, credits_pending,
            credits_posted)
        SELECT a.id, p_now, v_seq, p_id, a.id = p_debit, p_code, p_ud128, p_ud64, p_ud32,
               a.dp, a.dpo, a.cp, a.cpo
          FROM (VALUES (d.id, d.flags, d.debits_pending, d.debits_posted, d.credits_pending,
                        d.credits_posted),
                       (c.id, c.flags, c.debits_pending, c.debits_posted, c.credits_pending,
                        c.credits_posted)) AS a(id, flags, dp, dpo, cp, cpo)
         WHERE a.flags & 8 <> 0;
    END IF;
    IF p_event_id IS NOT NULL THEN
        PERFORM outbox_append(p_event_id, p_event_agg, p_event_type, p_event_topic,
                              p_event_occurred, p_event_envelope);
    END IF;
    RETURN 'ok';
END;
$$;
