"""The workers' spans: the settlement handler's use case spans (incoming credit and refund,
besides the payment the backbone test follows) under the consumer's process span, the
outcome events they publish carrying them on; Pix Automático's round as a trace of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from finbank_adapters import tracing
from finbank_adapters.sandbox import PEER_ACCOUNT_NUMBER
from finbank_adapters.workers.pix_automatic import PixAutomaticWorker
from finbank_adapters.workers.pix_settlement import PixSettlementHandler
from finbank_core.pix.automatic.use_cases import RunDueDebitsCommand, RunDueDebitsResult
from finbank_core.pix.events import (
    INCOMING_ACCEPTED,
    PAYMENT_RECEIVED,
    REFUND_COMPLETED,
    REFUND_REQUESTED,
)
from finbank_core.pix.use_cases import RefundPixCommand
from finbank_core.shared.errors import ServiceUnavailable
from finbank_core.shared.events import EventEnvelope
from finbank_core.shared.money import Money
from tests.pix_support import PEER_ISPB, build_world


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    tracing.reset_for_tests(provider)
    try:
        yield spans
    finally:
        tracing.reset_for_tests()
        provider.shutdown()


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    value: int = span.context.span_id
    return value


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def created_for(exporter: InMemorySpanExporter, event: EventEnvelope) -> ReadableSpan:
    """The create span of ``event``, checked against the context the event carries."""
    (created,) = [
        s
        for s in exporter.get_finished_spans()
        if s.name.startswith("create ")
        and (s.attributes or {}).get("messaging.message.id") == str(event.event_id)
    ]
    traceparent = event.header(tracing.TRACEPARENT)
    assert traceparent is not None
    assert traceparent.split("-")[2] == f"{span_id(created):016x}"
    return created


async def test_the_credit_and_the_refund_run_in_use_case_spans_under_their_process_spans(
    exporter: InMemorySpanExporter,
) -> None:
    world = await build_world(inline_settlement=False)
    handler = PixSettlementHandler(world.settle, world.settle_refund_with(world.spi), world.receive)
    accept = world.accept_incoming(credit_inline=False)
    refund = world.refund_with(world.spi, settle_inline=False)
    account = await world.open("ana", "Ana")
    order = world.spi.originate_payment(
        from_ispb=PEER_ISPB,
        from_account_number=PEER_ACCOUNT_NUMBER,
        amount=Money(50_00),
        to_branch=account.branch,
        to_account_number=account.number,
    )
    e2e = (await accept(order)).end_to_end_id

    async def consume(event: EventEnvelope) -> ReadableSpan:
        """As the consumer runner hands an event to the handler; returns its process span."""
        before = {span_id(s) for s in named(exporter, "process finbank.pix.v1")}
        with tracing.processing(event, topic="finbank.pix.v1", group="finbank-pix-settlement"):
            await handler(event)
        (process,) = [
            s for s in named(exporter, "process finbank.pix.v1") if span_id(s) not in before
        ]
        return process

    accepted = world.publisher.of_type(INCOMING_ACCEPTED)[-1]
    credit_process = await consume(accepted)
    (receive,) = named(exporter, "ReceivePix")
    assert receive.parent is not None
    assert receive.parent.span_id == span_id(credit_process)
    assert credit_process.kind is SpanKind.CONSUMER
    assert credit_process.parent is not None
    assert credit_process.parent.span_id == span_id(created_for(exporter, accepted))
    received = created_for(exporter, world.publisher.of_type(PAYMENT_RECEIVED)[-1])
    assert received.parent is not None
    assert received.parent.span_id == span_id(receive)

    await refund(
        RefundPixCommand(
            owner_id="ana", end_to_end_id=e2e, amount=Money(20_00), client_refund_id="r"
        )
    )
    refund_process = await consume(world.publisher.of_type(REFUND_REQUESTED)[-1])
    (settle_refund,) = named(exporter, "SettlePixRefund")
    assert settle_refund.parent is not None
    assert settle_refund.parent.span_id == span_id(refund_process)
    completed = created_for(exporter, world.publisher.of_type(REFUND_COMPLETED)[-1])
    assert completed.parent is not None
    assert completed.parent.span_id == span_id(settle_refund)
    assert handler.outcomes[e2e] == "SETTLED"


async def test_a_pix_automatic_round_is_a_trace_of_its_own_and_its_events_carry_it(
    exporter: InMemorySpanExporter,
) -> None:
    published: list[EventEnvelope] = []
    tracer = tracing.tracer_provider().get_tracer("test")
    rounds = 0

    async def run_due(command: RunDueDebitsCommand) -> RunDueDebitsResult:
        nonlocal rounds
        rounds += 1
        if rounds == 2:
            raise ServiceUnavailable("the database is down")
        event = EventEnvelope(
            event_id=uuid.uuid4(),
            type="pix.automatic.debit_done",
            version=1,
            occurred_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
            aggregate_id="txid-1",
        )
        published.extend(tracing.stamp([event]))
        return RunDueDebitsResult(charges=[])

    worker = PixAutomaticWorker(run_due=run_due, holder="test")
    with tracer.start_as_current_span("something that called the worker"):
        await worker.run_once()
    with pytest.raises(ServiceUnavailable):
        await worker.run_once()

    first, failed = named(exporter, "RunDueDebits")
    assert first.parent is None  # not the caller's child: a round is its own trace
    (created,) = [s for s in exporter.get_finished_spans() if s.name.startswith("create ")]
    assert created.parent is not None
    assert created.parent.span_id == span_id(first)
    traceparent = published[0].header(tracing.TRACEPARENT)
    assert traceparent is not None
    assert first.context is not None
    assert traceparent.split("-")[1] == f"{first.context.trace_id:032x}"
    assert failed.status.status_code is StatusCode.ERROR
    assert (failed.attributes or {})["error.type"] == "ServiceUnavailable"
