-- The MED sweeper (SweepMed): which cases and blocks a reader must move on by itself,
-- found without reading every record.
--
-- pix_med_cases.attention_at is MedCase.attention_at() as of the row's last write
-- (PostgresMedRepository writes it with the body): an accepted case's lapse (one
-- microsecond after its refund_deadline; a lapsed one until its holds are voided),
-- its earliest return still in progress, or (an accepted case) REQUEST_LEASE, 60
-- seconds, after a refund request began writing the payment's refunds
-- (request_started_at: a request that stopped before its record left them there).
-- NULL for every case nothing is due on: the index holds only those that are.
-- Rows written before this migration get it from their body here.
--
-- pix_med_blocks.attention_at, likewise, is PrecautionaryBlock.attention_at(): an
-- active block's deadline, or at once for a reduction whose event is owed. Rows
-- written before this migration: the active ones' deadline (no reduction there owes
-- its event: the field did not exist). It replaces 0014's pix_med_blocks_active.

ALTER TABLE pix_med_cases ADD COLUMN attention_at timestamptz;

UPDATE pix_med_cases AS c
SET attention_at = due.at
FROM (
    SELECT
        end_to_end_id,
        LEAST(
            -- accepted, not asked back; or lapsed, and not yet recorded lapse_finished
            -- (no row before this migration is: its next read voids its holds again)
            CASE WHEN status IN ('AGREED', 'LAPSED')
                    AND body::jsonb ->> 'refund_deadline' IS NOT NULL
                    AND coalesce((body::jsonb ->> 'lapse_finished')::boolean, false) = false
                THEN (body::jsonb ->> 'refund_deadline')::timestamptz + interval '1 microsecond'
            END,
            CASE WHEN status = 'AGREED' AND body::jsonb ->> 'request_started_at' IS NOT NULL
                THEN (body::jsonb ->> 'request_started_at')::timestamptz + interval '60 seconds'
            END,
            (
                SELECT min(coalesce(r ->> 'attempted_at', r ->> 'requested_at')::timestamptz)
                FROM jsonb_array_elements(coalesce(body::jsonb -> 'returns', '[]'::jsonb)) AS r
                WHERE r ->> 'status' = 'EM_PROCESSAMENTO'
            )
        ) AS at
    FROM pix_med_cases
) AS due
WHERE c.end_to_end_id = due.end_to_end_id AND due.at IS NOT NULL;

CREATE INDEX pix_med_cases_due ON pix_med_cases (attention_at, end_to_end_id)
    WHERE attention_at IS NOT NULL;

ALTER TABLE pix_med_blocks ADD COLUMN attention_at timestamptz;
UPDATE pix_med_blocks SET attention_at = expires_at WHERE status = 'ACTIVE';
DROP INDEX pix_med_blocks_active;
CREATE INDEX pix_med_blocks_due ON pix_med_blocks (attention_at, end_to_end_id)
    WHERE attention_at IS NOT NULL;
