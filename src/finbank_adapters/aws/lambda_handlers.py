"""The PIX table's DynamoDB stream processor, run by a Lambda.

:class:`PixStreamProcessor` receives batches of stream records
(``NEW_AND_OLD_IMAGES``) and turns each *status change* of a payment record
into a ``pix.payment_status_changed`` event, published through the
configured ``EventPublisher`` (the PostgreSQL outbox on the ``aws``
profile). It is the record's own outbox: whatever process changed a record,
and whether or not it crashed before publishing, the change reaches the bus.

* **Partial batch failures.** Powertools' ``BatchProcessor`` for
  ``DynamoDBStreams`` runs the records one by one and answers
  ``{"batchItemFailures": [{"itemIdentifier": <SequenceNumber>}, ...]}``;
  the event source mapping needs ``FunctionResponseTypes=["ReportBatchItemFailures"]``.
* **Order per key.** Once a record of an item fails, the later records of
  the same item in the batch are not processed and are reported failed as
  well, so an item's changes are applied in stream order on the retry.
  (Lambda retries from the lowest failed sequence number, so records of
  other items after it come again too: the next point covers them.)
* **Idempotent.** The effect id is ``<e2e>#v<version>``: a stream record,
  delivered any number of times, is one version of one record. A marker
  (:class:`~finbank_adapters.aws.dynamo_effects.DynamoEffectLog`) is read
  before publishing and written after; the event id is derived from the
  effect id (a UUIDv7 whose time is the change's, whose other bits hash the
  effect id), so the rare re-publication after a crash between the two is
  dropped by consumers' inboxes.
* **One event loop** per execution environment, created on the first
  invocation and reused by warm ones, with the container (and its clients)
  opened on it once: the entry point, :func:`finbank.lambdas.pix_stream_handler`,
  builds the runtime from the bank's containers and hands this processor its
  publisher, effect log and loop.
* Powertools ``Logger`` (JSON) and ``Metrics`` (CloudWatch EMF, namespace
  ``finbank``): ``StreamRecordProcessed``, ``StreamRecordSkipped``,
  ``StreamRecordDuplicate``, ``StreamRecordFailed``, ``StreamRecordHeldBack``
  per record. Logs carry sequence numbers, E2E ids and error *types*; never
  images (names, masked documents, descriptions).

* **The stream view is checked, not assumed.** A status change needs the
  record's old *and* new image. A record of any other view (``KEYS_ONLY``,
  ``NEW_IMAGE``, ``OLD_IMAGE``, or none stated) fails with
  :class:`UnsupportedStreamView`, which names the view; nothing is published
  for it, it is reported in ``batchItemFailures`` and ends in the on-failure
  queue (the ``pix-stream-dlq-depth`` alarm). We refuse rather than re-read
  the item: a re-read returns the item's *current* version, not the one the
  record is about, so the previous status (what makes a change a change) and
  the intermediate versions would be guessed, and a refund would again be
  announced as a change from nothing. The table is ours and Terraform sets
  ``NEW_AND_OLD_IMAGES``: another view is a deployment error to surface.
* **Malformed events.** An event without ``Records`` (or with an empty list)
  is an empty batch: nothing to do, nothing failed. ``Records`` that is not a
  list (or an event that is not an object) raises :class:`MalformedStreamEvent`:
  Lambda never sends one, so it is an invocation error, not a record's failure.
  A record without its ``dynamodb`` part fails alone with
  :class:`MalformedStreamRecord`; having no sequence number, it is reported
  with a null ``itemIdentifier``, which Lambda takes as the whole batch failing
  (retried, then the on-failure queue) -- the other records are still processed.
* **Traces.** With ``FINBANK_TRACING=otel`` the payment record carries its
  writer's W3C trace context (``traceparent``, ``tracestate`` attributes);
  each stream record is a ``process pix-stream`` span, a child of (and linked
  to) that context, and the event it publishes carries the span's context on
  (``finbank_adapters.tracing``).
* **Configuration from Secrets Manager at cold start**: when
  ``FINBANK_SECRETS_ID`` is set, the secret's values become ``FINBANK_*``
  variables before the container is built (as every ``finbank`` command does).

Deploy with an event filter on ``dynamodb.Keys.sk.S = ["PAY"]``: index,
idempotency and marker items are skipped anyway, filtering saves invocations.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)

from finbank_adapters import tracing
from finbank_adapters.aws.dynamo import decode_payment_body
from finbank_adapters.aws.dynamo_schema import PAYMENT_SK, PK, SK
from finbank_core.pix.payments import PixPayment
from finbank_core.shared.events import EventEnvelope, EventPublisher
from finbank_core.shared.ids import uuid7

PAYMENT_STATUS_CHANGED = "pix.payment_status_changed"
SERVICE = "pix-stream"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace="finbank", service=SERVICE)


class EffectLog(Protocol):
    """Applied effects of one consumer (see ``DynamoEffectLog``)."""

    async def done(self, effect_id: str) -> bool: ...

    async def record(self, effect_id: str) -> None: ...


class HeldBack(Exception):
    """Not processed: an earlier record of the same item failed in this batch."""


#: the only stream view the handler accepts (deploy/terraform/modules/dynamodb sets it)
REQUIRED_VIEW = "NEW_AND_OLD_IMAGES"


class UnsupportedStreamView(Exception):
    """A stream record of a view other than ``NEW_AND_OLD_IMAGES``; the message names it."""

    def __init__(self, view: str | None) -> None:
        self.view = view
        shown = view if view else "none stated"
        super().__init__(
            f"stream view {shown} is not supported: the PIX stream handler needs"
            f" {REQUIRED_VIEW} (the old and the new image of each change);"
            " set StreamViewType on the table's stream"
        )


class MalformedStreamEvent(ValueError):
    """A Lambda event that is not a DynamoDB Streams batch (``Records`` not a list)."""


class MalformedStreamRecord(Exception):
    """A stream record without its ``dynamodb`` part: no keys, images or sequence number."""


def _stream_records(event: Any) -> list[Any]:
    """The event's records; ``[]`` for none, ``MalformedStreamEvent`` for a non-list."""
    if not isinstance(event, Mapping):
        raise MalformedStreamEvent(
            f"a stream event must be an object with a Records list, not {type(event).__name__}"
        )
    records = event.get("Records")
    if records is None:
        return []
    if not isinstance(records, list):
        raise MalformedStreamEvent(
            f"the stream event's Records must be a list, not {type(records).__name__}"
        )
    return records


def _with_stream_part(record: Any) -> Any:
    """``record``, or a copy with an empty ``dynamodb`` part if it has none usable.

    Powertools reports a failed record by ``record.dynamodb.sequence_number``: a
    record without ``dynamodb`` made that report raise ``AttributeError`` and the
    whole batch fail unreported. With an empty part it fails as itself
    (:class:`MalformedStreamRecord`) and is reported with a null identifier.
    """
    if isinstance(record, Mapping) and isinstance(record.get("dynamodb"), Mapping):
        return record
    fields = dict(record) if isinstance(record, Mapping) else {}
    return {**fields, "dynamodb": {}}


def check_stream_view(record: DynamoDBRecord) -> None:
    """Raise :class:`UnsupportedStreamView` unless ``record`` carries both images' view."""
    view = record.dynamodb.get("StreamViewType") if record.dynamodb else None
    if view != REQUIRED_VIEW:
        raise UnsupportedStreamView(str(view) if view else None)


def status_changed_event(payment: PixPayment, previous_status: str | None) -> EventEnvelope:
    """The notification for one version of a record; equal inputs give an equal envelope."""
    effect_id = effect_id_of(payment)
    occurred_at = payment.settled_at or payment.rejected_at or payment.created_at
    return EventEnvelope(
        event_id=derived_event_id(effect_id, occurred_at),
        type=PAYMENT_STATUS_CHANGED,
        version=1,
        occurred_at=occurred_at,
        aggregate_id=payment.end_to_end_id,
        payload={
            "end_to_end_id": payment.end_to_end_id,
            "flow": payment.flow.value,
            "status": payment.status.value,
            "previous_status": previous_status,
            "record_version": payment.version,
            "amount_cents": payment.amount.cents,
            "payer_account_id": str(payment.payer.account_id) if payment.payer.account_id else None,
            "payee_account_id": str(payment.payee.account_id) if payment.payee.account_id else None,
            "reject_reason": payment.reject_reason.value if payment.reject_reason else None,
        },
    )


def effect_id_of(payment: PixPayment) -> str:
    return f"{payment.end_to_end_id}#v{payment.version}"


def derived_event_id(effect_id: str, occurred_at: datetime) -> uuid.UUID:
    """A UUIDv7 that is a function of ``effect_id`` (time bits: ``occurred_at``)."""
    digest = int.from_bytes(hashlib.sha256(effect_id.encode()).digest()[:10], "big")
    return uuid7(int(occurred_at.timestamp() * 1000), digest >> 62, digest)


def _record_span(record: DynamoDBRecord) -> Any:
    """The ``process`` span of one stream record: a child of (and linked to) the trace
    context its item was written with, when the item carries one."""
    stream = record.dynamodb
    image = stream.new_image if stream is not None and stream.new_image else {}
    return tracing.processing_record(
        image,
        name=f"process {SERVICE}",
        attributes={
            "messaging.system": "aws.dynamodb",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": SERVICE,
            "messaging.message.id": (stream.sequence_number or "") if stream else "",
            "faas.trigger": "datasource",
        },
    )


def _item_key(record: DynamoDBRecord) -> str:
    keys = record.dynamodb.keys if record.dynamodb else {}
    return f"{keys.get(PK)}|{keys.get(SK)}"


class PixStreamProcessor:
    """Processes stream batches on ``loop`` with an already-built publisher and effect log."""

    def __init__(
        self, publisher: EventPublisher, effects: EffectLog, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._publisher = publisher
        self._effects = effects
        self._loop = loop

    def process_batch(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        """Process one Lambda event; returns the partial batch response."""
        records = [_with_stream_part(r) for r in _stream_records(event)]
        if not records:  # Powertools refuses an empty batch (UnexpectedBatchTypeError)
            logger.info("stream batch done", extra={"records": 0, "failed": 0})
            return {"batchItemFailures": []}
        failed_items: set[str] = set()
        # a new processor per batch: it holds the batch's successes and failures
        processor = BatchProcessor(
            event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
        )

        def record_handler(record: DynamoDBRecord) -> None:
            item = _item_key(record)
            sequence = record.dynamodb.sequence_number if record.dynamodb else None
            if item in failed_items:
                metrics.add_metric(name="StreamRecordHeldBack", unit=MetricUnit.Count, value=1)
                raise HeldBack(f"an earlier record of this item failed ({sequence})")
            try:
                if not record.dynamodb:
                    raise MalformedStreamRecord("a stream record without its dynamodb part")
                check_stream_view(record)
                with _record_span(record):  # tracing on: continues the writer's trace
                    outcome = self._loop.run_until_complete(self._handle(record))
            except UnsupportedStreamView as exc:
                failed_items.add(item)
                metrics.add_metric(name="StreamRecordFailed", unit=MetricUnit.Count, value=1)
                logger.error(
                    "stream record refused: wrong stream view",
                    extra={"sequence_number": sequence, "stream_view": exc.view or "none"},
                )
                raise
            except Exception as exc:
                failed_items.add(item)
                metrics.add_metric(name="StreamRecordFailed", unit=MetricUnit.Count, value=1)
                logger.warning(
                    "stream record failed",
                    extra={"sequence_number": sequence, "error": type(exc).__name__},
                )
                raise
            metrics.add_metric(name=outcome, unit=MetricUnit.Count, value=1)

        try:
            response: dict[str, Any] = dict(
                process_partial_response(
                    event={**event, "Records": records},
                    record_handler=record_handler,
                    processor=processor,
                    context=context,
                )
            )
        finally:
            metrics.flush_metrics()
        logger.info(
            "stream batch done",
            extra={
                "records": len(records),
                "failed": len(response.get("batchItemFailures", [])),
            },
        )
        return response

    async def _handle(self, record: DynamoDBRecord) -> str:
        """Apply one record; returns the metric name of what happened."""
        stream = record.dynamodb
        if stream is None or stream.keys.get(SK) != PAYMENT_SK:
            return "StreamRecordSkipped"  # index, idempotency and marker items
        if record.event_name is DynamoDBRecordEventName.REMOVE:
            return "StreamRecordSkipped"  # payment records are never deleted
        payment = decode_payment_body(stream.new_image["body"])
        old_status = stream.old_image.get("status") if stream.old_image else None
        if old_status == payment.status.value:
            return "StreamRecordSkipped"  # e.g. a refund added: no status change
        effect_id = effect_id_of(payment)
        if await self._effects.done(effect_id):
            return "StreamRecordDuplicate"
        await self._publisher.publish([status_changed_event(payment, old_status)])
        await self._effects.record(effect_id)
        logger.info(
            "payment status changed",
            extra={"end_to_end_id": payment.end_to_end_id, "status": payment.status.value},
        )
        return "StreamRecordProcessed"
