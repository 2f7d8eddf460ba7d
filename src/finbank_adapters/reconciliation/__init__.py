"""Adapters for daily reconciliation: sources, external sort, the report sink."""
