"""Route handlers, one module per context."""
