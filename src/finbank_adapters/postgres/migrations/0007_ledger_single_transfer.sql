-- A fast path for the commonest call: one single-phase transfer (no pending,
-- post, void or link flag). Same semantics and result codes as
-- ledger_create_transfers, and the same global lock order (accounts sorted by
-- id, then outbox advisory locks), without the array machinery a batch needs.
-- Returns NULL when a pending transfer is due to expire: the caller then uses
-- ledger_create_transfers, which expires it first.
CREATE FUNCTION ledger_create_transfer(
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
