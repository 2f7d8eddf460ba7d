-- ledger_create_transfers (0010) and ledger_create_transfers_grouped (0024) with generic
-- plans, as 0029 gave ledger_create_checked_transfer_group.
--
-- Every transfer that is not one plain transfer goes through ledger_create_transfers:
-- a PIX payment's reservation (pending) and its post or void, refunds, MED holds, and
-- every grouped call of the group commit. PL/pgSQL planned its large statements (the
-- locks of step 1 and 2, the replays of step 3, the batch's inserts) on every call,
-- because their custom plans looked cheaper than the generic ones. Measured on this
-- function alone, one client, server CPU per transfer: pending 635 -> 480 us, post
-- 820 -> 630 us; four clients through the group commit: pending 853 -> 600 us, post
-- 990 -> 780 us. With 1,000,000 stored transfers (2,000 of them pending) the generic
-- plans kept their cost (pending 500 us, post 690 us) while the custom ones grew
-- (715-1,170 us, 910-930 us): every statement keeps its index (the primary keys and
-- the partial expiry index, ledger_transfers_expiry_idx).
--
-- And with enable_seqscan = off, as 0028 and 0029: a session caches its generic plans,
-- and one made while the tables were small (or never analysed) would scan them whole
-- for every call as they grew. Every statement here has an index to take.
--
-- Answers, rows, locks and signatures are unchanged: only the plans are.

ALTER FUNCTION ledger_create_transfers(
    timestamptz, uuid[], uuid[], uuid[], bigint[], uuid[], integer[], integer[], integer[],
    integer[], text[], uuid[], bigint[], integer[], timestamptz[], timestamptz[], text[],
    text[], text[], integer[], integer[], uuid[], integer[], integer[], boolean, uuid[],
    text[], text[], text[], timestamptz[], bytea[]
) SET enable_seqscan = off;
ALTER FUNCTION ledger_create_transfers(
    timestamptz, uuid[], uuid[], uuid[], bigint[], uuid[], integer[], integer[], integer[],
    integer[], text[], uuid[], bigint[], integer[], timestamptz[], timestamptz[], text[],
    text[], text[], integer[], integer[], uuid[], integer[], integer[], boolean, uuid[],
    text[], text[], text[], timestamptz[], bytea[]
) SET plan_cache_mode = force_generic_plan;

ALTER FUNCTION ledger_create_transfers_grouped(
    timestamptz, uuid[], uuid[], uuid[], bigint[], uuid[], integer[], integer[], integer[],
    integer[], text[], uuid[], bigint[], integer[], timestamptz[], timestamptz[], text[],
    text[], text[], integer[], integer[], uuid[], integer[], integer[], integer[], integer[],
    uuid[], text[], text[], text[], timestamptz[], bytea[]
) SET enable_seqscan = off;
ALTER FUNCTION ledger_create_transfers_grouped(
    timestamptz, uuid[], uuid[], uuid[], bigint[], uuid[], integer[], integer[], integer[],
    integer[], text[], uuid[], bigint[], integer[], timestamptz[], timestamptz[], text[],
    text[], text[], integer[], integer[], uuid[], integer[], integer[], integer[], integer[],
    uuid[], text[], text[], text[], timestamptz[], bytea[]
) SET plan_cache_mode = force_generic_plan;

