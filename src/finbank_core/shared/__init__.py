"""Building blocks shared by every bounded context: money, ids, time, errors, events."""

from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import DomainError
from finbank_core.shared.events import EventEnvelope, EventPublisher
from finbank_core.shared.ids import IdGenerator, uuid7
from finbank_core.shared.money import Money

__all__ = [
    "Clock",
    "DomainError",
    "EventEnvelope",
    "EventPublisher",
    "IdGenerator",
    "Money",
    "uuid7",
]
