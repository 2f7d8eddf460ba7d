"""The settlement worker, as ``finbank worker pix-settlement`` builds it, on a lost record.

Local profile in this process (PostgreSQL, Redis, DynamoDB on moto, Tansu),
as ``tests/e2e/test_local_profile.py`` runs it. A payment is answered 201,
then its DynamoDB record is deleted before any worker runs (what threaded
moto did to acknowledged writes). The worker then starts: after its bounded
retries it voids the reservation, counts the payment and alerts; nothing
goes to the DLQ and the payer's money is available again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import uuid
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from finbank.runtime import PixSettlementWorker, run_relay
from finbank_adapters.aws.dynamo_schema import PAYMENT_SK, create_tables, payment_pk
from finbank_adapters.aws_wiring import open_dynamodb_client
from finbank_adapters.containers import build_container
from finbank_adapters.kafka import RetryPolicy, dead_letter_topic
from finbank_adapters.kafka.clients import create_topics
from finbank_adapters.postgres import PostgresLedger
from finbank_adapters.sandbox import PEER_KEY_EMAIL
from finbank_adapters.system import SystemClock
from finbank_adapters.workers.pix_settlement import UNRECORDED
from finbank_core.accounts.ledger import PendingStatus
from finbank_core.pix.payments import pix_transfer_id
from finbank_core.shared.events import AUTH_TOPIC, LEDGER_TOPIC, PIX_TOPIC
from finbank_http import create_app
from tests.e2e.test_local_profile import local_settings, log_in, wait_for
from tests.integration.aws_fixtures import aws_endpoint
from tests.integration.kafka_fixtures import kafka_broker, kafka_test_settings, read_topics
from tests.postgres_support import isolated_schema, require_postgres
from tests.support_redis import open_test_redis

pytestmark = pytest.mark.services
__all__ = ["aws_endpoint", "kafka_broker"]  # fixtures


async def test_a_payment_whose_record_was_lost_has_its_reservation_voided_by_the_worker(
    aws_endpoint: str, kafka_broker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    require_postgres()
    kafka = kafka_test_settings(kafka_broker.bootstrap)
    table = f"pix-{uuid.uuid4().hex[:12]}"
    async with (
        isolated_schema() as (pool, schema),
        open_test_redis() as (_redis, redis_prefix),
    ):
        settings = local_settings(schema, redis_prefix, aws_endpoint, table, kafka)
        async with open_dynamodb_client(settings) as dynamodb:
            await create_tables(dynamodb, table)
            await create_topics(kafka, [PIX_TOPIC, LEDGER_TOPIC, AUTH_TOPIC])
            app = create_app(build_container(settings))
            async with AsyncTestClient(app=app) as client:
                headers = await log_in(client, f"ana-{secrets.token_hex(4)}")
                opened = await client.post(
                    "/v1/accounts", json={"holder_name": "Ana"}, headers=headers
                )
                account_id = opened.json()["id"]
                deposit = {"account_id": account_id, "amount": "100.00"}
                response = await client.post("/v1/sandbox/deposits", json=deposit, headers=headers)
                assert response.status_code == 201, response.text
                response = await client.post(
                    "/v1/pix/payments",
                    json={"account_id": account_id, "key": PEER_KEY_EMAIL, "amount": "12.34"},
                    headers={**headers, "Idempotency-Key": "lost-1"},
                )
                assert response.status_code == 201, response.text
                e2e = response.json()["end_to_end_id"]
                await dynamodb.delete_item(
                    TableName=table,
                    Key={"pk": {"S": payment_pk(e2e)}, "sk": {"S": PAYMENT_SK}},
                )
                response = await client.get(f"/v1/pix/payments/{e2e}", headers=headers)
                assert response.status_code == 404  # the store lost it

                stop = asyncio.Event()
                worker = PixSettlementWorker(
                    settings,
                    kafka=kafka,
                    retry=RetryPolicy(attempts=3, base_delay_seconds=0.05, max_delay_seconds=0.5),
                    group_id=f"pix-settlement-{uuid.uuid4().hex[:8]}",
                )
                with caplog.at_level(logging.ERROR, logger="finbank_adapters.workers"):
                    tasks = [
                        asyncio.create_task(run_relay(settings, stop)),
                        asyncio.create_task(worker.run(stop)),
                    ]
                    try:
                        await wait_for(
                            lambda: (
                                worker.handler is not None
                                and worker.handler.outcomes.get(e2e) == UNRECORDED
                            ),
                            "the worker to release the reservation",
                        )
                    finally:
                        stop.set()
                        await asyncio.gather(*tasks)

                assert worker.handler is not None
                assert worker.handler.unrecorded == {e2e: PendingStatus.VOIDED}
                assert worker.runner is not None
                assert worker.runner.stats.dead_lettered == 0
                ledger = PostgresLedger(pool, SystemClock())
                [reservation] = await ledger.lookup_transfers([pix_transfer_id(e2e, "pending")])
                assert reservation.status is PendingStatus.VOIDED
                response = await client.get(f"/v1/accounts/{account_id}", headers=headers)
                balance = response.json()["balance"]
                assert balance["posted"] == balance["available"] == "100.00", balance
                assert any(
                    "ALERT pix-settlement" in r.getMessage() and e2e in r.getMessage()
                    for r in caplog.records
                )
                dlq = dead_letter_topic(kafka.topic(PIX_TOPIC))
                await create_topics(kafka, [dead_letter_topic(PIX_TOPIC)])
                assert await read_topics(kafka, [dlq]) == []
