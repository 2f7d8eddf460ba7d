"""Adapters implementing finbank_core's ports, and the composition root."""
