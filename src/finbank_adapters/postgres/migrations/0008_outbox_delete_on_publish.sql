-- The outbox becomes a queue of what is still to be published: a relay
-- deletes the rows the broker acknowledged instead of stamping published_at.
--
-- Why: stamping published_at was a non-HOT update (the column is in the
-- partial indexes' predicate), so every published event left a new heap
-- tuple and dead entries that every later claim had to step over; with the
-- claim's own lease update that was three tuple versions per event. A delete
-- writes no new tuple and no index entry. The lease update (claimed_by,
-- claimed_until, attempts: none indexed) becomes HOT thanks to the free space
-- fillfactor leaves on each page. benchmarks/events.py measures the effect.
--
-- What this gives up: the outbox no longer keeps a history of what it
-- published (the bus keeps it for its retention; the ledger is the record),
-- and event_id de-duplication on append holds only while an event waits:
-- re-appending an event already relayed publishes it again, which consumers
-- absorb (they deduplicate on event_id). Rows already published are history
-- only and are dropped here.

DELETE FROM outbox WHERE published_at IS NOT NULL;

DROP INDEX outbox_unpublished_idx;
DROP INDEX outbox_unpublished_aggregate_idx;
ALTER TABLE outbox DROP COLUMN published_at;

-- Heads are found by the primary key, in id order; an aggregate's items by this.
CREATE INDEX outbox_aggregate_idx ON outbox (aggregate_id, id);

-- Room on each page for HOT lease updates (applies to pages written from now on).
ALTER TABLE outbox SET (fillfactor = 50);
