"""Daily reconciliation: ledger postings, PIX records and the settlement statement."""
