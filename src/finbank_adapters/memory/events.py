"""An event publisher that records what it was given."""

from __future__ import annotations

from collections.abc import Sequence

from finbank_adapters import tracing
from finbank_core.shared.events import EventEnvelope


class InMemoryEventPublisher:
    """Keeps every published event, in order, in :attr:`published`."""

    def __init__(self) -> None:
        self.published: list[EventEnvelope] = []

    async def publish(self, events: Sequence[EventEnvelope]) -> None:
        # tracing on: each event carries its creation context (finbank_adapters.tracing)
        self.published.extend(tracing.stamp(events))

    def of_type(self, type: str) -> list[EventEnvelope]:
        return [event for event in self.published if event.type == type]

    def applied(self, type: str) -> list[EventEnvelope]:
        """Events of ``type`` as a consumer that drops repeated event ids applies them."""
        seen: set[object] = set()
        applied = []
        for event in self.of_type(type):
            if event.event_id not in seen:
                seen.add(event.event_id)
                applied.append(event)
        return applied
