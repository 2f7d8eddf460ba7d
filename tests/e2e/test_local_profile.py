"""The local profile end to end: a PIX payment over HTTP reaches SETTLED through Kafka.

Real parts only: PostgreSQL (ledger, accounts, users, outbox, inbox; a schema
of the test's own), Redis (MFA challenges, throttling; a key prefix of the
test's own), DynamoDB on moto (payment records; a table of the test's own),
Tansu (Kafka; a topic prefix of the test's own). The HTTP app, the outbox
relay and the settlement worker run in this process as asyncio tasks, each
with its own container, as they would in three processes:

    POST /v1/pix/payments -> SendPix: reserve, record PENDING, outbox row
    relay: outbox -> finbank.pix.v1
    worker: pix.payment_requested -> SettlePixPayment -> record SETTLED
    GET /v1/pix/payments/{e2e} -> SETTLED
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from finbank_adapters.aws.dynamo_schema import create_tables
from finbank_adapters.aws_wiring import open_dynamodb_client
from finbank_adapters.container import build_container
from finbank_adapters.kafka import KafkaEventPublisher, KafkaSettings, RetryPolicy
from finbank_adapters.kafka.clients import create_topics, open_producer
from finbank_adapters.kafka.relay import run_relay
from finbank_adapters.pix_wiring import PEER_KEY_EMAIL
from finbank_adapters.settings import Settings
from finbank_adapters.workers.pix_settlement import PixSettlementWorker
from finbank_core.pix.events import PAYMENT_REQUESTED, PAYMENT_SETTLED
from finbank_core.shared.events import AUTH_TOPIC, LEDGER_TOPIC, PIX_TOPIC, decode_event
from finbank_http import create_app
from tests.integration.aws_fixtures import aws_endpoint
from tests.integration.kafka_fixtures import kafka_broker, kafka_test_settings
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres
from tests.support_redis import open_test_redis

pytestmark = pytest.mark.services
__all__ = ["aws_endpoint", "kafka_broker"]  # fixtures

DEADLINE_SECONDS = 60.0


@dataclass
class LocalStack:
    settings: Settings
    kafka: KafkaSettings
    pool: asyncpg.Pool
    worker: PixSettlementWorker
    client: AsyncTestClient[Any]


def local_settings(
    schema: str, redis_prefix: str, endpoint: str, table: str, kafka: KafkaSettings
) -> Settings:
    return Settings.from_env(
        {
            "FINBANK_PROFILE": "local",
            "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
            "FINBANK_REDIS_KEY_PREFIX": redis_prefix,
            "FINBANK_AWS_ENDPOINT_URL": endpoint,
            "FINBANK_AWS_REGION": "sa-east-1",
            "FINBANK_PIX_TABLE_NAME": table,
            "FINBANK_KAFKA_BOOTSTRAP": kafka.bootstrap_servers,
            "FINBANK_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
            "FINBANK_JWT_SECRET": secrets.token_hex(32),
            "FINBANK_SANDBOX": "true",
            "FINBANK_RELAY_IDLE_SECONDS": "0.05",
        }
    )


@pytest.fixture
async def stack(aws_endpoint: str, kafka_broker: Any) -> AsyncIterator[LocalStack]:
    require_postgres()
    kafka = kafka_test_settings(kafka_broker.bootstrap)
    table = f"pix-{uuid.uuid4().hex[:12]}"
    async with (
        isolated_schema() as (pool, schema),
        open_test_redis() as (_redis, redis_prefix),
    ):
        settings = local_settings(schema, redis_prefix, aws_endpoint, table, kafka)
        assert (settings.pix_backend, settings.pix_inline_settlement) == ("dynamodb", False)
        async with open_dynamodb_client(settings) as dynamodb:
            await create_tables(dynamodb, table)
        await create_topics(kafka, [PIX_TOPIC, LEDGER_TOPIC, AUTH_TOPIC])
        stop = asyncio.Event()
        worker = PixSettlementWorker(
            settings,
            kafka=kafka,
            retry=RetryPolicy(attempts=3, base_delay_seconds=0.05, max_delay_seconds=0.5),
            group_id=f"pix-settlement-{uuid.uuid4().hex[:8]}",
        )
        tasks = [
            asyncio.create_task(run_relay(settings, stop)),
            asyncio.create_task(worker.run(stop)),
        ]
        try:
            async with asyncio.timeout(DEADLINE_SECONDS):
                await worker.ready.wait()
            app = create_app(build_container(settings))
            async with AsyncTestClient(app=app) as client:
                yield LocalStack(settings, kafka, pool, worker, client)
        finally:
            stop.set()
            await asyncio.gather(*tasks)


async def log_in(client: AsyncTestClient[Any], username: str) -> dict[str, str]:
    password = f"pw-{secrets.token_hex(8)}"
    body = {"username": username, "password": password}
    response = await client.post("/v1/auth/signup", json=body)
    assert response.status_code == 201, response.text
    response = await client.post("/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['tokens']['access_token']}"}


async def funded_account(client: AsyncTestClient[Any], headers: dict[str, str]) -> str:
    response = await client.post("/v1/accounts", json={"holder_name": "Ana"}, headers=headers)
    assert response.status_code == 201, response.text
    account_id: str = response.json()["id"]
    response = await client.post(
        "/v1/sandbox/deposits", json={"account_id": account_id, "amount": "100.00"}, headers=headers
    )
    assert response.status_code == 201, response.text
    return account_id


async def poll_status(
    client: AsyncTestClient[Any], headers: dict[str, str], e2e: str, wanted: str
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    while True:
        response = await client.get(f"/v1/pix/payments/{e2e}", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] == wanted:
            return body
        if loop.time() > deadline:
            pytest.fail(f"payment still {body['status']} after {DEADLINE_SECONDS} s")
        await asyncio.sleep(0.05)


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {DEADLINE_SECONDS} s waiting for {what}")
        await asyncio.sleep(0.02)


async def pay_carla(stack: LocalStack) -> tuple[dict[str, str], str, str]:
    client = stack.client
    headers = await log_in(client, f"ana-{secrets.token_hex(4)}")
    account_id = await funded_account(client, headers)
    response = await client.post(
        "/v1/pix/payments",
        json={"account_id": account_id, "key": PEER_KEY_EMAIL, "amount": "12.34"},
        headers={**headers, "Idempotency-Key": "pay-carla-1"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "PENDING"  # not settled in the request
    return headers, account_id, response.json()["end_to_end_id"]


async def outbox_types(pool: asyncpg.Pool, e2e: str) -> list[str]:
    rows = await pool.fetch("SELECT type FROM outbox WHERE aggregate_id = $1 ORDER BY id", e2e)
    return [row["type"] for row in rows]


async def test_a_pix_payment_over_http_reaches_settled_through_kafka(stack: LocalStack) -> None:
    headers, account_id, e2e = await pay_carla(stack)

    settled = await poll_status(stack.client, headers, e2e, "SETTLED")

    assert settled["amount"] == "12.34"
    account = (await stack.client.get(f"/v1/accounts/{account_id}", headers=headers)).json()
    assert account["balance"]["posted"] == "87.66"
    handler = stack.worker.handler
    assert handler is not None
    # the record turns SETTLED inside the use case, just before the outcome is published
    await wait_for(lambda: e2e in handler.outcomes, "the worker to finish")
    assert handler.outcomes == {e2e: "SETTLED"}
    assert await outbox_types(stack.pool, e2e) == [PAYMENT_REQUESTED, PAYMENT_SETTLED]


async def test_redelivered_settlement_requests_change_nothing(stack: LocalStack) -> None:
    headers, account_id, e2e = await pay_carla(stack)
    await poll_status(stack.client, headers, e2e, "SETTLED")
    handler = stack.worker.handler
    assert handler is not None
    await wait_for(lambda: handler.runs == 1, "the worker to finish")
    envelope = await stack.pool.fetchval(
        "SELECT envelope FROM outbox WHERE aggregate_id = $1 AND type = $2", e2e, PAYMENT_REQUESTED
    )
    requested = decode_event(envelope)
    # the same event twice (the inbox skips it) and a copy under a new id (the use case
    # finds the record final and does nothing)
    copy = msgspec.structs.replace(requested, event_id=uuid.uuid4())
    async with open_producer(stack.kafka) as producer:
        publisher = KafkaEventPublisher(producer, topic_prefix=stack.kafka.topic_prefix)
        await publisher.publish([requested, requested, copy])

    await wait_for(lambda: handler.duplicates == 2 and handler.runs == 2, "the redeliveries")

    payment = await poll_status(stack.client, headers, e2e, "SETTLED")
    assert payment["status"] == "SETTLED"
    account = (await stack.client.get(f"/v1/accounts/{account_id}", headers=headers)).json()
    assert account["balance"]["posted"] == "87.66"  # debited once
    assert await outbox_types(stack.pool, e2e) == [PAYMENT_REQUESTED, PAYMENT_SETTLED]
    inbox_rows = await stack.pool.fetchval(
        "SELECT count(*) FROM inbox WHERE consumer = $1", stack.worker.group_id
    )
    assert inbox_rows == 2  # the original event and the copy
