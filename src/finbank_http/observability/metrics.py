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

import math
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator

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
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

REGISTRY = CollectorRegistry(auto_describe=True)
process_collector.ProcessCollector(registry=REGISTRY)
platform_collector.PlatformCollector(registry=REGISTRY)
gc_collector.GCCollector(registry=REGISTRY)

#: PIX payment statuses, pre-declared so their series exist (at 0) before the first payment
PIX_STATUSES = ("PENDING", "SETTLED", "REJECTED", "RECEIVED", "REFUNDED")

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


#: the buckets of ``finbank_http_request_duration_seconds`` (seconds)
HTTP_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: methods counted by name; any other is counted as ``OTHER`` (a label a client cannot grow)
STANDARD_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)


class HttpRequestMetrics(Collector):
    """``finbank_http_requests_total`` (route, method, status) and
    ``finbank_http_request_duration_seconds`` (route, method), kept as plain numbers.

    What a ``Counter`` and a ``Histogram`` of ``prometheus_client`` expose, the
    same families, samples, labels, buckets and ``_created`` times, but each
    request costs one lock and a few additions (``Counter.inc`` and
    ``Histogram.observe`` take three locks through six calls). Routes are
    templates; methods outside :data:`STANDARD_METHODS` count as ``OTHER``.
    """

    def __init__(self, buckets: tuple[float, ...] = HTTP_LATENCY_BUCKETS) -> None:
        self._bounds = (*buckets, math.inf)
        self._le: list[str] = [floatToGoString(bound) for bound in self._bounds]  # type: ignore[no-untyped-call]
        self._lock = threading.Lock()
        #: (route, method, status) -> [requests, created]
        self._requests: dict[tuple[str, str, int], list[float]] = {}
        #: (route, method) -> [count in each bucket (not cumulative)..., sum, created]
        self._latency: dict[tuple[str, str], list[float]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        if method not in STANDARD_METHODS:
            method = "OTHER"
        bucket = bisect_left(self._bounds, seconds)  # the first bound >= seconds ("le")
        with self._lock:
            requests = self._requests.get((route, method, status))
            if requests is None:
                requests = self._requests[(route, method, status)] = [0.0, time.time()]
            requests[0] += 1.0
            latency = self._latency.get((route, method))
            if latency is None:
                latency = self._latency[(route, method)] = [0.0] * len(self._bounds) + [
                    0.0,
                    time.time(),
                ]
            latency[bucket] += 1.0
            latency[-2] += seconds

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            requests = [(key, list(value)) for key, value in self._requests.items()]
            latency = [(key, list(value)) for key, value in self._latency.items()]
        counter = CounterMetricFamily(
            "finbank_http_requests",
            "HTTP requests answered, by route template, method and status code.",
            labels=["route", "method", "status"],
        )
        for (route, method, status), (count, created) in requests:
            counter.add_metric([route, method, str(status)], count, created=created)
        yield counter
        histogram = HistogramMetricFamily(
            "finbank_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            labels=["route", "method"],
        )
        for (route, method), values in latency:
            cumulative = 0.0
            buckets = []
            for le, count in zip(self._le, values, strict=False):
                cumulative += count
                buckets.append((le, cumulative))
            histogram.add_metric([route, method], buckets, values[-2])
            histogram.samples.append(
                Sample(
                    "finbank_http_request_duration_seconds_created",
                    {"route": route, "method": method},
                    values[-1],
                    None,
                    None,
                )
            )
        yield histogram


HTTP_REQUEST_METRICS = HttpRequestMetrics()
REGISTRY.register(HTTP_REQUEST_METRICS)


def observe_http_request(route: str, method: str, status: int, duration_seconds: float) -> None:
    """Count one answered request and its duration (the request context middleware)."""
    HTTP_REQUEST_METRICS.observe(route, method, status, duration_seconds)


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
