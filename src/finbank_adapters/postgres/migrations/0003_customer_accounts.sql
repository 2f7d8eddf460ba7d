-- Customer accounts (the bank's product); id is also the ledger account's id.

CREATE SEQUENCE customer_account_number_seq START WITH 100000;

CREATE TABLE customer_accounts (
    id              uuid        PRIMARY KEY,
    owner_id        text        NOT NULL,
    holder_name     text        NOT NULL,
    holder_type     text        NOT NULL,
    holder_document text,       -- CPF/CNPJ: personal data
    branch          text        NOT NULL,
    number          text        NOT NULL,
    kind            text        NOT NULL,
    status          text        NOT NULL,
    created_at      timestamptz NOT NULL,
    CONSTRAINT customer_accounts_branch_number_key UNIQUE (branch, number)
);

CREATE INDEX customer_accounts_owner_idx ON customer_accounts (owner_id, created_at);
