"""``FileStore`` adapters: memory, local filesystem, S3."""

from finbank_adapters.files.local import LocalFileStore
from finbank_adapters.files.memory import InMemoryFileStore

__all__ = ["InMemoryFileStore", "LocalFileStore"]
