"""Completed PIX payments/s end to end on the local profile: HTTP request -> SETTLED via Kafka.

Run: ``.venv/bin/python benchmarks/pix_e2e.py [--payments 300] [--concurrency 20] [--accounts 10]``

Starts Tansu and a moto server (``finbank dev up``'s :class:`DevStack`), uses
the PostgreSQL server at ``--dsn`` (a fresh schema, dropped afterwards) and
Redis at 127.0.0.1:6379 (a key prefix of its own, removed afterwards). In
this one process, as asyncio tasks: the HTTP app (Litestar's
``AsyncTestClient``), the outbox relay and the settlement worker, each with
its own container, as three processes would have. Every payment goes

    POST /v1/pix/payments (reserve in PostgreSQL, record in DynamoDB, outbox row)
    -> relay -> finbank.pix.v1 -> worker (SPI simulator, post, record SETTLED)

and counts when the worker has marked it ``SETTLED``. Prints payments/s
over the whole run and per-payment latency (request sent -> settled).
Figures vary with whatever else runs on the machine and with moto, which is
far slower than DynamoDB; this prints, it never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from finbank_adapters.containers import build_container
from finbank_adapters.kafka.config import KafkaSettings
from finbank_adapters.kafka.relay import run_relay
from finbank_adapters.sandbox import PEER_KEY_EMAIL
from finbank_adapters.postgres.migrations import migrate, quote_ident
from finbank_adapters.settings import Settings
from finbank_adapters.workers.pix_settlement import PixSettlementWorker
from finbank_cli.devstack import DUMMY_AWS_CREDENTIALS, DevStack, prepare, running_stack
from finbank_http import create_app

DEFAULT_DSN = os.environ.get(
    "FINBANK_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


def settings_for(stack: DevStack, dsn: str, schema: str, redis_prefix: str) -> Settings:
    return Settings.from_env(
        {
            "FINBANK_PROFILE": "local",
            "FINBANK_POSTGRES_DSN": f"{dsn}?search_path={schema}",
            "FINBANK_POSTGRES_POOL_MAX": "20",
            "FINBANK_REDIS_KEY_PREFIX": redis_prefix,
            "FINBANK_AWS_ENDPOINT_URL": stack.aws_endpoint,
            "FINBANK_AWS_REGION": "sa-east-1",
            "FINBANK_PIX_TABLE_NAME": f"bench-{secrets.token_hex(4)}",
            "FINBANK_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
            "FINBANK_KAFKA_TOPIC_PREFIX": f"bench{secrets.token_hex(3)}.",
            "FINBANK_JWT_SECRET": secrets.token_hex(32),
            "FINBANK_SANDBOX": "true",
            "FINBANK_RELAY_IDLE_SECONDS": "0.01",
        }
    )


async def open_accounts(
    client: AsyncTestClient[Any], count: int
) -> tuple[dict[str, str], list[str]]:
    password = f"pw-{secrets.token_hex(8)}"
    body = {"username": f"bench-{secrets.token_hex(4)}", "password": password}
    assert (await client.post("/v1/auth/signup", json=body)).status_code == 201
    login = await client.post("/v1/auth/login", json=body)
    headers = {"Authorization": f"Bearer {login.json()['tokens']['access_token']}"}
    accounts = []
    for _ in range(count):
        opened = await client.post("/v1/accounts", json={"holder_name": "Bench"}, headers=headers)
        account_id = opened.json()["id"]
        deposit = {"account_id": account_id, "amount": "900.00"}
        await client.post("/v1/sandbox/deposits", json=deposit, headers=headers)
        accounts.append(account_id)
    return headers, accounts


async def run(payments: int, concurrency: int, account_count: int, dsn: str) -> None:
    for key, value in DUMMY_AWS_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    schema = f"bench_{secrets.token_hex(4)}"
    redis_prefix = f"finbank-bench:{secrets.token_hex(6)}:"
    admin = await asyncpg.connect(dsn)
    redis = Redis(host="127.0.0.1", port=6379)
    with running_stack(DevStack()) as stack:
        try:
            await migrate(admin, schema)
            settings = settings_for(stack, dsn, schema, redis_prefix)
            await prepare(stack, settings)
            await bench(settings, payments, concurrency, account_count)
        finally:
            await admin.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
            await admin.close()
            keys = [k async for k in redis.scan_iter(match=f"{redis_prefix}*", count=500)]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()


async def bench(settings: Settings, payments: int, concurrency: int, account_count: int) -> None:
    kafka = KafkaSettings.from_settings(settings)
    stop = asyncio.Event()
    worker = PixSettlementWorker(settings, kafka=kafka)
    tasks = [asyncio.create_task(run_relay(settings, stop)), asyncio.create_task(worker.run(stop))]
    try:
        async with asyncio.timeout(60):
            await worker.ready.wait()
        async with AsyncTestClient(app=create_app(build_container(settings))) as client:
            headers, accounts = await open_accounts(client, account_count)
            sent_at: dict[str, float] = {}
            settled_at: dict[str, float] = {}
            accept_seconds: list[float] = []
            gate = asyncio.Semaphore(concurrency)

            async def pay(n: int) -> None:
                async with gate:
                    started = time.perf_counter()
                    response = await client.post(
                        "/v1/pix/payments",
                        json={
                            "account_id": accounts[n % len(accounts)],
                            "key": PEER_KEY_EMAIL,
                            "amount": "1.00",
                        },
                        headers={**headers, "Idempotency-Key": f"bench-{n}"},
                    )
                    accept_seconds.append(time.perf_counter() - started)
                    if response.status_code != 201:
                        raise RuntimeError(f"payment {n}: {response.status_code} {response.text}")
                    sent_at[response.json()["end_to_end_id"]] = started

            async def watch() -> None:
                handler = worker.handler
                assert handler is not None
                while len(settled_at) < payments:
                    now = time.perf_counter()
                    for e2e, status in list(handler.outcomes.items()):
                        if e2e not in settled_at and status == "SETTLED":
                            settled_at[e2e] = now
                    await asyncio.sleep(0.002)

            watcher = asyncio.create_task(watch())
            started = time.perf_counter()
            await asyncio.gather(*(pay(n) for n in range(payments)))
            accepted = time.perf_counter() - started
            async with asyncio.timeout(300):
                await watcher
            elapsed = max(settled_at.values()) - started
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    latencies = sorted(settled_at[e2e] - sent_at[e2e] for e2e in sent_at)
    accepts = sorted(accept_seconds)
    print(f"payments: {payments}, HTTP concurrency: {concurrency}, payer accounts: {account_count}")
    print(f"  accepted over HTTP (PENDING): {payments / accepted:8.1f} payments/s")
    print(f"  completed end to end (SETTLED): {payments / elapsed:6.1f} payments/s")
    print(
        f"  HTTP accept latency  p50 {statistics.median(accepts) * 1000:7.1f} ms"
        f"  p99 {accepts[int(len(accepts) * 0.99) - 1] * 1000:7.1f} ms"
    )
    print(
        f"  request -> SETTLED   p50 {statistics.median(latencies) * 1000:7.1f} ms"
        f"  p99 {latencies[int(len(latencies) * 0.99) - 1] * 1000:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--payments", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    args = parser.parse_args()
    asyncio.run(run(args.payments, args.concurrency, args.accounts, args.dsn))


if __name__ == "__main__":
    main()
