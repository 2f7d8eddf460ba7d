"""Long-running consumers of the event bus (``finbank worker ...``)."""
