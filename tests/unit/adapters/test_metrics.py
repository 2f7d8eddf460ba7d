"""The metrics module: definitions, EMF documents as CloudWatch reads them, Prometheus text,
and the code that records (ledger results, MFA failures and lockouts)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from finbank_adapters import metrics
from finbank_adapters.containers import build_container, resolve
from finbank_adapters.memory import FakeClock, InMemoryLedger
from finbank_adapters.memory.auth import InMemoryLoginThrottle
from finbank_adapters.metered import MeteredLoginThrottle
from finbank_adapters.metrics import Kind, MetricsRecorder
from finbank_adapters.settings import MetricsFormat, MetricsOptions, Profile, Settings
from finbank_core.accounts.ledger import AccountFlags, NewAccount, Transfer
from finbank_core.auth.errors import AccountLocked
from finbank_core.auth.lockout import LockoutPolicy


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def emf() -> Iterator[tuple[MetricsRecorder, io.StringIO, Ticks]]:
    stream = io.StringIO()
    ticks = Ticks()
    recorder = MetricsRecorder(
        environment="test",
        emf=True,
        stream=stream,
        flush_seconds=60,
        clock=ticks,
        wall=lambda: 1_700_000_000.5,
    )
    metrics.reset_for_tests(recorder)
    yield recorder, stream, ticks
    metrics.reset_for_tests()


def documents(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_every_metric_is_defined_once_with_a_cloudwatch_unit_and_a_prometheus_name() -> None:
    names = [m.name for m in metrics.ALL]
    assert len(names) == len(set(names))
    assert set(metrics.BY_NAME) == set(names)
    for metric in metrics.ALL:
        assert metric.unit in {"Count", "Seconds", "Milliseconds"}
        assert metric.all_dimensions[0] == metrics.ENVIRONMENT
        assert metric.prometheus_name.startswith("finbank_")
    assert metrics.LEDGER_RESULTS.prometheus_name == "finbank_ledger_results_total"
    assert metrics.OUTBOX_OLDEST_AGE.prometheus_name == "finbank_outbox_oldest_event_age"


def test_an_emf_document_is_what_cloudwatch_extracts_a_metric_from(
    emf: tuple[MetricsRecorder, io.StringIO, Ticks],
) -> None:
    recorder, stream, _ = emf
    recorder.set(metrics.CONSUMER_LAG, 42, ConsumerGroup="g", Topic="finbank.pix.v1")
    assert recorder.flush() == 1

    [document] = documents(stream)
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert document["_aws"]["Timestamp"] == 1_700_000_000_500
    assert directive == {
        "Namespace": "Finbank",
        "Dimensions": [["Environment", "ConsumerGroup", "Topic"]],
        "Metrics": [{"Name": "ConsumerGroupLag", "Unit": "Count"}],
    }
    # every dimension and the metric are members of the document's root
    assert document["Environment"] == "test"
    assert document["ConsumerGroup"] == "g"
    assert document["Topic"] == "finbank.pix.v1"
    assert document["ConsumerGroupLag"] == 42


def test_counters_are_summed_and_gauges_keep_the_last_value_between_flushes(
    emf: tuple[MetricsRecorder, io.StringIO, Ticks],
) -> None:
    recorder, stream, _ = emf
    recorder.add(metrics.MFA_FAILURES)
    recorder.add(metrics.MFA_FAILURES, 2)
    recorder.set(metrics.OUTBOX_BACKLOG, 7)
    recorder.set(metrics.OUTBOX_BACKLOG, 3)
    recorder.flush()
    by_name = {
        next(iter(d["_aws"]["CloudWatchMetrics"][0]["Metrics"]))["Name"]: d
        for d in documents(stream)
    }
    assert by_name["MfaFailures"]["MfaFailures"] == 3
    assert by_name["OutboxWaitingEvents"]["OutboxWaitingEvents"] == 3
    assert recorder.flush() == 0  # nothing new since
    assert recorder.value(metrics.MFA_FAILURES) == 3  # Prometheus keeps the running total


def test_a_distribution_is_written_as_value_lists_of_at_most_one_hundred(
    emf: tuple[MetricsRecorder, io.StringIO, Ticks],
) -> None:
    recorder, stream, _ = emf
    for n in range(250):
        recorder.observe(metrics.SETTLEMENT_LATENCY, n / 10)
    assert recorder.flush() == 3
    lists = [d["PixSettlementLatency"] for d in documents(stream)]
    assert [len(values) for values in lists] == [100, 100, 50]
    assert lists[2][-1] == 24.9


def test_emf_is_flushed_when_the_interval_is_reached_not_before(
    emf: tuple[MetricsRecorder, io.StringIO, Ticks],
) -> None:
    recorder, stream, ticks = emf
    ticks.now += 59.999
    recorder.add(metrics.LOGIN_LOCKOUTS)
    assert documents(stream) == []  # just before the interval
    ticks.now += 0.001
    recorder.add(metrics.LOGIN_LOCKOUTS)  # exactly at it
    [document] = documents(stream)
    assert document["LoginLockouts"] == 2


def test_without_emf_nothing_is_written_but_prometheus_counts() -> None:
    stream = io.StringIO()
    recorder = MetricsRecorder(emf=False, stream=stream)
    recorder.add(metrics.LEDGER_RESULTS, 2, Result="ok")
    recorder.add(metrics.LEDGER_RESULTS, 1, Result='we"ird\nvalue')
    recorder.observe(metrics.SETTLEMENT_LATENCY, 1.5)
    recorder.observe(metrics.SETTLEMENT_LATENCY, 0.5)
    assert recorder.flush() == 0
    assert stream.getvalue() == ""
    text = recorder.prometheus_text().decode()
    assert 'finbank_ledger_results_total{result="ok"} 2' in text
    assert 'finbank_ledger_results_total{result="we\\"ird\\nvalue"} 1' in text
    assert "finbank_pix_settlement_latency_count 2" in text
    assert "finbank_pix_settlement_latency_sum 2" in text
    assert "# TYPE finbank_consumer_group_lag gauge" in text


def test_emf_goes_to_the_configured_stream_and_a_stopped_recorder_writes_nothing_at_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registered: list[Any] = []
    monkeypatch.setattr("finbank_adapters.metrics.atexit.register", registered.append)

    def unregister(function: Any) -> None:  # as atexit's: what is not registered is ignored
        while function in registered:
            registered.remove(function)

    monkeypatch.setattr("finbank_adapters.metrics.atexit.unregister", unregister)
    stream = io.StringIO()
    metrics.reset_for_tests()
    try:
        settings = Settings(profile=Profile.LOCAL, metrics=MetricsOptions(format=MetricsFormat.EMF))
        recorder = metrics.configure(settings, stream=stream)
        assert registered == [recorder.flush]  # flushed once more at exit
        recorder.add(metrics.LEDGER_RESULTS, 1, Result="ok")
    finally:
        metrics.reset_for_tests()  # stops the flusher, which flushes what is left
    assert json.loads(stream.getvalue())["LedgerResults"] == 1
    assert registered == []  # not at exit any more: its stream may be closed by then
    stream.close()
    assert recorder.flush() == 0  # nothing recorded: the closed stream is not touched


def test_a_metric_refuses_other_dimensions_or_another_kind() -> None:
    recorder = MetricsRecorder()
    with pytest.raises(
        ValueError, match=r"ConsumerGroupLag takes dimensions \['ConsumerGroup', 'Topic'\]"
    ):
        recorder.set(metrics.CONSUMER_LAG, 1, Topic="t")
    with pytest.raises(ValueError, match="ConsumerGroupLag takes dimensions"):
        recorder.set(metrics.CONSUMER_LAG, 1, Topic="t", Group="g")  # as many, one misnamed
    with pytest.raises(ValueError, match="MfaFailures is a counter, not a gauge"):
        recorder.set(metrics.MFA_FAILURES, 1)
    assert metrics.MFA_FAILURES.kind is Kind.COUNTER


@pytest.mark.parametrize(
    ("profile", "format", "emf_on"),
    [
        (Profile.AWS, MetricsFormat.AUTO, True),
        (Profile.LOCAL, MetricsFormat.AUTO, False),
        (Profile.LOCAL, MetricsFormat.EMF, True),
        (Profile.AWS, MetricsFormat.PROMETHEUS, False),
    ],
)
def test_the_format_follows_the_settings(
    profile: Profile, format: MetricsFormat, emf_on: bool
) -> None:
    metrics.reset_for_tests()
    try:
        settings = Settings(
            profile=profile,
            metrics=MetricsOptions(format=format, environment="prod", namespace="Custom"),
        )
        recorder = metrics.configure(settings)
        assert recorder.emf is emf_on
        assert (recorder.environment, recorder.namespace) == ("prod", "Custom")
        assert metrics.configure(Settings()) is recorder  # once per process
    finally:
        metrics.reset_for_tests()


# -- what records -------------------------------------------------------------------------


async def test_the_ledger_counts_its_results_and_the_unexpected_ones_apart(
    emf: tuple[MetricsRecorder, io.StringIO, Ticks],
) -> None:
    recorder, _, _ = emf
    ledger = InMemoryLedger(FakeClock())
    a, b = uuid.uuid4(), uuid.uuid4()
    await ledger.create_accounts(
        [
            NewAccount(id=a, code=1),
            NewAccount(id=b, code=1, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS),
        ]
    )
    ok = Transfer(id=uuid.uuid4(), debit_account_id=a, credit_account_id=b, amount=5, code=1)
    overdraft = Transfer(
        id=uuid.uuid4(), debit_account_id=b, credit_account_id=a, amount=50, code=1
    )
    same = Transfer(id=uuid.uuid4(), debit_account_id=a, credit_account_id=a, amount=1, code=1)

    results = await ledger.create_transfers([ok, overdraft, same])
    await ledger.create_transfers([ok])  # a retry: exists

    assert [r.value for r in results] == ["ok", "exceeds_credits", "accounts_must_be_different"]
    assert recorder.value(metrics.LEDGER_RESULTS, Result="ok") == 1
    assert recorder.value(metrics.LEDGER_RESULTS, Result="exists") == 1
    assert recorder.value(metrics.LEDGER_RESULTS, Result="exceeds_credits") == 1
    assert recorder.value(metrics.LEDGER_RESULTS, Result="accounts_must_be_different") == 1
    assert recorder.value(metrics.LEDGER_UNEXPECTED_RESULTS) == 1  # only the last one
    again = Transfer(id=uuid.uuid4(), debit_account_id=b, credit_account_id=b, amount=1, code=1)
    assert await ledger.create_transfers([again]) == [results[2]]  # one result alone
    assert recorder.value(metrics.LEDGER_RESULTS, Result="accounts_must_be_different") == 2
    assert recorder.value(metrics.LEDGER_UNEXPECTED_RESULTS) == 2


async def test_the_metered_throttle_counts_mfa_failures_and_the_failure_that_locks(
    emf: tuple[MetricsRecorder, io.StringIO, Ticks],
) -> None:
    recorder, _, _ = emf
    clock = FakeClock()
    inner = InMemoryLoginThrottle(
        clock, LockoutPolicy(max_failures=3, failure_window_seconds=60, lock_seconds=60)
    )
    mfa = MeteredLoginThrottle(inner, mfa=True)
    password = MeteredLoginThrottle(inner)

    await password.record_failure("ana")
    await mfa.record_failure("ana")
    assert recorder.value(metrics.MFA_FAILURES) == 1
    assert recorder.value(metrics.LOGIN_LOCKOUTS) == 0
    await mfa.record_failure("ana")  # the third failure locks
    assert recorder.value(metrics.MFA_FAILURES) == 2
    assert recorder.value(metrics.LOGIN_LOCKOUTS) == 1
    with pytest.raises(AccountLocked):
        await mfa.ensure_not_locked("ana")
    await password.record_failure("bia")
    assert recorder.value(metrics.LOGIN_LOCKOUTS) == 1  # bia is not locked


async def test_the_auth_container_gives_the_mfa_use_case_the_mfa_counting_throttle() -> None:
    container = build_container(Settings())
    answer = await resolve(container.auth.answer_challenge())
    login = await resolve(container.auth.password_login())
    assert isinstance(answer._throttle, MeteredLoginThrottle)
    assert answer._throttle._mfa
    assert isinstance(login._throttle, MeteredLoginThrottle)
    assert not login._throttle._mfa


async def test_the_worker_metrics_endpoint_serves_the_prometheus_text_and_nothing_else() -> None:
    import asyncio
    import socket

    recorder = metrics.reset_for_tests(metrics.MetricsRecorder())
    recorder.set(metrics.OUTBOX_BACKLOG, 12)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = asyncio.Event()
    server = asyncio.create_task(metrics.serve_prometheus(port, stop))

    async def get(path: str) -> bytes:
        for _ in range(100):  # until the listener is up
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except ConnectionRefusedError:
                await asyncio.sleep(0.01)
        else:
            raise AssertionError("the metrics listener never opened")
        writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        answer = await reader.read()
        writer.close()
        return answer

    try:
        page = await get("/metrics")
        missing = await get("/admin")
    finally:
        stop.set()
        await server
        metrics.reset_for_tests()
    assert page.startswith(b"HTTP/1.1 200 OK")
    assert b"finbank_outbox_waiting_events 12\n" in page
    assert missing.startswith(b"HTTP/1.1 404")
    assert b"finbank_" not in missing


def test_no_operational_metric_takes_a_name_the_http_registry_already_uses() -> None:
    """/metrics concatenates both: a family defined twice would break every scraper."""
    from finbank_http.observability.metrics import REGISTRY

    taken = {family.name for family in REGISTRY.collect()}
    taken |= {f"{name}_total" for name in taken}
    for metric in metrics.ALL:
        base = metric.prometheus_name.removesuffix("_total")
        assert base not in taken, metric.prometheus_name
        assert metric.prometheus_name not in taken, metric.prometheus_name


def test_one_ledger_result_is_counted_as_the_recorder_counts_it_whatever_its_form() -> None:
    """One result a call (every HTTP transfer) takes a cached series: the same totals,
    Prometheus text and EMF documents as ``add`` gives, for an enum member, its plain
    text, a tuple, an unexpected code, and a code first met in a batch."""
    from finbank_core.accounts.ledger import CreateTransferResult as R

    calls: list[list[str] | tuple[str, ...]] = [
        [R.OK],
        ["ok"],
        (R.EXISTS,),
        [R.ID_MUST_NOT_BE_ZERO],
        [R.ID_MUST_NOT_BE_ZERO],
        ['we"ird'],
        [R.OK, R.EXCEEDS_CREDITS],
        [R.EXCEEDS_CREDITS],
        ['we"ird'],
        [R.OK],
    ]
    streams = (io.StringIO(), io.StringIO())
    fast, slow = (
        MetricsRecorder(environment="t", emf=True, stream=s, clock=Ticks(), wall=lambda: 1.5)
        for s in streams
    )
    metrics.reset_for_tests(fast)
    try:
        for results in calls:
            metrics.record_ledger_results(results)
            for code in results:
                slow.add(metrics.LEDGER_RESULTS, 1, Result=str(code))
                if str(code) not in metrics.EXPECTED_LEDGER_RESULTS:
                    slow.add(metrics.LEDGER_UNEXPECTED_RESULTS, 1)
        assert fast.value(metrics.LEDGER_RESULTS, Result="ok") == 4
        assert fast.value(metrics.LEDGER_UNEXPECTED_RESULTS) == 4
        assert fast.prometheus_text() == slow.prometheus_text()
        assert fast.flush() == slow.flush() == 6
        assert streams[0].getvalue() == streams[1].getvalue()
    finally:
        metrics.reset_for_tests()


async def test_the_memory_ledger_counts_a_submitted_transfer_and_publishes_only_if_applied(
    emf: tuple[MetricsRecorder, io.StringIO, Ticks],
) -> None:
    """``submit_transfer`` runs ``create_transfers``' steps itself: the same count of its
    result, and its events published only when the transfer was applied."""
    from datetime import UTC, datetime

    from finbank_adapters.memory.events import InMemoryEventPublisher
    from finbank_core.accounts.events import make_event

    recorder, _, _ = emf
    clock = FakeClock()
    published = InMemoryEventPublisher()
    ledger = InMemoryLedger(clock, published)
    a, b = uuid.uuid4(), uuid.uuid4()
    await ledger.create_accounts(
        [
            NewAccount(id=a, code=1),
            NewAccount(id=b, code=1, flags=AccountFlags.DEBITS_MUST_NOT_EXCEED_CREDITS),
        ]
    )

    def event() -> Any:
        return make_event(
            event_id=uuid.uuid4(),
            type="t",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
            aggregate_id=a,
            payload={},
        )

    ok = Transfer(id=uuid.uuid4(), debit_account_id=a, credit_account_id=b, amount=5, code=1)
    first = await ledger.submit_transfer(ok, events=[event()])
    replay = await ledger.submit_transfer(ok, events=[event()])
    overdraft = Transfer(
        id=uuid.uuid4(), debit_account_id=b, credit_account_id=a, amount=50, code=1
    )
    refused = await ledger.submit_transfer(overdraft, events=[event()])
    same = Transfer(id=uuid.uuid4(), debit_account_id=a, credit_account_id=a, amount=1, code=1)
    odd = await ledger.submit_transfer(same)

    assert first.result.value == "ok"
    assert first.timestamp is not None
    assert [r.result.value for r in (replay, refused, odd)] == [
        "exists",
        "exceeds_credits",
        "accounts_must_be_different",
    ]
    assert len(published.published) == 1
    for code in ("ok", "exists", "exceeds_credits", "accounts_must_be_different"):
        assert recorder.value(metrics.LEDGER_RESULTS, Result=code) == 1
    assert recorder.value(metrics.LEDGER_UNEXPECTED_RESULTS) == 1


def _emf_counts(text: str, metric: str, **dimensions: str) -> int:
    """The sum of ``metric``'s values over the EMF documents in ``text`` with ``dimensions``."""
    total = 0
    for line in text.splitlines():
        document = json.loads(line)
        if metric in document and all(document.get(k) == v for k, v in dimensions.items()):
            total += document[metric]
    return total


def test_ledger_results_counted_in_cells_read_and_flush_as_add_writes_them() -> None:
    """A code's later single results count in its cell only: every read (value,
    Prometheus, EMF flush) sees them, the flush writes the documents in add's order,
    and counting after a flush starts the period again; interleaved with batches and
    with ``add`` of the same series."""
    from finbank_core.accounts.ledger import CreateTransferResult as R

    streams = (io.StringIO(), io.StringIO())
    fast, slow = (
        MetricsRecorder(environment="t", emf=True, stream=s, clock=Ticks(), wall=lambda: 1.5)
        for s in streams
    )

    def both(results: list[Any]) -> None:
        metrics.record_ledger_results(results)
        for code in results:
            slow.add(metrics.LEDGER_RESULTS, 1, Result=str(code))
            if str(code) not in metrics.EXPECTED_LEDGER_RESULTS:
                slow.add(metrics.LEDGER_UNEXPECTED_RESULTS, 1)

    def same() -> None:
        assert fast.prometheus_text() == slow.prometheus_text()
        for code in ("ok", "exists", "exceeds_credits", "id_must_not_be_zero"):
            assert fast.value(metrics.LEDGER_RESULTS, Result=code) == slow.value(
                metrics.LEDGER_RESULTS, Result=code
            )
        assert fast.value(metrics.LEDGER_UNEXPECTED_RESULTS) == slow.value(
            metrics.LEDGER_UNEXPECTED_RESULTS
        )

    metrics.reset_for_tests(fast)
    try:
        for _ in range(5):
            both([R.OK])
        same()
        for _ in range(3):
            both([R.EXISTS])
            both(["ok"])
        both([R.OK, R.EXCEEDS_CREDITS, R.OK])
        for recorder in (fast, slow):  # add beside the cells, on the same series
            recorder.add(metrics.LEDGER_RESULTS, 2, Result="ok")
        both([R.ID_MUST_NOT_BE_ZERO])
        both([R.ID_MUST_NOT_BE_ZERO])
        both([R.OK])
        assert fast.value(metrics.LEDGER_RESULTS, Result="ok") == 5 + 3 + 2 + 2 + 1
        same()
        assert fast.flush() == slow.flush() == 5
        assert streams[0].getvalue() == streams[1].getvalue()
        # a period where the first count of a code comes after another code's
        both([R.EXISTS])
        for _ in range(4):
            both([R.OK])
        same()
        assert fast.flush() == slow.flush() == 2
        assert fast.flush() == slow.flush() == 0  # nothing counted since
        both([R.OK])
        both([R.OK])
        assert fast.flush() == slow.flush() == 1
        assert streams[0].getvalue() == streams[1].getvalue()
        assert _emf_counts(streams[0].getvalue(), "LedgerResults", Result="ok") == 19
        same()
    finally:
        metrics.reset_for_tests()


def test_ledger_results_from_many_threads_with_a_flusher_are_each_counted_once() -> None:
    """Threads counting single results while another flushes (as the EMF flusher
    thread does): every result in exactly one EMF document, and in the totals."""
    import threading

    from finbank_core.accounts.ledger import CreateTransferResult as R

    stream = io.StringIO()
    recorder = MetricsRecorder(environment="t", emf=True, stream=stream, clock=Ticks())
    metrics.reset_for_tests(recorder)
    threads, calls = 4, 5_000
    done = threading.Event()

    def count() -> None:
        for n in range(calls):
            metrics.record_ledger_results([R.ID_MUST_NOT_BE_ZERO] if n % 10 == 0 else [R.OK])

    def flush() -> None:
        while not done.is_set():
            recorder.flush()

    try:
        flusher = threading.Thread(target=flush)
        flusher.start()
        counters = [threading.Thread(target=count) for _ in range(threads)]
        for thread in counters:
            thread.start()
        for thread in counters:
            thread.join()
        done.set()
        flusher.join()
        recorder.flush()
        written = stream.getvalue()
        assert _emf_counts(written, "LedgerResults", Result="ok") == threads * calls * 9 // 10
        assert _emf_counts(written, "LedgerResults", Result="id_must_not_be_zero") == (
            threads * calls // 10
        )
        assert _emf_counts(written, "LedgerUnexpectedResults") == threads * calls // 10
        assert recorder.value(metrics.LEDGER_RESULTS, Result="ok") == threads * calls * 9 // 10
        assert recorder.value(metrics.LEDGER_UNEXPECTED_RESULTS) == threads * calls // 10
    finally:
        done.set()
        metrics.reset_for_tests()


def test_a_new_recorder_counts_ledger_results_from_zero() -> None:
    """The counting cells belong to a recorder: one replaced keeps what it had."""
    from finbank_core.accounts.ledger import CreateTransferResult as R

    first = metrics.reset_for_tests(MetricsRecorder())
    try:
        for _ in range(3):
            metrics.record_ledger_results([R.OK])
        second = metrics.reset_for_tests(MetricsRecorder())
        for _ in range(2):
            metrics.record_ledger_results([R.OK])
        assert first.value(metrics.LEDGER_RESULTS, Result="ok") == 3
        assert second.value(metrics.LEDGER_RESULTS, Result="ok") == 2
        assert b'finbank_ledger_results_total{result="ok"} 2\n' in second.prometheus_text()
    finally:
        metrics.reset_for_tests()
