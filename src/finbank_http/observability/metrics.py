"""Prometheus metrics of a finbank process, exposed at ``/metrics``.

A small API for the code that knows the numbers: the HTTP middleware counts
requests; the PIX flow calls :func:`pix_payment`; the ledger's callers
:func:`observe_ledger_batch`; the outbox relay :func:`set_outbox_backlog`; Kafka
consumers :func:`set_consumer_lag`. Everything lives in one registry,
:data:`REGISTRY`, so an embedding application's own metrics never collide.

Route labels are route *templates* (``/v1/accounts/{account_id:uuid}``), never
raw paths, so no identifier or personal data becomes a label.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)

REGISTRY = CollectorRegistry(auto_describe=True)
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

#: PIX payment statuses, pre-declared so their series exist (at 0) before the first payment
PIX_STATUSES = ("PENDING", "SETTLED", "REJECTED", "RECEIVED", "REFUNDED")

HTTP_REQUESTS = Counter(
    "finbank_http_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "finbank_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
PIX_PAYMENTS = Counter(
    "finbank_pix_payments",
    "PIX payments that reached a status.",
    ["status"],
    registry=REGISTRY,
)
LEDGER_BATCH_SIZE = Histogram(
    "finbank_ledger_batch_size",
    "Transfers per batch applied to the ledger.",
    buckets=(1, 2, 5, 10, 50, 100, 500, 1000, 5000, 8190),
    registry=REGISTRY,
)
OUTBOX_BACKLOG = Gauge(
    "finbank_outbox_backlog",
    "Outbox rows not yet published to Kafka (set by the relay).",
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "finbank_consumer_lag",
    "Messages between a consumer group's committed offset and the partition's end.",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)
for _status in PIX_STATUSES:
    PIX_PAYMENTS.labels(status=_status)


#: the series of each (route, method, status) seen: ``labels()`` validates and locks on every
#: call, a dictionary lookup does not (route templates and methods are few: bounded)
_HTTP_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_http_request(route: str, method: str, status: int, duration_seconds: float) -> None:
    key = (route, method, status)
    series = _HTTP_SERIES.get(key)
    if series is None:
        series = (
            HTTP_REQUESTS.labels(route=route, method=method, status=str(status)),
            HTTP_LATENCY.labels(route=route, method=method),
        )
        if len(_HTTP_SERIES) < 4096:
            _HTTP_SERIES[key] = series
    series[0].inc()
    series[1].observe(duration_seconds)


def pix_payment(status: str) -> None:
    """Count a PIX payment that reached ``status`` (``SETTLED``, ``REJECTED``...)."""
    PIX_PAYMENTS.labels(status=status.upper()).inc()


def observe_ledger_batch(size: int) -> None:
    """Record the number of transfers in one ledger batch."""
    LEDGER_BATCH_SIZE.observe(size)


def set_outbox_backlog(rows: int) -> None:
    """Set the number of unpublished outbox rows (the relay, after each poll)."""
    OUTBOX_BACKLOG.set(rows)


def set_consumer_lag(group: str, topic: str, partition: int, lag: int) -> None:
    """Set one partition's lag for a consumer group (the consumer, after each commit)."""
    CONSUMER_LAG.labels(group=group, topic=topic, partition=str(partition)).set(lag)


def exposition() -> tuple[bytes, str]:
    """The registry in the Prometheus text format, with its content type; then the
    operational metrics every process records (``finbank_adapters.metrics``: ledger
    results, MFA failures, lockouts...)."""
    from finbank_adapters import metrics as operational

    text = generate_latest(REGISTRY) + operational.recorder().prometheus_text()
    return text, CONTENT_TYPE_LATEST
