"""``HttpRequestMetrics`` exposes what a ``prometheus_client`` ``Counter`` and ``Histogram``
of the same definitions expose after the same requests (``_created`` times aside), and counts
a method outside the standard ones as ``OTHER``."""

from __future__ import annotations

import re
import threading

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from finbank_http.observability import metrics
from finbank_http.observability.metrics import HTTP_LATENCY_BUCKETS, HttpRequestMetrics

REQUESTS = [
    ("/v1/transfers", "POST", 201, 0.0012),
    ("/v1/transfers", "POST", 201, 0.005),  # on a bound: in its bucket ("le")
    ("/v1/transfers", "POST", 422, 0.0051),
    ("/v1/transfers", "POST", 201, 10.0),
    ("/v1/transfers", "POST", 201, 12.5),  # over the last bound: +Inf only
    ("/v1/accounts/{account_id:uuid}", "GET", 200, 0.0),
    ("/health", "GET", 200, 0.3),
    ("unmatched", "DELETE", 404, 0.02),
]


def exposition(registry: CollectorRegistry) -> str:
    text = generate_latest(registry).decode()
    return re.sub(r"^(\w+_created\{.*\}) \S+$", r"\1 T", text, flags=re.MULTILINE)


def test_the_same_exposition_as_prometheus_clients_counter_and_histogram() -> None:
    theirs = CollectorRegistry()
    counter = Counter(
        "finbank_http_requests",
        "HTTP requests answered, by route template, method and status code.",
        ["route", "method", "status"],
        registry=theirs,
    )
    histogram = Histogram(
        "finbank_http_request_duration_seconds",
        "Time to answer an HTTP request, by route template and method.",
        ["route", "method"],
        buckets=HTTP_LATENCY_BUCKETS,
        registry=theirs,
    )
    ours = CollectorRegistry()
    collector = HttpRequestMetrics()
    ours.register(collector)
    for route, method, status, seconds in REQUESTS:
        counter.labels(route=route, method=method, status=str(status)).inc()
        histogram.labels(route=route, method=method).observe(seconds)
        collector.observe(route, method, status, seconds)
    assert exposition(ours) == exposition(theirs)
    assert "_created{" in exposition(ours)


def test_a_method_outside_the_standard_ones_is_counted_as_other() -> None:
    registry = CollectorRegistry()
    collector = HttpRequestMetrics()
    registry.register(collector)
    collector.observe("unmatched", "X52998224725", 405, 0.001)
    collector.observe("unmatched", "PROPFIND", 405, 0.001)
    text = generate_latest(registry).decode()
    assert "52998224725" not in text
    assert "PROPFIND" not in text
    assert 'finbank_http_requests_total{method="OTHER",route="unmatched",status="405"} 2.0' in text


def test_counts_from_many_threads_are_all_kept() -> None:
    collector = HttpRequestMetrics()

    def hammer() -> None:
        for _ in range(2000):
            collector.observe("/health", "GET", 200, 0.001)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [counter, histogram] = list(collector.collect())
    assert [s.value for s in counter.samples if s.name.endswith("_total")] == [16000.0]
    assert [s.value for s in histogram.samples if s.name.endswith("_count")] == [16000.0]


def test_the_process_registry_has_the_http_series() -> None:
    metrics.observe_http_request("/probe-route", "GET", 200, 0.001)
    body, _ = metrics.exposition()
    assert b'finbank_http_requests_total{method="GET",route="/probe-route",status="200"}' in body
    assert (
        b'finbank_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/probe-route"}'
        in body
    )
