"""Accounts: a TigerBeetle-style double-entry ledger and the customer accounts on it."""
