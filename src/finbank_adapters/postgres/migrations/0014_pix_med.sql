-- MED cases (infraction reports, their blocks and returns) and precautionary
-- blocks (PostgresMedRepository). One of each at most per EndToEndId. Every
-- record keeps its msgspec JSON in `body` (what the adapter decodes); the
-- other columns are what the conditional writes and an operator's queries
-- need. `version` is the optimistic lock. Times come from the adapter's
-- injected clock, never from now().

CREATE TABLE pix_med_cases (
    end_to_end_id  text        PRIMARY KEY,
    report_id      text        NOT NULL,
    version        integer     NOT NULL CHECK (version >= 1),
    side           text        NOT NULL,
    status         text        NOT NULL,
    opened_at      timestamptz NOT NULL,
    body           text        NOT NULL
);

CREATE INDEX pix_med_cases_status ON pix_med_cases (status, opened_at);
CREATE INDEX pix_med_cases_report ON pix_med_cases (report_id);

CREATE TABLE pix_med_blocks (
    end_to_end_id  text        PRIMARY KEY,
    account_id     uuid        NOT NULL,
    version        integer     NOT NULL CHECK (version >= 1),
    status         text        NOT NULL,
    expires_at     timestamptz NOT NULL,
    body           text        NOT NULL
);

-- the blocks still recorded active, by deadline (an operator's sweep)
CREATE INDEX pix_med_blocks_active ON pix_med_blocks (expires_at) WHERE status = 'ACTIVE';
