-- Daily reconciliation reads two-phase transfers of the settlement account by
-- creation time, and what resolved each one; both stay index scans.
CREATE INDEX ledger_transfers_two_phase_idx ON ledger_transfers (credit_account_id, created_at)
    WHERE flags & 2 = 2;
CREATE INDEX ledger_transfers_two_phase_debit_idx ON ledger_transfers (debit_account_id, created_at)
    WHERE flags & 2 = 2;
CREATE INDEX ledger_transfers_pending_id_idx ON ledger_transfers (pending_id)
    WHERE pending_id IS NOT NULL;
