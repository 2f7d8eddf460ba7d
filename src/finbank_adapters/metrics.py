"""Operational metrics of finbank processes: each defined once, written two ways.

Every metric an alarm or an autoscaling policy reads is a :class:`Metric` in
this module (:data:`ALL`): its CloudWatch name, unit, kind and dimensions.
Code records through a :class:`MetricsRecorder`; ``deploy/terraform`` alarms
on the same names, and ``tests/deploy/test_terraform.py`` reads them from
here, so the two cannot drift apart.

Two outputs, one recorder:

* **Prometheus text** (always): the HTTP service appends
  :meth:`MetricsRecorder.prometheus_text` to its ``/metrics``; ``finbank
  relay`` and ``finbank worker`` serve it on ``FINBANK_METRICS_PORT``
  (:func:`serve_prometheus`). That is what a local profile, a laptop or a
  Prometheus-based platform scrapes.
* **CloudWatch Embedded Metric Format** (``FINBANK_METRICS_FORMAT=emf``, the
  ``aws`` profile's default): JSON lines on stdout. ECS and Batch already send
  stdout to CloudWatch Logs (the ``awslogs`` driver), and CloudWatch extracts
  metrics from EMF lines on ingestion. So a metric costs no API call in the
  request path, no agent sidecar, no ``cloudwatch:PutMetricData`` permission,
  and the datapoint stays in the log next to the lines that explain it.
  Counters and gauges are aggregated in memory and written every
  ``FINBANK_METRICS_FLUSH_SECONDS`` and on exit; distributions
  (settlement latency) are written as value lists, from which CloudWatch
  computes percentiles.

Dimension values are codes, group and topic names only (never an id,
document, key or amount). Every metric carries ``Environment``.
"""

from __future__ import annotations

import atexit
import enum
import functools
import json
import logging
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import IO, TYPE_CHECKING, Any, NamedTuple, ParamSpec, TypeVar

if TYPE_CHECKING:
    import asyncio

    from finbank_adapters.settings import Settings

log = logging.getLogger(__name__)

#: the CloudWatch namespace of finbank's own metrics (``FINBANK_METRICS_NAMESPACE``)
NAMESPACE = "Finbank"
#: the dimension every metric carries (``FINBANK_METRICS_ENVIRONMENT``)
ENVIRONMENT = "Environment"
#: EMF allows at most 100 values per metric in one document
_EMF_MAX_VALUES = 100


class Kind(enum.StrEnum):
    COUNTER = "counter"  # summed over a period (Sum)
    GAUGE = "gauge"  # the last value (Maximum over a period)
    DISTRIBUTION = "distribution"  # every observation (percentiles)


class Metric(NamedTuple):
    """One metric: CloudWatch name and unit, kind, dimensions besides ``Environment``."""

    name: str
    unit: str
    kind: Kind
    dimensions: tuple[str, ...]
    description: str

    @property
    def all_dimensions(self) -> tuple[str, ...]:
        return (ENVIRONMENT, *self.dimensions)

    @property
    def prometheus_name(self) -> str:
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()
        suffix = "_total" if self.kind is Kind.COUNTER else ""
        return f"finbank_{snake}{suffix}"


RECONCILIATION_DISCREPANCIES = Metric(
    "ReconciliationDiscrepancies",
    "Count",
    Kind.GAUGE,
    (),
    "Discrepancies the last reconciliation run found (every class but matched).",
)
OUTBOX_OLDEST_AGE = Metric(
    "OutboxOldestEventAge",
    "Seconds",
    Kind.GAUGE,
    (),
    "Age of the oldest event still in the outbox (0 when it is empty).",
)
OUTBOX_BACKLOG = Metric(
    "OutboxWaitingEvents", "Count", Kind.GAUGE, (), "Events in the outbox not yet published."
)
CONSUMER_LAG = Metric(
    "ConsumerGroupLag",
    "Count",
    Kind.GAUGE,
    ("ConsumerGroup", "Topic"),
    "Records between a consumer group's committed offsets and the ends of a topic's partitions.",
)
DLQ_DEPTH = Metric(
    "DeadLetterDepth",
    "Count",
    Kind.GAUGE,
    ("Topic",),
    "Records in a dead-letter topic that `finbank dlq replay` has not replayed yet.",
)
SETTLEMENT_LATENCY = Metric(
    "PixSettlementLatency",
    "Seconds",
    Kind.DISTRIBUTION,
    (),
    "From a PIX payment's request to SETTLED (the record's created_at to settled_at).",
)
MFA_FAILURES = Metric("MfaFailures", "Count", Kind.COUNTER, (), "Wrong answers to MFA challenges.")
LOGIN_LOCKOUTS = Metric(
    "LoginLockouts", "Count", Kind.COUNTER, (), "Failed logins that started a lockout."
)
LEDGER_RESULTS = Metric(
    "LedgerResults",
    "Count",
    Kind.COUNTER,
    ("Result",),
    "Transfers the ledger answered, by result code (ok, exists, exceeds_credits...).",
)
LEDGER_UNEXPECTED_RESULTS = Metric(
    "LedgerUnexpectedResults",
    "Count",
    Kind.COUNTER,
    (),
    "Ledger results no caller of ours should provoke (a bug or tampering, never a customer).",
)

ALL: tuple[Metric, ...] = (
    RECONCILIATION_DISCREPANCIES,
    OUTBOX_OLDEST_AGE,
    OUTBOX_BACKLOG,
    CONSUMER_LAG,
    DLQ_DEPTH,
    SETTLEMENT_LATENCY,
    MFA_FAILURES,
    LOGIN_LOCKOUTS,
    LEDGER_RESULTS,
    LEDGER_UNEXPECTED_RESULTS,
)
BY_NAME: Mapping[str, Metric] = {metric.name: metric for metric in ALL}

#: ledger results that are a customer's or a retry's normal outcome; the others are counted
#: in :data:`LEDGER_UNEXPECTED_RESULTS` too
EXPECTED_LEDGER_RESULTS = frozenset(
    {
        "ok",
        "exists",
        "exceeds_credits",
        "exceeds_debits",
        "linked_event_failed",  # the others of a chain when one member is refused
        "pending_transfer_already_posted",  # a settlement replayed
        "pending_transfer_already_voided",
        "pending_transfer_expired",
        "debit_account_not_found",  # an unknown account typed by a customer
        "credit_account_not_found",
    }
)

_Series = tuple[Metric, tuple[str, ...]]  # (metric, values of its dimensions in order)


class MetricsRecorder:
    """Counters, gauges and distributions of one process; Prometheus text and EMF lines.

    Thread-safe (the EMF flusher is a thread). ``clock`` is a monotonic clock
    used only for the EMF flush interval and the EMF timestamp's origin is
    ``wall``; tests pass both.
    """

    def __init__(
        self,
        *,
        namespace: str = NAMESPACE,
        environment: str = "local",
        emf: bool = False,
        stream: IO[str] | None = None,
        flush_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.namespace = namespace
        self.environment = environment
        self.emf = emf
        self._stream = stream
        self._flush_seconds = flush_seconds
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        # cumulative, for Prometheus
        self._totals: dict[_Series, float] = {}
        self._observations: dict[_Series, tuple[int, float]] = {}
        # since the last EMF flush
        self._pending_counts: dict[_Series, float] = {}
        self._pending_values: dict[_Series, list[float]] = {}
        self._pending_gauges: dict[_Series, float] = {}
        # counters bumped by 1 without hashing their series (:meth:`_counter_cell`): each
        # cell is [count not yet in the two dicts above, series, flush generation of its
        # place in ``_pending_counts``]; folded in under the lock before any read
        self._cells: dict[_Series, list[Any]] = {}
        self._generation = 0
        #: ledger result code -> (its ``LedgerResults`` cell, whether it is unexpected),
        #: filled by :func:`record_ledger_results` as codes are met
        self._ledger_results: dict[str, tuple[list[Any], bool]] = {}
        self._last_flush = clock()
        self._flusher: threading.Thread | None = None
        self._stop_flusher = threading.Event()

    # -- recording ------------------------------------------------------------------

    def add(self, metric: Metric, value: float = 1, **dimensions: str) -> None:
        """Add ``value`` to a counter."""
        series = self._series(metric, Kind.COUNTER, dimensions)
        with self._lock:
            self._totals[series] = self._totals.get(series, 0) + value
            self._pending_counts[series] = self._pending_counts.get(series, 0) + value
        self._maybe_flush()

    def _counter_cell(self, series: _Series) -> list[Any]:
        """The cell :meth:`_bump` adds 1 to ``series`` (a counter checked by :meth:`_series`).

        A series key is a tuple of tuples, hashed afresh at every dictionary update
        (four per :meth:`add`). A cell is found once, then counts by itself: the
        first bump since the last flush updates the dictionaries as :meth:`add`
        does (so the series takes the same place in the EMF flush's order); the
        next ones only count in the cell, added to both dictionaries before anything
        reads them (:meth:`_fold`, under the same lock).
        """
        with self._lock:
            cell = self._cells.get(series)
            if cell is None:
                cell = self._cells[series] = [0, series, -1]
            return cell

    def _bump(self, cell: list[Any]) -> None:
        """``add(metric, 1, ...)`` for the series of ``cell`` (from :meth:`_counter_cell`)."""
        with self._lock:
            if cell[2] == self._generation:
                cell[0] += 1
            else:  # first since the last flush: its place in the dictionaries, as add's
                series = cell[1]
                self._totals[series] = self._totals.get(series, 0) + 1
                self._pending_counts[series] = self._pending_counts.get(series, 0) + 1
                cell[2] = self._generation
        if self.emf:
            self._maybe_flush()

    def _fold(self) -> None:
        """Add the cells' counts to the dictionaries; the caller holds the lock."""
        totals, pending = self._totals, self._pending_counts
        for cell in self._cells.values():
            if count := cell[0]:
                # bumped in the cell only after its series had a place in both
                series = cell[1]
                totals[series] += count
                pending[series] += count
                cell[0] = 0

    def set(self, metric: Metric, value: float, **dimensions: str) -> None:
        """Set a gauge."""
        series = self._series(metric, Kind.GAUGE, dimensions)
        with self._lock:
            self._totals[series] = value
            self._pending_gauges[series] = value
        self._maybe_flush()

    def observe(self, metric: Metric, value: float, **dimensions: str) -> None:
        """Record one observation of a distribution."""
        series = self._series(metric, Kind.DISTRIBUTION, dimensions)
        with self._lock:
            count, total = self._observations.get(series, (0, 0.0))
            self._observations[series] = (count + 1, total + value)
            self._pending_values.setdefault(series, []).append(value)
        self._maybe_flush()

    def value(self, metric: Metric, **dimensions: str) -> float:
        """A counter's total or a gauge's value (0 if never recorded); the count of a
        distribution's observations."""
        series = self._series(metric, metric.kind, dimensions)
        with self._lock:
            self._fold()
            if metric.kind is Kind.DISTRIBUTION:
                return self._observations.get(series, (0, 0.0))[0]
            return self._totals.get(series, 0)

    def _series(self, metric: Metric, kind: Kind, dimensions: Mapping[str, str]) -> _Series:
        if metric.kind is not kind:
            raise ValueError(f"{metric.name} is a {metric.kind.value}, not a {kind.value}")
        names = metric.dimensions
        if len(dimensions) == len(names):  # then every name present means the same set
            try:
                return metric, tuple([str(dimensions[name]) for name in names])
            except KeyError:
                pass
        raise ValueError(f"{metric.name} takes dimensions {list(names)}, got {sorted(dimensions)}")

    # -- Prometheus -----------------------------------------------------------------

    def prometheus_text(self) -> bytes:
        """Every metric recorded so far in the Prometheus text format (version 0.0.4)."""
        with self._lock:
            self._fold()
            totals = dict(self._totals)
            observations = dict(self._observations)
        lines: list[str] = []
        for metric in ALL:
            name = metric.prometheus_name
            kind = {"counter": "counter", "gauge": "gauge", "distribution": "summary"}
            lines.append(f"# HELP {name} {metric.description}")
            lines.append(f"# TYPE {name} {kind[metric.kind.value]}")
            if metric.kind is Kind.DISTRIBUTION:
                for (m, values), (count, total) in sorted(observations.items(), key=_key):
                    if m is metric:
                        labels = _labels(metric, values)
                        lines.append(f"{name}_count{labels} {count}")
                        lines.append(f"{name}_sum{labels} {_number(total)}")
                continue
            for (m, values), value in sorted(totals.items(), key=_key):
                if m is metric:
                    lines.append(f"{name}{_labels(metric, values)} {_number(value)}")
        return ("\n".join(lines) + "\n").encode()

    # -- EMF ------------------------------------------------------------------------

    def _maybe_flush(self) -> None:
        if self.emf and self._clock() - self._last_flush >= self._flush_seconds:
            self.flush()

    def flush(self) -> int:
        """Write what was recorded since the last flush as EMF lines; returns how many.

        One document per series: counters summed, a gauge's last value, up to 100
        values of a distribution per document. Nothing is written unless ``emf``.
        """
        with self._lock:
            self._fold()
            self._generation += 1  # the cells' places in the pending counts go with them
            counts, self._pending_counts = self._pending_counts, {}
            gauges, self._pending_gauges = self._pending_gauges, {}
            values, self._pending_values = self._pending_values, {}
            self._last_flush = self._clock()
        if not self.emf:
            return 0
        documents: list[dict[str, object]] = []
        for (metric, dims), total in counts.items():
            documents.append(self._document(metric, dims, total))
        for (metric, dims), value in gauges.items():
            documents.append(self._document(metric, dims, value))
        for (metric, dims), observed in values.items():
            for start in range(0, len(observed), _EMF_MAX_VALUES):
                chunk = observed[start : start + _EMF_MAX_VALUES]
                documents.append(self._document(metric, dims, chunk))
        if not documents:
            return 0
        stream = self._stream or sys.stdout
        for document in documents:
            stream.write(json.dumps(document, separators=(",", ":")) + "\n")
        stream.flush()
        return len(documents)

    def _document(
        self, metric: Metric, dims: tuple[str, ...], value: float | list[float]
    ) -> dict[str, object]:
        """One EMF document (the CloudWatch embedded metric format specification)."""
        document: dict[str, object] = {
            "_aws": {
                "Timestamp": int(self._wall() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": [list(metric.all_dimensions)],
                        "Metrics": [{"Name": metric.name, "Unit": metric.unit}],
                    }
                ],
            },
            ENVIRONMENT: self.environment,
            metric.name: value,
        }
        document.update(zip(metric.dimensions, dims, strict=True))
        return document

    def start_flusher(self) -> None:
        """Flush every ``flush_seconds`` from a daemon thread, and once more at exit."""
        if not self.emf or self._flusher is not None:
            return

        def loop() -> None:
            while not self._stop_flusher.wait(self._flush_seconds):
                try:
                    self.flush()
                except Exception as exc:  # never take the process down for a metric
                    log.warning("metrics: EMF flush failed: %r", exc)

        self._flusher = threading.Thread(target=loop, name="finbank-metrics", daemon=True)
        self._flusher.start()
        atexit.register(self.flush)

    def stop_flusher(self) -> None:
        """Stop the thread and flush what is left; nothing more is written at exit."""
        self._stop_flusher.set()
        atexit.unregister(self.flush)
        self.flush()


def _key(item: tuple[_Series, object]) -> tuple[str, ...]:
    return item[0][1]


def _labels(metric: Metric, values: tuple[str, ...]) -> str:
    pairs = [(_snake(name), value) for name, value in zip(metric.dimensions, values, strict=True)]
    if not pairs:
        return ""
    inner = ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)
    return "{" + inner + "}"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


# -- the process's recorder -------------------------------------------------------------

_recorder = MetricsRecorder()
_configured = False
_configure_lock = threading.Lock()


def recorder() -> MetricsRecorder:
    """The process's recorder (configured by :func:`configure`, else Prometheus-only)."""
    return _recorder


def configure(settings: Settings, *, stream: IO[str] | None = None) -> MetricsRecorder:
    """Configure the process's recorder from ``settings`` once; later calls return it.

    ``emf`` when ``FINBANK_METRICS_FORMAT`` says so (``auto``: on the ``aws``
    profile), with a flusher thread, its lines written to ``stream`` (stdout when
    ``None``). Entry points (``finbank serve``, ``relay``, ``worker``, ``reconcile``)
    call it; a library embedding finbank may too.
    """
    global _recorder, _configured
    from finbank_adapters.settings import MetricsFormat, Profile

    with _configure_lock:
        if _configured:
            return _recorder
        options = settings.metrics
        emf = options.format is MetricsFormat.EMF or (
            options.format is MetricsFormat.AUTO and settings.profile is Profile.AWS
        )
        _recorder = MetricsRecorder(
            namespace=options.namespace,
            environment=options.environment,
            emf=emf,
            stream=stream,
            flush_seconds=options.flush_seconds,
        )
        _recorder.start_flusher()
        _configured = True
        return _recorder


def reset_for_tests(new: MetricsRecorder | None = None) -> MetricsRecorder:
    """Replace the process's recorder (tests); returns the new one."""
    global _recorder, _configured
    with _configure_lock:
        _recorder.stop_flusher()
        _recorder = new or MetricsRecorder()
        _configured = new is not None
        return _recorder


async def serve_prometheus(port: int, stop: asyncio.Event, host: str = "127.0.0.1") -> None:
    """Serve ``GET /metrics`` (the process recorder's Prometheus text) until ``stop``.

    A minimal HTTP/1.1 responder on asyncio streams, so the relay and the
    worker need no web framework. Any other path answers 404. Loopback by
    default: metrics are for the scraper next to the process, not the network.
    """
    import asyncio

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)).strip():
                pass  # headers
            parts = request.decode("latin-1").split()
            if len(parts) >= 2 and parts[0] == "GET" and parts[1].split("?")[0] == "/metrics":
                body = recorder().prometheus_text()
                head = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8"
            else:
                body = b"not found\n"
                head = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain"
            writer.write(
                f"{head}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            )
            writer.write(body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, port)
    async with server:
        log.info("metrics: Prometheus text on %s:%d/metrics", host, port)
        await stop.wait()


#: most result codes a recorder keeps a cell for (codes come from one enum)
_ONE_RESULT_MAX = 64


def record_ledger_results(results: Iterable[str]) -> None:
    """Count one ledger batch's results (``LedgerResults`` by code, ``LedgerUnexpectedResults``).

    Called by the ledger adapters with each ``create_transfers`` answer: one lock
    per distinct code, so a batch of 8,190 costs a few dictionary updates.
    """
    recorder = _recorder
    if type(results) is list and len(results) == 1:  # one transfer (every HTTP transfer)
        # its code's counter cell, found by the code (results are str codes or a StrEnum
        # of them, equal and hashed as their text, a hash str keeps): one count under
        # the lock, recorder._bump inline for an expected code
        one = recorder._ledger_results.get(results[0])
        if one is not None:
            cell = one[0]
            if one[1]:  # unexpected: both counters, as add's
                recorder._bump(cell)
                recorder._bump(recorder._counter_cell((LEDGER_UNEXPECTED_RESULTS, ())))
                return
            with recorder._lock:
                if cell[2] == recorder._generation:
                    cell[0] += 1
                else:  # first since the last flush: its place in the dictionaries
                    series = cell[1]
                    recorder._totals[series] = recorder._totals.get(series, 0) + 1
                    pending = recorder._pending_counts
                    pending[series] = pending.get(series, 0) + 1
                    cell[2] = recorder._generation
            if recorder.emf:
                recorder._maybe_flush()
            return
    if isinstance(results, Sequence) and len(results) == 1:  # one transfer: no Counter
        code = str(results[0])
        if isinstance(results[0], str) and len(recorder._ledger_results) < _ONE_RESULT_MAX:
            recorder._ledger_results[code] = (
                recorder._counter_cell(
                    recorder._series(LEDGER_RESULTS, Kind.COUNTER, {"Result": code})
                ),
                code not in EXPECTED_LEDGER_RESULTS,
            )
        recorder.add(LEDGER_RESULTS, 1, Result=code)
        if code not in EXPECTED_LEDGER_RESULTS:
            recorder.add(LEDGER_UNEXPECTED_RESULTS, 1)
        return
    unexpected = 0
    for code, count in Counter(str(r) for r in results).items():
        recorder.add(LEDGER_RESULTS, count, Result=code)
        if code not in EXPECTED_LEDGER_RESULTS:
            unexpected += count
    if unexpected:
        recorder.add(LEDGER_UNEXPECTED_RESULTS, unexpected)


_P = ParamSpec("_P")
_R = TypeVar("_R", bound=Sequence[str])


def counts_ledger_results(
    method: Callable[_P, Coroutine[Any, Any, _R]],
) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """Decorates a ledger adapter's ``create_transfers``: its answer goes to
    :func:`record_ledger_results` (one line in each adapter, whatever its return paths)."""

    @functools.wraps(method)
    async def counted(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        results = await method(*args, **kwargs)
        record_ledger_results(results)
        return results

    return counted
