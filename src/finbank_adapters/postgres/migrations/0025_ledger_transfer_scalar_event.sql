-- One plain transfer with exactly one outbox event, the event's six values as
-- scalars (the commonest write with an event: a transfer and its
-- TransferCompleted). ledger_create_transfer takes events as six parallel
-- arrays; for one event the client encoded six one-element arrays, which cost
-- more client CPU than the rest of the call's arguments together. This takes
-- the same transfer arguments, runs ledger_create_transfer without events and,
-- when (and only when) it answers 'ok', appends the event through
-- outbox_append: exactly where ledger_create_transfer appends its events (after
-- every other lock and write of the transfer, only on 'ok'), with the same
-- function, so the outbox row, its advisory lock and ON CONFLICT handling are
-- the array path's. Any other answer (exists, a refusal, NULL when a pending
-- transfer is due to expire) appends nothing and is returned as it is; errors
-- propagate unchanged. ledger_create_transfer and its array form are kept for
-- every other call.
CREATE FUNCTION ledger_create_transfer_event(
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
    p_event_id       uuid,
    p_event_agg      text,
    p_event_type     text,
    p_event_topic    text,
    p_event_occurred timestamptz,
    p_event_envelope bytea
) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    res text;
BEGIN
    res := ledger_create_transfer(p_now, p_id, p_debit, p_credit, p_amount, p_code, p_ledger,
                                  p_user_data, p_ud128, p_ud64, p_ud32, p_mid);
    IF res = 'ok' THEN
        PERFORM outbox_append(ARRAY[p_event_id], ARRAY[p_event_agg], ARRAY[p_event_type],
                              ARRAY[p_event_topic], ARRAY[p_event_occurred],
                              ARRAY[p_event_envelope]);
    END IF;
    RETURN res;
END;
$$;
