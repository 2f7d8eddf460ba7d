"""What the event backbone's tracing costs per event, off (the default) and on.

Run: ``.venv/bin/python benchmarks/tracing_overhead.py [--events 20000] [--repeat 7]``

No server needed: it times, in process, each hot-path piece that tracing
touches, on the same envelopes, best of ``--repeat`` runs:

* **off vs before**: encoding an envelope and reading the relay's record
  headers from it, with today's structs vs copies of the structs as they were
  before ``EventEnvelope.headers`` existed; the outbox's stamping call
  (``tracing.stamp``), the relay's ``start_send`` and the consumer's
  ``processing`` context with tracing off;
* **on**: the same calls with an SDK tracer provider whose spans are dropped
  (no exporter), i.e. the cost of making the spans and carrying the context.

``benchmarks/events.py`` gives the end-to-end figure (events/s through the
relay against a bare producer); this script isolates what tracing adds to it,
which a shared machine's noise would hide there. It prints, it never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec

from finbank_adapters import tracing
from finbank_adapters.kafka.publisher import envelope_headers
from finbank_core.shared.events import EventEnvelope, encode_event


class EnvelopeBefore(msgspec.Struct, frozen=True, kw_only=True):
    """``EventEnvelope`` as it was before ``headers``."""

    event_id: uuid.UUID
    type: str
    version: int
    occurred_at: datetime
    aggregate_id: str
    correlation_id: str | None = None
    payload: dict[str, Any] = msgspec.field(default_factory=dict)


class HeaderFieldsBefore(msgspec.Struct):
    """The relay's header fields as they were before the trace context."""

    event_id: str
    type: str
    version: int
    correlation_id: str | None = None


_old_fields = msgspec.json.Decoder(HeaderFieldsBefore)


def _headers_before(
    event_id: str, type: str, version: int, correlation_id: str | None
) -> list[tuple[str, bytes]]:
    headers = [
        ("event_id", event_id.encode()),
        ("type", type.encode()),
        ("version", str(version).encode()),
    ]
    if correlation_id is not None:
        headers.append(("correlation_id", correlation_id.encode()))
    return headers


def envelope_headers_before(envelope: bytes) -> list[tuple[str, bytes]]:
    """``finbank_adapters.kafka.publisher.envelope_headers`` as it was before."""
    try:
        fields = _old_fields.decode(envelope)
    except msgspec.DecodeError:
        return []
    return _headers_before(fields.event_id, fields.type, fields.version, fields.correlation_id)


def best(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    n, repeat = args.events, args.repeat

    def envelope(i: int) -> EventEnvelope:
        return EventEnvelope(
            event_id=uuid.uuid4(),
            type="pix.payment_requested",
            version=1,
            occurred_at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
            aggregate_id=f"E9999999920260301120000{i:09d}",
            correlation_id=f"idem-{i}",
            payload={"end_to_end_id": f"E{i}", "amount_cents": 1234, "status": "PENDING"},
        )

    events = [envelope(i) for i in range(n)]
    before = [
        EnvelopeBefore(**{k: v for k, v in msgspec.structs.asdict(e).items() if k != "headers"})
        for e in events
    ]
    encoder = msgspec.json.Encoder()

    def per_event(seconds: float) -> str:
        return f"{seconds / n * 1e9:8.0f} ns/event"

    tracing.reset_for_tests()
    encoded = [encode_event(e) for e in events]
    assert encoded == [encoder.encode(b) for b in before]  # byte for byte, off
    print(f"{n:,} envelopes, best of {repeat}")
    print("off (the default) vs before the change:")

    def old_headers() -> None:
        for data in encoded:
            envelope_headers_before(data)

    def new_headers() -> None:
        for data in encoded:
            envelope_headers(data)

    pairs: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "encode envelope     ": (
            lambda: [encoder.encode(b) for b in before] and None,
            lambda: [encode_event(e) for e in events] and None,
        ),
        "relay record headers": (old_headers, new_headers),
    }
    for name, (was, now) in pairs.items():
        was()  # warm up
        now()
        # alternate, so that a slow spell of the machine does not land on one side only
        figures = [(best(1, was), best(1, now)) for _ in range(repeat)]
        before_s = min(f[0] for f in figures)
        now_s = min(f[1] for f in figures)
        print(
            f"  {name}   before {per_event(before_s)}   now {per_event(now_s)}"
            f"   ({now_s / before_s:.2f}x)"
        )
    off_stamp = best(repeat, lambda: tracing.stamp(events) and None)
    print(f"  outbox stamp (a batch) {per_event(off_stamp)}")
    off_send = best(repeat, lambda: [tracing.start_send("t", d) for d in encoded] and None)
    print(f"  relay start_send       {per_event(off_send)}")

    def off_process() -> None:
        for e in events:
            with tracing.processing(e, topic="t", group="g"):
                pass

    print(f"  consumer processing    {per_event(best(repeat, off_process))}")

    from opentelemetry.sdk.trace import TracerProvider

    tracing.reset_for_tests(TracerProvider())  # spans made, then dropped: no exporter
    try:
        print("on (spans made, none exported):")
        stamped = list(tracing.stamp(events))
        on_stamp = best(repeat, lambda: tracing.stamp(events) and None)
        print(f"  outbox stamp (a batch) {per_event(on_stamp)}")
        stamped_bytes = [encode_event(e) for e in stamped]
        print(
            f"  envelope size          {sum(map(len, encoded)) / n:6.0f} B off, "
            f"{sum(map(len, stamped_bytes)) / n:6.0f} B on"
        )

        loop = asyncio.new_event_loop()

        def on_send() -> None:
            for data in stamped_bytes:
                future: asyncio.Future[object] = loop.create_future()
                tracing.end_send(tracing.start_send("t", data), future)
                future.set_result(None)
            loop.run_until_complete(asyncio.sleep(0))

        print(f"  relay send span        {per_event(best(repeat, on_send))}")
        loop.close()

        def on_process() -> None:
            for e in stamped:
                with tracing.processing(e, topic="t", group="g"):
                    pass

        print(f"  consumer process span  {per_event(best(repeat, on_process))}")
    finally:
        tracing.reset_for_tests()


if __name__ == "__main__":
    main()
