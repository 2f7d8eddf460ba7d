"""An event publisher that records what it was given."""

from __future__ import annotations

from collections.abc import Sequence

from finbank_core.shared.events import EventEnvelope


class InMemoryEventPublisher:
    """Keeps every published event, in order, in :attr:`published`."""

    def __init__(self) -> None:
        self.published: list[EventEnvelope] = []

    async def publish(self, events: Sequence[EventEnvelope]) -> None:
        self.published.extend(events)

    def of_type(self, type: str) -> list[EventEnvelope]:
        return [event for event in self.published if event.type == type]
