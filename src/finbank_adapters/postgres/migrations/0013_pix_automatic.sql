-- Pix Automático: recurrences and their recurring charges (PostgresRecurrenceStore).
-- Every record keeps its msgspec JSON in `body` (what the adapter decodes); the
-- other columns are what the conditional writes, the listings and the
-- scheduler need. `version` is the optimistic lock. Times come from the
-- adapter's injected clock, never from now().

CREATE TABLE pix_automatic_recurrences (
    recurrence_id      text        PRIMARY KEY,
    version            integer     NOT NULL CHECK (version >= 1),
    status             text        NOT NULL,
    receiver_owner_id  text        NOT NULL,
    -- who authorised it, or whom its journey-1 request is addressed to
    payer_owner_id     text,
    created_at         timestamptz NOT NULL,
    body               text        NOT NULL
);

CREATE INDEX pix_automatic_recurrences_receiver
    ON pix_automatic_recurrences (receiver_owner_id, created_at, recurrence_id);
CREATE INDEX pix_automatic_recurrences_payer
    ON pix_automatic_recurrences (payer_owner_id, created_at, recurrence_id)
    WHERE payer_owner_id IS NOT NULL;

CREATE TABLE pix_automatic_charges (
    txid             text        PRIMARY KEY,
    recurrence_id    text        NOT NULL REFERENCES pix_automatic_recurrences (recurrence_id),
    cycle            integer     NOT NULL,
    version          integer     NOT NULL CHECK (version >= 1),
    status           text        NOT NULL,
    due_date         date        NOT NULL,
    -- the Brasília day the next debit attempt may run; NULL once final
    next_attempt_on  date,
    -- the scheduler's lease (not versioned: leasing never changes the record)
    lease_until      timestamptz,
    lease_holder     text,
    body             text        NOT NULL
);

-- One live charge per period of a recurrence; a rejected or cancelled one frees it.
CREATE UNIQUE INDEX pix_automatic_charges_one_per_cycle
    ON pix_automatic_charges (recurrence_id, cycle)
    WHERE status NOT IN ('REJEITADA', 'CANCELADA');
CREATE INDEX pix_automatic_charges_by_recurrence
    ON pix_automatic_charges (recurrence_id, due_date, txid);
-- What the scheduler scans: the ATIVA charges, by the day of their next attempt.
CREATE INDEX pix_automatic_charges_due
    ON pix_automatic_charges (next_attempt_on, txid)
    WHERE status = 'ATIVA';
