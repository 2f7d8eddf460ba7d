"""Record headers: the relay's (from stored bytes) match the publisher's (from the event)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from finbank_adapters.kafka.publisher import envelope_headers, event_headers
from finbank_core.shared.events import EventEnvelope, encode_event


@pytest.mark.parametrize("correlation_id", [None, "req-7"])
def test_headers_of_the_stored_bytes_equal_those_of_the_event(correlation_id: str | None) -> None:
    event = EventEnvelope(
        event_id=uuid.uuid4(),
        type="pix.payment_settled",
        version=2,
        occurred_at=datetime(2026, 3, 1, 9, tzinfo=UTC),
        aggregate_id="E1",
        correlation_id=correlation_id,
        payload={"amount_cents": 1, "nested": {"a": [1, 2]}},
    )
    headers = envelope_headers(encode_event(event))
    assert headers == event_headers(event)
    assert dict(headers)["event_id"] == str(event.event_id).encode()
    assert ("correlation_id" in dict(headers)) is (correlation_id is not None)


@pytest.mark.parametrize("garbage", [b"", b"not json", b'{"type": "x"}', b"[1, 2]"])
def test_bytes_that_are_not_an_envelope_get_no_headers(garbage: bytes) -> None:
    assert envelope_headers(garbage) == []
