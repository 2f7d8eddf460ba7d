-- The transactional outbox: events written in the same transaction as the
-- change they describe, claimed by relays with FOR UPDATE SKIP LOCKED.
--
-- Per-aggregate order: outbox_append takes a transaction-scoped advisory lock
-- per aggregate (sorted, after every other lock of its transaction), so two
-- transactions that write events of one aggregate commit in the order they
-- drew ids, and id order is the aggregate's order. Relays only claim an
-- aggregate's earliest unpublished event (the head) plus the events after it,
-- so two relays never hold events of one aggregate at once.

CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      uuid        NOT NULL UNIQUE,
    aggregate_id  text        NOT NULL,
    type          text        NOT NULL,
    topic         text        NOT NULL,
    occurred_at   timestamptz NOT NULL,
    envelope      bytea       NOT NULL,  -- msgspec JSON of the EventEnvelope, byte for byte
    claimed_by    text,
    claimed_until timestamptz,
    attempts      integer     NOT NULL DEFAULT 0,
    published_at  timestamptz
);

-- What relays scan: the unpublished rows, by id and by aggregate.
CREATE INDEX outbox_unpublished_idx ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_unpublished_aggregate_idx ON outbox (aggregate_id, id)
    WHERE published_at IS NULL;

CREATE FUNCTION outbox_append(
    p_event_id  uuid[],
    p_aggregate text[],
    p_type      text[],
    p_topic     text[],
    p_occurred  timestamptz[],
    p_envelope  bytea[]
) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_key integer;
    v_count integer;
BEGIN
    IF coalesce(array_length(p_event_id, 1), 0) = 0 THEN
        RETURN 0;
    END IF;
    -- Sorted by key, and the last locks a transaction takes: no deadlock.
    FOR v_key IN SELECT DISTINCT hashtext(a) FROM unnest(p_aggregate) AS a ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(1329745752, v_key);  -- 1329745752: 'OBOX'
    END LOOP;
    INSERT INTO outbox (event_id, aggregate_id, type, topic, occurred_at, envelope)
    SELECT e.event_id, e.aggregate_id, e.type, e.topic, e.occurred_at, e.envelope
    FROM unnest(p_event_id, p_aggregate, p_type, p_topic, p_occurred, p_envelope)
         WITH ORDINALITY AS e(event_id, aggregate_id, type, topic, occurred_at, envelope, ord)
    ORDER BY e.ord
    ON CONFLICT (event_id) DO NOTHING;  -- at least once upstream: a re-sent event is kept once
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END;
$$;
