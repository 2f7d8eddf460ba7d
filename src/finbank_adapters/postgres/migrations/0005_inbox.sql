-- The inbox: which events each consumer has already applied.
--
-- A consumer inserts (consumer, event_id) in the same transaction as the
-- effect of the event; a redelivered event finds its row and changes nothing.
-- A concurrent second delivery waits on the first's uncommitted row, then
-- sees it (or, if the first rolled back, takes over).

CREATE TABLE inbox (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL,
    PRIMARY KEY (consumer, event_id)
);

-- Purging rows older than the bus's retention (nothing can redeliver them).
CREATE INDEX inbox_processed_at_idx ON inbox (processed_at);
