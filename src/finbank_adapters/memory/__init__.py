"""In-memory adapters: shipped, per-instance state, proven by the contract suites."""

from finbank_adapters.memory.accounts import InMemoryAccountRepository
from finbank_adapters.memory.clock import FakeClock
from finbank_adapters.memory.events import InMemoryEventPublisher
from finbank_adapters.memory.ids import SequentialIdGenerator
from finbank_adapters.memory.ledger import InMemoryLedger

__all__ = [
    "FakeClock",
    "InMemoryAccountRepository",
    "InMemoryEventPublisher",
    "InMemoryLedger",
    "SequentialIdGenerator",
]
