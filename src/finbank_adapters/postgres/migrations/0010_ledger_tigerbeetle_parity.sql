-- The ledger's TigerBeetle features and result-code parity (the rules are
-- finbank_core.accounts.ledger_rules; this file is their plpgsql form).
--
-- Division of labour with the adapter (finbank_adapters.postgres.ledger):
-- every check that needs no stored state (batch checks, reserved flags,
-- values outside their type, reserved ids, the stateless checks after the
-- `exists` check) is worked out in Python, in one place, and passed in as a
-- result code per event at its position in the order: p_pre (before the
-- `exists` check), p_mid (right after it), p_late (imported_event_timeout_must_be_zero
-- or overflows_timeout, at their own positions). An event with a p_pre code
-- carries zeros in its value columns: out-of-range values never reach the
-- driver. The functions here do the checks that need the stored state, in
-- the same order.
--
-- Integer widths: ledger and timeout are u32, user_data_32 u32, user_data_64
-- u64; they are stored with their bit pattern in integer / bigint columns
-- (two's complement: 2^32-1 is stored as -1), which the adapter converts in
-- both directions. Only equality and "is zero" are ever asked of them in SQL.
-- user_data_128 is stored as a uuid with the same 128 bits. Adding columns
-- with constant defaults rewrites nothing.
--
-- Transfers: code, ledger, user_data and user_data_128/64/32 hold the
-- RESOLVED values (a post/void that leaves them 0/NULL takes the pending
-- transfer's); `inherited` says which of them the request left 0/NULL (bits:
-- 1 code, 2 ledger, 4 user_data, 8 user_data_128, 16 user_data_64,
-- 32 user_data_32), so the request is still known exactly for replays.
-- created_at is the transfer's timestamp (the caller's for an imported
-- one); seq orders transfers created at the same timestamp.
--
-- Accounts: flags are the flags the account was created with; `closed`
-- says a pending closing transfer has closed it since (voiding or expiring
-- that transfer clears it). The account reads as flags | CLOSED.

ALTER TABLE ledger_accounts
    ADD COLUMN user_data_128 uuid    NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    ADD COLUMN user_data_64  bigint  NOT NULL DEFAULT 0,
    ADD COLUMN user_data_32  integer NOT NULL DEFAULT 0,
    ADD COLUMN closed        boolean NOT NULL DEFAULT false;

-- imported accounts must postdate every account: the latest is one index probe
CREATE INDEX ledger_accounts_created_at_idx ON ledger_accounts (created_at);

CREATE SEQUENCE ledger_transfers_seq AS bigint;

ALTER TABLE ledger_transfers
    ADD COLUMN user_data_128 uuid     NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000',
    ADD COLUMN user_data_64  bigint   NOT NULL DEFAULT 0,
    ADD COLUMN user_data_32  integer  NOT NULL DEFAULT 0,
    ADD COLUMN inherited     smallint NOT NULL DEFAULT 0,
    ADD COLUMN seq           bigint;  -- NULL for transfers stored before this migration
ALTER TABLE ledger_transfers ALTER COLUMN seq SET DEFAULT nextval('ledger_transfers_seq');
-- a closing transfer may move 0 (every stored row has amount > 0: no need to validate)
ALTER TABLE ledger_transfers
    DROP CONSTRAINT ledger_transfers_amount_check,
    ADD CONSTRAINT ledger_transfers_amount_check CHECK (amount >= 0) NOT VALID;
ALTER SEQUENCE ledger_transfers_seq OWNED BY ledger_transfers.seq;

-- Transfers stored before: a post/void that left code or user_data empty now
-- shows the pending transfer's (what it inherits), and so do its entries.
UPDATE ledger_transfers t
   SET inherited = (CASE WHEN t.code = 0 THEN 1 ELSE 0 END)
                 | (CASE WHEN t.user_data IS NULL THEN 4 ELSE 0 END) | 8 | 16 | 32,
       code = CASE WHEN t.code = 0 THEN p.code ELSE t.code END,
       user_data = coalesce(t.user_data, p.user_data)
  FROM ledger_transfers p
 WHERE t.pending_id IS NOT NULL AND p.id = t.pending_id;
UPDATE ledger_entries e
   SET code = t.code, user_data = t.user_data
  FROM ledger_transfers t
 WHERE t.pending_id IS NOT NULL
   AND e.account_id IN (t.debit_account_id, t.credit_account_id)
   AND e.transfer_id = t.id
   AND (e.code, e.user_data) IS DISTINCT FROM (t.code, t.user_data);

-- query_transfers (time order, and the imported watermark), get_account_transfers
CREATE INDEX ledger_transfers_created_at_idx ON ledger_transfers (created_at, seq);
CREATE INDEX ledger_transfers_debit_idx ON ledger_transfers (debit_account_id, created_at, seq);
CREATE INDEX ledger_transfers_credit_idx ON ledger_transfers (credit_account_id, created_at, seq);
-- user data filters: only transfers that carry some are indexed
CREATE INDEX ledger_transfers_ud128_idx ON ledger_transfers (user_data_128, created_at, seq)
    WHERE user_data_128 <> '00000000-0000-0000-0000-000000000000';
CREATE INDEX ledger_transfers_ud64_idx ON ledger_transfers (user_data_64, created_at, seq)
    WHERE user_data_64 <> 0;
CREATE INDEX ledger_transfers_ud32_idx ON ledger_transfers (user_data_32, created_at, seq)
    WHERE user_data_32 <> 0;

-- Balances of accounts flagged history (8) after each transfer that touched
-- them; the transfer's code and user data are copied so filters need no join.
CREATE TABLE ledger_account_balances (
    account_id      uuid        NOT NULL,
    created_at      timestamptz NOT NULL,
    seq             bigint      NOT NULL,
    transfer_id     uuid        NOT NULL,
    is_debit        boolean     NOT NULL,
    code            integer     NOT NULL,
    user_data_128   uuid        NOT NULL,
    user_data_64    bigint      NOT NULL,
    user_data_32    integer     NOT NULL,
    debits_pending  bigint      NOT NULL,
    debits_posted   bigint      NOT NULL,
    credits_pending bigint      NOT NULL,
    credits_posted  bigint      NOT NULL,
    PRIMARY KEY (account_id, created_at, seq)
);

DROP FUNCTION ledger_create_accounts(timestamptz, uuid[], integer[], integer[], integer[]);
DROP FUNCTION ledger_create_transfers(
    timestamptz, uuid[], uuid[], uuid[], bigint[], uuid[], integer[], integer[], integer[],
    integer[], text[], integer[], integer[], uuid[], integer[], integer[], uuid[], text[],
    text[], text[], timestamptz[], bytea[]);
DROP FUNCTION ledger_create_transfer(
    timestamptz, uuid, uuid, uuid, bigint, uuid, integer, integer, integer, text, uuid[],
    text[], text[], text[], timestamptz[], bytea[]);
DROP FUNCTION ledger_lookup_accounts(timestamptz, uuid[]);


-- Create accounts in order (linked chains all or nothing). p_pre / p_mid as
-- for transfers; p_first[i] is the first batch position with account i's id.
-- A concurrent creation of an id of the batch makes the insert come short:
-- SQLSTATE 40001, and the retry answers exists.
CREATE FUNCTION ledger_create_accounts(
    p_now      timestamptz,
    p_id       uuid[],
    p_code     integer[],
    p_flags    integer[],
    p_ledger   integer[],
    p_ud128    uuid[],
    p_ud64     bigint[],
    p_ud32     integer[],
    p_ts       timestamptz[],
    p_pre      text[],
    p_mid      text[],
    p_first    integer[],
    p_imported boolean
) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    n integer := coalesce(array_length(p_id, 1), 0);
    st_at integer[]; st_id uuid[]; st_code integer[]; st_flags integer[]; st_ledger integer[];
    st_ud128 uuid[]; st_ud64 bigint[]; st_ud32 integer[];
    live integer[]; s_live integer[];
    results text[];
    v_wm timestamptz; s_wm timestamptz;
    chain_start integer := 0; chain_failed boolean := false;
    i integer; j integer; k integer; linked boolean; res text;
    v_expected integer := 0; v_inserted integer;
BEGIN
    IF n = 0 THEN
        RETURN '{}';
    END IF;
    IF p_imported THEN
        -- imported batches one at a time, so that the watermark holds
        PERFORM pg_advisory_xact_lock(1279872336, 1);  -- 1279872336: 'LIMP'
        SELECT max(created_at) INTO v_wm FROM ledger_accounts;
    END IF;
    SELECT array_agg(a.id), array_agg(a.code), array_agg(a.flags), array_agg(a.ledger),
           array_agg(a.user_data_128), array_agg(a.user_data_64), array_agg(a.user_data_32)
      INTO st_id, st_code, st_flags, st_ledger, st_ud128, st_ud64, st_ud32
      FROM ledger_accounts a WHERE a.id = ANY (p_id);
    st_at := array_fill(NULL::integer, ARRAY[n]);
    IF st_id IS NOT NULL THEN
        FOR k IN 1 .. array_length(st_id, 1) LOOP
            st_at[array_position(p_id, st_id[k])] := k;
        END LOOP;
    END IF;
    live := array_fill(0, ARRAY[n]);
    results := array_fill(NULL::text, ARRAY[n]);

    FOR i IN 1 .. n LOOP
        linked := p_flags[i] & 4 <> 0;
        IF chain_start = 0 AND linked THEN
            chain_start := i; chain_failed := false; s_live := live; s_wm := v_wm;
        END IF;
        IF chain_start > 0 AND chain_failed THEN
            res := 'linked_event_failed';
        ELSIF p_pre[i] IS NOT NULL THEN
            res := p_pre[i];
        ELSE
            <<apply>>
            BEGIN
                k := st_at[p_first[i]];
                IF k IS NOT NULL THEN
                    res := CASE WHEN (st_flags[k], st_ud128[k], st_ud64[k], st_ud32[k],
                                      st_ledger[k], st_code[k])
                                   = (p_flags[i], p_ud128[i], p_ud64[i], p_ud32[i],
                                      p_ledger[i], p_code[i])
                                THEN 'exists' ELSE 'exists_with_different_fields' END;
                    EXIT apply;
                END IF;
                j := live[p_first[i]];
                IF j > 0 THEN
                    res := CASE WHEN (p_flags[j], p_ud128[j], p_ud64[j], p_ud32[j],
                                      p_ledger[j], p_code[j])
                                   = (p_flags[i], p_ud128[i], p_ud64[i], p_ud32[i],
                                      p_ledger[i], p_code[i])
                                THEN 'exists' ELSE 'exists_with_different_fields' END;
                    EXIT apply;
                END IF;
                IF p_mid[i] IS NOT NULL THEN
                    res := p_mid[i]; EXIT apply;
                END IF;
                IF p_flags[i] & 16 <> 0 AND v_wm IS NOT NULL AND p_ts[i] <= v_wm THEN
                    res := 'imported_event_timestamp_must_not_regress'; EXIT apply;
                END IF;
                live[p_first[i]] := i;
                IF v_wm IS NULL OR p_ts[i] > v_wm THEN
                    v_wm := p_ts[i];
                END IF;
                res := 'ok';
            END apply;
        END IF;
        results[i] := res;
        IF chain_start > 0 AND res <> 'ok' AND NOT chain_failed THEN
            chain_failed := true;
            live := s_live; v_wm := s_wm;
            FOR j IN chain_start .. i - 1 LOOP
                results[j] := 'linked_event_failed';
            END LOOP;
        END IF;
        IF chain_start > 0 AND NOT linked THEN
            chain_start := 0;
        END IF;
    END LOOP;

    FOR i IN 1 .. n LOOP
        IF results[i] = 'ok' THEN
            v_expected := v_expected + 1;
        END IF;
    END LOOP;
    IF v_expected > 0 THEN
        INSERT INTO ledger_accounts (id, code, flags, ledger, user_data_128, user_data_64,
                                     user_data_32, created_at)
        SELECT p_id[s.i], p_code[s.i], p_flags[s.i], p_ledger[s.i], p_ud128[s.i], p_ud64[s.i],
               p_ud32[s.i], p_ts[s.i]
          FROM generate_subscripts(p_id, 1) AS s(i)
         WHERE results[s.i] = 'ok'
         ORDER BY p_id[s.i]  -- batches racing on the same ids wait, not deadlock
        ON CONFLICT (id) DO NOTHING;
        GET DIAGNOSTICS v_inserted = ROW_COUNT;
        IF v_inserted <> v_expected THEN
            RAISE EXCEPTION 'an account id of this batch was stored concurrently'
                USING ERRCODE = 'serialization_failure';
        END IF;
    END IF;
    RETURN results;
END;
$$;


-- Void every live pending transfer whose timeout has passed at p_now (and
-- reopen the accounts a closing one closed). Lock order as before:
-- transfers sorted, then accounts sorted.
CREATE OR REPLACE FUNCTION ledger_expire(p_now timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_ids uuid[];
    v_accounts uuid[];
BEGIN
    SELECT array_agg(t.id ORDER BY t.id),
           array_agg(t.debit_account_id) || array_agg(t.credit_account_id)
      INTO v_ids, v_accounts
      FROM (SELECT t.id, t.debit_account_id, t.credit_account_id
              FROM ledger_transfers t
             WHERE t.status = 'pending' AND t.expires_at <= p_now
             ORDER BY t.id
               FOR UPDATE SKIP LOCKED) t;
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM 1 FROM ledger_accounts a WHERE a.id = ANY (v_accounts) ORDER BY a.id FOR UPDATE;
    WITH expired AS (
        UPDATE ledger_transfers t SET status = 'expired'
         WHERE t.id = ANY (v_ids) AND t.status = 'pending'
        RETURNING t.debit_account_id, t.credit_account_id, t.amount, t.flags
    ), moves AS (
        SELECT debit_account_id AS id, amount AS debits, 0::bigint AS credits,
               flags & 64 <> 0 AS reopen FROM expired
        UNION ALL
        SELECT credit_account_id, 0::bigint, amount, flags & 128 <> 0 FROM expired
    ), totals AS (
        SELECT id, sum(debits)::bigint AS debits, sum(credits)::bigint AS credits,
               bool_or(reopen) AS reopen
          FROM moves GROUP BY id
    )
    UPDATE ledger_accounts a
       SET debits_pending = a.debits_pending - totals.debits,
           credits_pending = a.credits_pending - totals.credits,
           closed = a.closed AND NOT totals.reopen
      FROM totals
     WHERE a.id = totals.id;
    RETURN array_length(v_ids, 1);
END;
$$;


-- Accounts by id (expiring due pending transfers first, so balances are "now").
CREATE FUNCTION ledger_lookup_accounts(p_now timestamptz, p_ids uuid[])
RETURNS SETOF ledger_accounts
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_transfers
                WHERE status = 'pending' AND expires_at <= p_now) THEN
        PERFORM ledger_expire(p_now);
    END IF;
    RETURN QUERY SELECT * FROM ledger_accounts WHERE id = ANY (p_ids);
END;
$$;


-- query_transfers / get_account_transfers: one function, the account filter
-- is NULL for query_transfers. Zero user data / code / ledger match anything.
-- Dynamic SQL so that each call is planned with its own values: the order by
-- (created_at, seq) then comes straight from an index.
CREATE FUNCTION ledger_query_transfers(
    p_now      timestamptz,
    p_account  uuid,
    p_debits   boolean,
    p_credits  boolean,
    p_ud128    uuid,
    p_ud64     bigint,
    p_ud32     integer,
    p_ledger   integer,
    p_code     integer,
    p_min      timestamptz,
    p_max      timestamptz,
    p_limit    integer,
    p_reversed boolean
) RETURNS SETOF ledger_transfers
LANGUAGE plpgsql AS $$
DECLARE
    v_dir  text := CASE WHEN p_reversed THEN 'DESC' ELSE 'ASC' END;
    v_cond text := '';
    v_order text;
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_transfers
                WHERE status = 'pending' AND expires_at <= p_now) THEN
        PERFORM ledger_expire(p_now);
    END IF;
    v_order := format(' ORDER BY created_at %s, seq %s LIMIT $9', v_dir, v_dir);
    IF p_ud128 <> '00000000-0000-0000-0000-000000000000' THEN
        v_cond := v_cond || ' AND user_data_128 = $3';
    END IF;
    IF p_ud64 <> 0 THEN v_cond := v_cond || ' AND user_data_64 = $4'; END IF;
    IF p_ud32 <> 0 THEN v_cond := v_cond || ' AND user_data_32 = $5'; END IF;
    IF p_ledger <> 0 THEN v_cond := v_cond || ' AND ledger = $6'; END IF;
    IF p_code <> 0 THEN v_cond := v_cond || ' AND code = $7'; END IF;
    IF p_min IS NOT NULL THEN v_cond := v_cond || ' AND created_at >= $1'; END IF;
    IF p_max IS NOT NULL THEN v_cond := v_cond || ' AND created_at <= $2'; END IF;
    IF p_account IS NULL THEN
        RETURN QUERY EXECUTE 'SELECT * FROM ledger_transfers WHERE true' || v_cond || v_order
            USING p_min, p_max, p_ud128, p_ud64, p_ud32, p_ledger, p_code, p_account, p_limit;
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ledger_accounts WHERE id = p_account) THEN
        RETURN;
    END IF;
    IF p_debits AND p_credits THEN
        RETURN QUERY EXECUTE
            '(SELECT * FROM ledger_transfers WHERE debit_account_id = $8' || v_cond || v_order
            || ') UNION ALL (SELECT * FROM ledger_transfers WHERE credit_account_id = $8'
            || v_cond || v_order || ')' || v_order
            USING p_min, p_max, p_ud128, p_ud64, p_ud32, p_ledger, p_code, p_account, p_limit;
    ELSIF p_debits THEN
        RETURN QUERY EXECUTE
            'SELECT * FROM ledger_transfers WHERE debit_account_id = $8' || v_cond || v_order
            USING p_min, p_max, p_ud128, p_ud64, p_ud32, p_ledger, p_code, p_account, p_limit;
    ELSE
        RETURN QUERY EXECUTE
            'SELECT * FROM ledger_transfers WHERE credit_account_id = $8' || v_cond || v_order
            USING p_min, p_max, p_ud128, p_ud64, p_ud32, p_ledger, p_code, p_account, p_limit;
    END IF;
END;
$$;


-- get_account_balances: the history of one account (flagged history).
CREATE FUNCTION ledger_account_balances_of(
    p_now      timestamptz,
    p_account  uuid,
    p_debits   boolean,
    p_credits  boolean,
    p_ud128    uuid,
    p_ud64     bigint,
    p_ud32     integer,
    p_code     integer,
    p_min      timestamptz,
    p_max      timestamptz,
    p_limit    integer,
    p_reversed boolean
) RETURNS SETOF ledger_account_balances
LANGUAGE plpgsql AS $$
DECLARE
    v_dir  text := CASE WHEN p_reversed THEN 'DESC' ELSE 'ASC' END;
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_transfers
                WHERE status = 'pending' AND expires_at <= p_now) THEN
        PERFORM ledger_expire(p_now);
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT * FROM ledger_account_balances
          WHERE account_id = $1
            AND (CASE WHEN is_debit THEN $2 ELSE $3 END)
            AND ($4 IS NULL OR created_at >= $4)
            AND ($5 IS NULL OR created_at <= $5)
            AND ($6 = ''00000000-0000-0000-0000-000000000000'' OR user_data_128 = $6)
            AND ($7 = 0 OR user_data_64 = $7)
            AND ($8 = 0 OR user_data_32 = $8)
            AND ($9 = 0 OR code = $9)
          ORDER BY created_at %s, seq %s
          LIMIT $10', v_dir, v_dir)
        USING p_account, p_debits, p_credits, p_min, p_max, p_ud128, p_ud64, p_ud32, p_code,
              p_limit;
END;
$$;


-- Apply a batch of transfers in one call (one transaction in autocommit).
-- Returns one result per transfer, in order.
--
-- The caller precomputes what needs no database: p_pre / p_mid / p_late (see
-- the top of this file); p_ts[i], transfer i's timestamp (now, or the
-- imported one); p_expires[i], when a pending transfer with a timeout
-- expires; p_first[i], the first batch position with transfer i's id;
-- p_pfirst[i], the first batch position whose id is transfer i's pending_id;
-- p_accounts, the distinct debit/credit ids of the batch sorted as
-- PostgreSQL sorts uuids, and p_dslot[i] / p_cslot[i], the 1-based slots of
-- transfer i's accounts in it; p_imported, whether the batch is imported.
--
-- Locking (one global order, so lock waits cannot form a cycle): (1) the
-- stored transfers the batch resolves plus every due pending transfer,
-- sorted by id; (2) every account any of them or the batch touches, sorted
-- by id; (3) new rows only; (4) outbox advisory locks, sorted, last. An
-- imported batch first takes an advisory lock of its own (imported batches
-- run one at a time, so the "must not regress" watermark holds among them).
--
-- The batch is then computed in memory (arrays): due pending transfers are
-- expired first (their statuses are snapshotted BEFORE that, so the expiry
-- is written with the balances: the fix of migration 0009), linked chains
-- roll back by restoring a snapshot taken at the chain's start, and the
-- outcome is written set-based.
--
-- Idempotency: a transfer whose id is stored answers exists /
-- exists_with_different_fields. If a transaction with the same id (and other
-- accounts, so not serialised by our locks) commits between our check and our
-- insert, the insert comes short and the call raises SQLSTATE 40001: the
-- caller retries and then sees the stored row.
CREATE FUNCTION ledger_create_transfers(
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
    p_imported       boolean,
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
    c_zero       CONSTANT uuid := '00000000-0000-0000-0000-000000000000';
    c_linked     CONSTANT integer := 1;
    c_pending    CONSTANT integer := 2;
    c_post       CONSTANT integer := 4;
    c_void       CONSTANT integer := 8;
    c_bal_debit  CONSTANT integer := 16;
    c_bal_credit CONSTANT integer := 32;
    c_close_dr   CONSTANT integer := 64;
    c_close_cr   CONSTANT integer := 128;
    c_imported   CONSTANT integer := 256;
    n            integer := coalesce(array_length(p_id, 1), 0);
    -- stored transfers locked for resolution or expiry
    tr_id uuid[]; tr_debit uuid[]; tr_credit uuid[]; tr_amount bigint[]; tr_flags integer[];
    tr_code integer[]; tr_ledger integer[]; tr_user_data text[]; tr_ud128 uuid[];
    tr_ud64 bigint[]; tr_ud32 integer[];
    tr_status text[]; tr_expires timestamptz[]; tr_status0 text[];
    tr_dbt integer[]; tr_crd integer[];
    -- locked accounts, sorted by id; indexes below point into these
    a_id uuid[]; a_flags integer[]; a_ledger integer[]; a_closed boolean[];
    a_created timestamptz[]; a_closed0 boolean[];
    a_dp bigint[]; a_dpo bigint[]; a_cp bigint[]; a_cpo bigint[];
    slot_idx integer[];  -- per slot of p_accounts: index into a_* (NULL: no such account)
    -- stored transfers with an id of the batch (replays); st_at: by first batch position
    st_at integer[]; st_id uuid[];
    st_debit uuid[]; st_credit uuid[]; st_amount bigint[]; st_pending uuid[]; st_flags integer[];
    st_code integer[]; st_ledger integer[]; st_timeout integer[]; st_user_data text[];
    st_ud128 uuid[]; st_ud64 bigint[]; st_ud32 integer[]; st_inh integer[];
    st_created timestamptz[];
    -- per first batch position: the position applied with that id (0: none)
    live integer[];
    b_status text[]; r_debit uuid[]; r_credit uuid[]; r_amount bigint[];
    r_code integer[]; r_ledger integer[]; r_user_data text[]; r_ud128 uuid[]; r_ud64 bigint[];
    r_ud32 integer[]; r_inh integer[];
    results text[];
    -- entries and history points to insert
    ne integer := 0;
    e_pos integer[] := '{}'; e_acc integer[] := '{}'; e_credit boolean[] := '{}';
    e_amount bigint[] := '{}'; e_balance bigint[] := '{}';
    nh integer := 0;
    h_pos integer[] := '{}'; h_acc integer[] := '{}'; h_debit boolean[] := '{}';
    h_dp bigint[] := '{}'; h_dpo bigint[] := '{}'; h_cp bigint[] := '{}'; h_cpo bigint[] := '{}';
    -- imported transfers must postdate every stored transfer
    v_wm timestamptz; s_wm timestamptz;
    -- chain state and its snapshot
    chain_start integer := 0;
    chain_failed boolean := false;
    s_dp bigint[]; s_dpo bigint[]; s_cp bigint[]; s_cpo bigint[]; s_closed boolean[];
    s_tr_status text[]; s_b_status text[]; s_live integer[]; s_ne integer; s_nh integer;
    -- loop temporaries
    i integer; j integer; k integer; d integer; c integer; pj integer;
    phase integer; linked boolean; posting boolean; is_pending boolean; do_post boolean;
    res text; amt bigint; fl integer;
    pd_flags integer; pd_debit uuid; pd_credit uuid; pd_amount bigint; pd_ledger integer;
    pd_code integer; pd_user_data text; pd_ud128 uuid; pd_ud64 bigint; pd_ud32 integer;
    pd_status text; pd_d integer; pd_c integer;
    v_expected integer; v_inserted integer; na integer; m integer;
    v_seqs bigint[]; t_seq bigint[];
BEGIN
    IF n = 0 THEN
        RETURN '{}';
    END IF;
    IF p_imported THEN
        PERFORM pg_advisory_xact_lock(1279872336, 2);  -- imported transfers
    END IF;

    -- (1) stored transfers to resolve or expire, locked in id order
    SELECT array_agg(t.id ORDER BY t.id), array_agg(t.debit_account_id ORDER BY t.id),
           array_agg(t.credit_account_id ORDER BY t.id), array_agg(t.amount ORDER BY t.id),
           array_agg(t.flags ORDER BY t.id), array_agg(t.code ORDER BY t.id),
           array_agg(t.ledger ORDER BY t.id), array_agg(t.user_data ORDER BY t.id),
           array_agg(t.user_data_128 ORDER BY t.id), array_agg(t.user_data_64 ORDER BY t.id),
           array_agg(t.user_data_32 ORDER BY t.id),
           array_agg(t.status ORDER BY t.id), array_agg(t.expires_at ORDER BY t.id)
      INTO tr_id, tr_debit, tr_credit, tr_amount, tr_flags, tr_code, tr_ledger, tr_user_data,
           tr_ud128, tr_ud64, tr_ud32, tr_status, tr_expires
      FROM (SELECT t.id, t.debit_account_id, t.credit_account_id, t.amount, t.flags, t.code,
                   t.ledger, t.user_data, t.user_data_128, t.user_data_64, t.user_data_32,
                   t.status, t.expires_at
              FROM ledger_transfers t
             WHERE t.id = ANY (p_pending)
                OR (t.status = 'pending' AND t.expires_at <= p_now)
             ORDER BY t.id
               FOR UPDATE) t;

    -- (2) every account involved, locked in id order
    SELECT array_agg(a.id ORDER BY a.id), array_agg(a.flags ORDER BY a.id),
           array_agg(a.ledger ORDER BY a.id), array_agg(a.closed ORDER BY a.id),
           array_agg(a.created_at ORDER BY a.id), array_agg(a.debits_pending ORDER BY a.id),
           array_agg(a.debits_posted ORDER BY a.id), array_agg(a.credits_pending ORDER BY a.id),
           array_agg(a.credits_posted ORDER BY a.id)
      INTO a_id, a_flags, a_ledger, a_closed, a_created, a_dp, a_dpo, a_cp, a_cpo
      FROM (SELECT a.id, a.flags, a.ledger, a.closed, a.created_at, a.debits_pending,
                   a.debits_posted, a.credits_pending, a.credits_posted
              FROM ledger_accounts a
             WHERE a.id = ANY (p_debit || p_credit || tr_debit || tr_credit)
             ORDER BY a.id
               FOR UPDATE) a;
    a_closed0 := a_closed;

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
        -- the statuses as stored, taken BEFORE the expiry below: every status
        -- that differs from these (expiries included) is written back
        tr_status0 := tr_status;
        FOR k IN 1 .. array_length(tr_id, 1) LOOP
            tr_dbt[k] := array_position(a_id, tr_debit[k]);
            tr_crd[k] := array_position(a_id, tr_credit[k]);
            -- expire what is due (the ledger's clock, not the server's)
            IF tr_status[k] = 'pending' AND tr_expires[k] <= p_now THEN
                a_dp[tr_dbt[k]] := a_dp[tr_dbt[k]] - tr_amount[k];
                a_cp[tr_crd[k]] := a_cp[tr_crd[k]] - tr_amount[k];
                IF tr_flags[k] & c_close_dr <> 0 THEN a_closed[tr_dbt[k]] := false; END IF;
                IF tr_flags[k] & c_close_cr <> 0 THEN a_closed[tr_crd[k]] := false; END IF;
                tr_status[k] := 'expired';
            END IF;
        END LOOP;
    END IF;

    IF p_imported THEN
        SELECT max(created_at) INTO v_wm FROM ledger_transfers;
    END IF;

    -- (3) transfers of the batch that are already stored (replays)
    SELECT array_agg(t.id), array_agg(t.req_debit_id), array_agg(t.req_credit_id),
           array_agg(t.req_amount), array_agg(t.pending_id), array_agg(t.flags),
           array_agg(t.code), array_agg(t.ledger), array_agg(t.timeout_seconds),
           array_agg(t.user_data), array_agg(t.user_data_128), array_agg(t.user_data_64),
           array_agg(t.user_data_32), array_agg(t.inherited), array_agg(t.created_at)
      INTO st_id, st_debit, st_credit, st_amount, st_pending, st_flags, st_code, st_ledger,
           st_timeout, st_user_data, st_ud128, st_ud64, st_ud32, st_inh, st_created
      FROM ledger_transfers t
     WHERE t.id = ANY (p_id);
    st_at := array_fill(NULL::integer, ARRAY[n]);
    IF st_id IS NOT NULL THEN
        FOR k IN 1 .. array_length(st_id, 1) LOOP
            st_at[array_position(p_id, st_id[k])] := k;
            -- the request as submitted: what the post/void inherited was 0/NULL
            IF st_inh[k] <> 0 THEN
                IF st_inh[k] & 1 <> 0 THEN st_code[k] := 0; END IF;
                IF st_inh[k] & 2 <> 0 THEN st_ledger[k] := 0; END IF;
                IF st_inh[k] & 4 <> 0 THEN st_user_data[k] := NULL; END IF;
                IF st_inh[k] & 8 <> 0 THEN st_ud128[k] := c_zero; END IF;
                IF st_inh[k] & 16 <> 0 THEN st_ud64[k] := 0; END IF;
                IF st_inh[k] & 32 <> 0 THEN st_ud32[k] := 0; END IF;
            END IF;
        END LOOP;
    END IF;

    live := array_fill(0, ARRAY[n]);
    b_status := array_fill(NULL::text, ARRAY[n]);
    r_debit := array_fill(NULL::uuid, ARRAY[n]);
    r_credit := array_fill(NULL::uuid, ARRAY[n]);
    r_amount := array_fill(NULL::bigint, ARRAY[n]);
    r_code := p_code; r_ledger := p_ledger; r_user_data := p_user_data;
    r_ud128 := p_ud128; r_ud64 := p_ud64; r_ud32 := p_ud32;
    r_inh := array_fill(0, ARRAY[n]);
    results := array_fill(NULL::text, ARRAY[n]);

    -- (4) the batch, in order, in memory
    FOR i IN 1 .. n LOOP
        fl := p_flags[i];
        linked := fl & c_linked <> 0;
        IF chain_start = 0 AND linked THEN
            chain_start := i;
            chain_failed := false;
            s_dp := a_dp; s_dpo := a_dpo; s_cp := a_cp; s_cpo := a_cpo; s_closed := a_closed;
            s_tr_status := tr_status; s_b_status := b_status; s_live := live;
            s_ne := ne; s_nh := nh; s_wm := v_wm;
        END IF;
        do_post := false;
        IF chain_start > 0 AND chain_failed THEN
            res := 'linked_event_failed';
        ELSIF p_pre[i] IS NOT NULL THEN
            res := p_pre[i];
        ELSE
            <<apply>>
            BEGIN
                k := st_at[p_first[i]];
                IF k IS NOT NULL THEN
                    IF st_debit[k] IS NOT DISTINCT FROM p_debit[i]
                       AND st_credit[k] IS NOT DISTINCT FROM p_credit[i]
                       AND st_amount[k] = p_amount[i]
                       AND st_pending[k] IS NOT DISTINCT FROM p_pending[i]
                       AND st_flags[k] = fl AND st_code[k] = p_code[i]
                       AND st_ledger[k] = p_ledger[i] AND st_timeout[k] = p_timeout[i]
                       AND st_user_data[k] IS NOT DISTINCT FROM p_user_data[i]
                       AND st_ud128[k] = p_ud128[i] AND st_ud64[k] = p_ud64[i]
                       AND st_ud32[k] = p_ud32[i]
                       AND (fl & c_imported = 0 OR st_created[k] = p_ts[i]) THEN
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
                       AND p_flags[j] = fl AND p_code[j] = p_code[i]
                       AND p_ledger[j] = p_ledger[i] AND p_timeout[j] = p_timeout[i]
                       AND p_user_data[j] IS NOT DISTINCT FROM p_user_data[i]
                       AND p_ud128[j] = p_ud128[i] AND p_ud64[j] = p_ud64[i]
                       AND p_ud32[j] = p_ud32[i]
                       AND (fl & c_imported = 0 OR p_ts[j] = p_ts[i]) THEN
                        res := 'exists';
                    ELSE
                        res := 'exists_with_different_fields';
                    END IF;
                    EXIT apply;
                END IF;
                IF p_mid[i] IS NOT NULL THEN
                    res := p_mid[i]; EXIT apply;
                END IF;
                phase := fl & (c_pending | c_post | c_void);

                IF phase & (c_post | c_void) <> 0 THEN
                    -- resolve a pending transfer
                    posting := phase = c_post;
                    pj := CASE WHEN p_pfirst[i] IS NULL THEN 0 ELSE live[p_pfirst[i]] END;
                    k := array_position(tr_id, p_pending[i]);
                    IF pj > 0 THEN
                        pd_flags := p_flags[pj]; pd_debit := r_debit[pj];
                        pd_credit := r_credit[pj]; pd_amount := r_amount[pj];
                        pd_ledger := r_ledger[pj]; pd_code := r_code[pj];
                        pd_user_data := r_user_data[pj]; pd_ud128 := r_ud128[pj];
                        pd_ud64 := r_ud64[pj]; pd_ud32 := r_ud32[pj];
                        pd_status := b_status[pj];
                        pd_d := slot_idx[p_dslot[pj]]; pd_c := slot_idx[p_cslot[pj]];
                    ELSIF k IS NOT NULL THEN
                        pd_flags := tr_flags[k]; pd_debit := tr_debit[k];
                        pd_credit := tr_credit[k]; pd_amount := tr_amount[k];
                        pd_ledger := tr_ledger[k]; pd_code := tr_code[k];
                        pd_user_data := tr_user_data[k]; pd_ud128 := tr_ud128[k];
                        pd_ud64 := tr_ud64[k]; pd_ud32 := tr_ud32[k];
                        pd_status := tr_status[k];
                        pd_d := tr_dbt[k]; pd_c := tr_crd[k];
                    ELSE
                        res := 'pending_transfer_not_found'; EXIT apply;
                    END IF;
                    IF pd_flags & c_pending = 0 THEN
                        res := 'pending_transfer_not_pending'; EXIT apply;
                    END IF;
                    IF p_debit[i] IS NOT NULL AND p_debit[i] <> c_zero
                       AND p_debit[i] <> pd_debit THEN
                        res := 'pending_transfer_has_different_debit_account_id'; EXIT apply;
                    END IF;
                    IF p_credit[i] IS NOT NULL AND p_credit[i] <> c_zero
                       AND p_credit[i] <> pd_credit THEN
                        res := 'pending_transfer_has_different_credit_account_id'; EXIT apply;
                    END IF;
                    IF p_ledger[i] <> 0 AND p_ledger[i] <> pd_ledger THEN
                        res := 'pending_transfer_has_different_ledger'; EXIT apply;
                    END IF;
                    IF p_code[i] <> 0 AND p_code[i] <> pd_code THEN
                        res := 'pending_transfer_has_different_code'; EXIT apply;
                    END IF;
                    amt := CASE WHEN p_amount[i] = 0 THEN pd_amount ELSE p_amount[i] END;
                    IF amt > pd_amount THEN
                        res := 'exceeds_pending_transfer_amount'; EXIT apply;
                    END IF;
                    IF NOT posting AND amt < pd_amount THEN
                        res := 'pending_transfer_has_different_amount'; EXIT apply;
                    END IF;
                    IF pd_status = 'posted' THEN
                        res := 'pending_transfer_already_posted'; EXIT apply;
                    ELSIF pd_status = 'voided' THEN
                        res := 'pending_transfer_already_voided'; EXIT apply;
                    ELSIF pd_status = 'expired' THEN
                        res := 'pending_transfer_expired'; EXIT apply;
                    END IF;
                    IF fl & c_imported <> 0 AND v_wm IS NOT NULL AND p_ts[i] <= v_wm THEN
                        res := 'imported_event_timestamp_must_not_regress'; EXIT apply;
                    END IF;
                    IF posting THEN  -- the only movement a closed account allows is a void
                        IF a_flags[pd_d] & 32 <> 0 OR a_closed[pd_d] THEN
                            res := 'debit_account_already_closed'; EXIT apply;
                        END IF;
                        IF a_flags[pd_c] & 32 <> 0 OR a_closed[pd_c] THEN
                            res := 'credit_account_already_closed'; EXIT apply;
                        END IF;
                    END IF;
                    a_dp[pd_d] := a_dp[pd_d] - pd_amount;
                    a_cp[pd_c] := a_cp[pd_c] - pd_amount;
                    IF pj > 0 THEN
                        b_status[pj] := CASE WHEN posting THEN 'posted' ELSE 'voided' END;
                    ELSE
                        tr_status[k] := CASE WHEN posting THEN 'posted' ELSE 'voided' END;
                    END IF;
                    IF NOT posting THEN  -- voiding a closing transfer reopens its accounts
                        IF pd_flags & c_close_dr <> 0 THEN a_closed[pd_d] := false; END IF;
                        IF pd_flags & c_close_cr <> 0 THEN a_closed[pd_c] := false; END IF;
                    END IF;
                    -- what the request leaves 0/NULL comes from the pending transfer
                    r_inh[i] := 1 | 2
                        | CASE WHEN p_user_data[i] IS NULL THEN 4 ELSE 0 END
                        | CASE WHEN p_ud128[i] = c_zero THEN 8 ELSE 0 END
                        | CASE WHEN p_ud64[i] = 0 THEN 16 ELSE 0 END
                        | CASE WHEN p_ud32[i] = 0 THEN 32 ELSE 0 END;
                    -- code and ledger always equal the pending transfer's
                    IF p_code[i] <> 0 THEN r_inh[i] := r_inh[i] & ~1; END IF;
                    IF p_ledger[i] <> 0 THEN r_inh[i] := r_inh[i] & ~2; END IF;
                    r_code[i] := pd_code; r_ledger[i] := pd_ledger;
                    r_user_data[i] := coalesce(p_user_data[i], pd_user_data);
                    IF r_inh[i] & 8 <> 0 THEN r_ud128[i] := pd_ud128; END IF;
                    IF r_inh[i] & 16 <> 0 THEN r_ud64[i] := pd_ud64; END IF;
                    IF r_inh[i] & 32 <> 0 THEN r_ud32[i] := pd_ud32; END IF;
                    r_debit[i] := pd_debit; r_credit[i] := pd_credit; r_amount[i] := amt;
                    b_status[i] := 'none';
                    live[p_first[i]] := i;
                    d := pd_d; c := pd_c;
                    do_post := posting;
                    res := 'ok';
                ELSE
                    -- a single-phase or pending transfer
                    is_pending := phase = c_pending;
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
                    IF fl & c_imported <> 0 THEN
                        IF v_wm IS NOT NULL AND p_ts[i] <= v_wm THEN
                            res := 'imported_event_timestamp_must_not_regress'; EXIT apply;
                        END IF;
                        IF p_ts[i] <= a_created[d] THEN
                            res := 'imported_event_timestamp_must_postdate_debit_account';
                            EXIT apply;
                        END IF;
                        IF p_ts[i] <= a_created[c] THEN
                            res := 'imported_event_timestamp_must_postdate_credit_account';
                            EXIT apply;
                        END IF;
                    END IF;
                    IF p_late[i] = 'imported_event_timeout_must_be_zero' THEN
                        res := p_late[i]; EXIT apply;
                    END IF;
                    IF a_flags[d] & 32 <> 0 OR a_closed[d] THEN
                        res := 'debit_account_already_closed'; EXIT apply;
                    END IF;
                    IF a_flags[c] & 32 <> 0 OR a_closed[c] THEN
                        res := 'credit_account_already_closed'; EXIT apply;
                    END IF;
                    amt := p_amount[i];
                    IF fl & c_bal_debit <> 0 THEN
                        amt := least(amt, greatest(0, a_cpo[d]::numeric - a_dp[d] - a_dpo[d]));
                        IF amt = 0 THEN
                            res := 'exceeds_credits'; EXIT apply;
                        END IF;
                    END IF;
                    IF fl & c_bal_credit <> 0 THEN
                        amt := least(amt, greatest(0, a_dpo[c]::numeric - a_cp[c] - a_cpo[c]));
                        IF amt = 0 THEN
                            res := 'exceeds_debits'; EXIT apply;
                        END IF;
                    END IF;
                    -- written so that no intermediate sum can overflow bigint
                    IF a_dp[d] > c_max - a_dpo[d] - amt OR a_cp[c] > c_max - a_cpo[c] - amt THEN
                        res := 'overflows'; EXIT apply;
                    END IF;
                    IF p_late[i] = 'overflows_timeout' THEN
                        res := p_late[i]; EXIT apply;
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
                        IF fl & c_close_dr <> 0 THEN a_closed[d] := true; END IF;
                        IF fl & c_close_cr <> 0 THEN a_closed[c] := true; END IF;
                    ELSE
                        b_status[i] := 'none';
                        do_post := true;
                    END IF;
                    res := 'ok';
                END IF;
            END apply;
        END IF;

        IF res = 'ok' THEN
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
            IF v_wm IS NULL OR p_ts[i] > v_wm THEN
                v_wm := p_ts[i];
            END IF;
            -- balance history of the accounts flagged history (8)
            IF a_flags[d] & 8 <> 0 THEN
                nh := nh + 1;
                h_pos[nh] := i; h_acc[nh] := d; h_debit[nh] := true;
                h_dp[nh] := a_dp[d]; h_dpo[nh] := a_dpo[d];
                h_cp[nh] := a_cp[d]; h_cpo[nh] := a_cpo[d];
            END IF;
            IF a_flags[c] & 8 <> 0 THEN
                nh := nh + 1;
                h_pos[nh] := i; h_acc[nh] := c; h_debit[nh] := false;
                h_dp[nh] := a_dp[c]; h_dpo[nh] := a_dpo[c];
                h_cp[nh] := a_cp[c]; h_cpo[nh] := a_cpo[c];
            END IF;
        END IF;

        results[i] := res;
        IF chain_start > 0 AND res <> 'ok' AND NOT chain_failed THEN
            chain_failed := true;
            a_dp := s_dp; a_dpo := s_dpo; a_cp := s_cp; a_cpo := s_cpo; a_closed := s_closed;
            tr_status := s_tr_status; b_status := s_b_status; live := s_live;
            ne := s_ne; nh := s_nh; v_wm := s_wm;
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
               credits_pending = u.cp, credits_posted = u.cpo, closed = u.closed
          FROM unnest(a_id, a_dp, a_dpo, a_cp, a_cpo, a_closed)
               AS u(id, dp, dpo, cp, cpo, closed)
         WHERE a.id = u.id
           AND (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted,
                a.closed)
               IS DISTINCT FROM (u.dp, u.dpo, u.cp, u.cpo, u.closed);
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
        -- creation order for transfers with the same timestamp
        v_seqs := ARRAY(SELECT nextval('ledger_transfers_seq') FROM generate_series(1, v_expected));
        t_seq := array_fill(NULL::bigint, ARRAY[n]);
        j := 0;
        FOR i IN 1 .. n LOOP
            IF results[i] = 'ok' THEN
                j := j + 1;
                t_seq[i] := v_seqs[j];
            END IF;
        END LOOP;
        INSERT INTO ledger_transfers (
            id, req_debit_id, req_credit_id, req_amount, pending_id, flags, code, ledger,
            timeout_seconds, user_data, user_data_128, user_data_64, user_data_32, inherited,
            debit_account_id, credit_account_id, amount, status, expires_at, created_at, seq)
        SELECT p_id[s.i], p_debit[s.i], p_credit[s.i], p_amount[s.i], p_pending[s.i],
               p_flags[s.i], r_code[s.i], r_ledger[s.i], p_timeout[s.i], r_user_data[s.i],
               r_ud128[s.i], r_ud64[s.i], r_ud32[s.i], r_inh[s.i],
               r_debit[s.i], r_credit[s.i], r_amount[s.i], b_status[s.i],
               CASE WHEN b_status[s.i] = 'pending' THEN p_expires[s.i] END, p_ts[s.i],
               t_seq[s.i]
          FROM generate_subscripts(p_id, 1) AS s(i)
         WHERE results[s.i] = 'ok'
         ORDER BY p_id[s.i]  -- batches racing on the same ids wait, not deadlock
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
               e.amount, e.balance, r_code[e.pos], p_ts[e.pos], r_user_data[e.pos]
          FROM unnest(e_pos[1:ne], e_acc[1:ne], e_credit[1:ne], e_amount[1:ne], e_balance[1:ne])
               WITH ORDINALITY AS e(pos, acc, credit, amount, balance, ord)
         ORDER BY e.ord;
    END IF;

    IF nh > 0 THEN
        INSERT INTO ledger_account_balances (
            account_id, created_at, seq, transfer_id, is_debit, code, user_data_128,
            user_data_64, user_data_32, debits_pending, debits_posted, credits_pending,
            credits_posted)
        SELECT a_id[h.acc], p_ts[h.pos], t_seq[h.pos], p_id[h.pos], h.debit, r_code[h.pos],
               r_ud128[h.pos], r_ud64[h.pos], r_ud32[h.pos], h.dp, h.dpo, h.cp, h.cpo
          FROM unnest(h_pos[1:nh], h_acc[1:nh], h_debit[1:nh], h_dp[1:nh], h_dpo[1:nh],
                      h_cp[1:nh], h_cpo[1:nh]) AS h(pos, acc, debit, dp, dpo, cp, cpo);
    END IF;

    IF p_event_id IS NOT NULL AND v_expected > 0 THEN
        PERFORM outbox_append(p_event_id, p_event_agg, p_event_type, p_event_topic,
                              p_event_occurred, p_event_envelope);
    END IF;

    RETURN results;
END;
$$;


-- The fast path for the commonest call: one plain single-phase transfer (no
-- flag, no pending id, no timeout, not imported; the caller checks). Same
-- rules, results and lock order as ledger_create_transfers, without arrays.
-- p_mid: the stateless result after the exists check, if any. Returns NULL
-- when a pending transfer is due to expire: the caller then uses
-- ledger_create_transfers, which expires it first.
CREATE FUNCTION ledger_create_transfer(
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
    v_locked boolean := false;
BEGIN
    IF EXISTS (SELECT 1 FROM ledger_transfers t
                WHERE t.status = 'pending' AND t.expires_at <= p_now) THEN
        RETURN NULL;
    END IF;

    LOOP
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
        EXIT WHEN v_locked;
        PERFORM 1 FROM ledger_accounts a WHERE a.id IN (p_debit, p_credit) ORDER BY a.id
            FOR UPDATE;
        -- A replay of this id may have committed while we waited for the
        -- locks: look again (the fix of migration 0009), so that it answers
        -- exists instead of being judged against the balances it moved.
        v_locked := true;
    END LOOP;

    SELECT * INTO d FROM ledger_accounts a WHERE a.id = p_debit;
    IF NOT FOUND THEN RETURN 'debit_account_not_found'; END IF;
    SELECT * INTO c FROM ledger_accounts a WHERE a.id = p_credit;
    IF NOT FOUND THEN RETURN 'credit_account_not_found'; END IF;
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

    UPDATE ledger_accounts a SET debits_posted = a.debits_posted + p_amount
     WHERE a.id = p_debit RETURNING a.* INTO d;
    UPDATE ledger_accounts a SET credits_posted = a.credits_posted + p_amount
     WHERE a.id = p_credit RETURNING a.* INTO c;
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
