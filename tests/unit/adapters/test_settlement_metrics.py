"""The settlement worker observes ``PixSettlementLatency`` (request to SETTLED, on the bank's
clock) for each payment it settles, and nothing for the ones the network rejects."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from tests.contract.test_pix_repository_contract import T0, payment

from finbank_adapters import metrics
from finbank_adapters.workers.pix_settlement import PixSettlementHandler
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.events import PAYMENT_REQUESTED
from finbank_core.pix.payments import PixPayment
from finbank_core.shared.events import EventEnvelope


@pytest.fixture
def recorder() -> Iterator[metrics.MetricsRecorder]:
    recorder = metrics.reset_for_tests(metrics.MetricsRecorder())
    yield recorder
    metrics.reset_for_tests()


def requested(e2e: str) -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(),
        type=PAYMENT_REQUESTED,
        version=1,
        occurred_at=T0,
        aggregate_id=e2e,
        payload={"end_to_end_id": e2e},
    )


def handler_answering(outcomes: dict[str, PixPayment]) -> PixSettlementHandler:
    async def settle(command: object) -> PixPayment:
        e2e = getattr(command, "end_to_end_id", command)
        return outcomes[str(e2e)]

    async def unused(*_: object) -> object:
        raise AssertionError("not called")

    return PixSettlementHandler(settle, unused, unused)  # type: ignore[arg-type]


async def test_each_settled_payment_is_one_latency_observation_on_the_banks_clock(
    recorder: metrics.MetricsRecorder,
) -> None:
    fast = payment(1)
    slow = payment(2)
    outcomes = {
        fast.end_to_end_id: fast.settle(fast.created_at + timedelta(seconds=1.5)),
        slow.end_to_end_id: slow.settle(slow.created_at + timedelta(seconds=12)),
    }
    handler = handler_answering(outcomes)

    await handler(requested(fast.end_to_end_id))
    await handler(requested(slow.end_to_end_id))

    assert recorder.value(metrics.SETTLEMENT_LATENCY) == 2
    text = recorder.prometheus_text().decode()
    assert "finbank_pix_settlement_latency_count 2" in text
    assert "finbank_pix_settlement_latency_sum 13.5" in text


async def test_a_rejected_payment_is_no_settlement_latency(
    recorder: metrics.MetricsRecorder,
) -> None:
    rejected = payment(3)
    handler = handler_answering(
        {rejected.end_to_end_id: rejected.reject(IsoReason.AC07, rejected.created_at)}
    )
    await handler(requested(rejected.end_to_end_id))
    assert recorder.value(metrics.SETTLEMENT_LATENCY) == 0
