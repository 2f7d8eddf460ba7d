"""The local profile end to end: PIX payments, refunds and incoming payments through Kafka.

Real parts only: PostgreSQL (ledger, accounts, users, outbox, inbox; a schema
of the test's own), Redis (MFA challenges, throttling; a key prefix of the
test's own), DynamoDB on moto (payment records; a table of the test's own),
Tansu (Kafka; a topic prefix of the test's own). The HTTP app, the outbox
relay and the settlement worker run in this process as asyncio tasks, each
with its own container, as they would in three processes:

    POST /v1/pix/payments -> SendPix: reserve, record PENDING, outbox row
    POST /v1/pix/payments/{e2e}/refunds -> RefundPix: reserve, EM_PROCESSAMENTO
    POST /v1/sandbox/pix/incoming -> AcceptIncomingPix: 202 ACCEPTED
    relay: outbox -> finbank.pix.v1
    worker: pix.payment_requested -> SettlePixPayment -> record SETTLED
            pix.refund_requested -> SettlePixRefund -> refund DEVOLVIDO
            pix.incoming_accepted -> ReceivePix -> record SETTLED, account credited
    GET /v1/pix/payments/{e2e} -> the outcome

What reached the bus is read from the topic by an observing consumer group
(the outbox forgets what it relayed). To know that *everything* published
for a payment so far was observed, a test appends a marker event for it to
the outbox and waits for the marker: the relay keeps an aggregate's order.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from finbank.runtime import PixSettlementWorker, run_relay
from finbank_adapters.aws.dynamo_schema import create_tables
from finbank_adapters.aws_wiring import open_dynamodb_client
from finbank_adapters.containers import build_container
from finbank_adapters.kafka import (
    KafkaConsumerRunner,
    KafkaEventPublisher,
    KafkaSettings,
    RetryPolicy,
    dead_letter_topic,
)
from finbank_adapters.kafka.clients import create_topics, open_producer
from finbank_adapters.postgres import PostgresEventPublisher
from finbank_adapters.sandbox import PEER_KEY_EMAIL
from finbank_adapters.settings import Settings
from finbank_core.pix.events import (
    INCOMING_ACCEPTED,
    PAYMENT_RECEIVED,
    PAYMENT_REQUESTED,
    PAYMENT_SETTLED,
    REFUND_COMPLETED,
    REFUND_REQUESTED,
)
from finbank_core.shared.events import (
    AUTH_TOPIC,
    LEDGER_TOPIC,
    PIX_TOPIC,
    EventEnvelope,
    decode_event,
)
from finbank_http import create_app
from tests.integration.aws_fixtures import aws_endpoint
from tests.integration.kafka_fixtures import kafka_broker, kafka_test_settings, read_topics
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres
from tests.support_redis import open_test_redis

pytestmark = pytest.mark.services
__all__ = ["aws_endpoint", "kafka_broker"]  # fixtures

DEADLINE_SECONDS = 60.0
#: skipped by the worker; only ever appended by these tests
MARKER = "pix.test_marker"


@dataclass
class EventLog:
    """What an observing consumer group saw on ``finbank.pix.v1`` (at least once)."""

    events: list[EventEnvelope] = field(default_factory=list)

    async def __call__(self, event: EventEnvelope) -> None:
        self.events.append(event)

    def saw(self, event_id: uuid.UUID) -> bool:
        return any(e.event_id == event_id for e in self.events)

    def one(self, aggregate_id: str, type: str) -> EventEnvelope:
        return next(e for e in self.events if (e.aggregate_id, e.type) == (aggregate_id, type))

    def types(self, aggregate_id: str, excluding: Collection[uuid.UUID] = ()) -> list[str]:
        """Types of the distinct events of ``aggregate_id``, in order, markers left out."""
        seen: set[uuid.UUID] = set(excluding)
        types = []
        for event in self.events:
            if event.aggregate_id != aggregate_id or event.event_id in seen:
                continue
            seen.add(event.event_id)
            if event.type != MARKER:
                types.append(event.type)
        return types


@dataclass
class LocalStack:
    settings: Settings
    kafka: KafkaSettings
    pool: asyncpg.Pool
    worker: PixSettlementWorker
    client: AsyncTestClient[Any]
    observed: EventLog

    async def published(
        self, aggregate_id: str, excluding: Collection[uuid.UUID] = ()
    ) -> list[str]:
        """Everything published for ``aggregate_id`` until now, once it all reached the bus."""
        marker = EventEnvelope(
            event_id=uuid.uuid4(),
            type=MARKER,
            version=1,
            occurred_at=datetime.now(UTC),
            aggregate_id=aggregate_id,
        )
        await PostgresEventPublisher(self.pool).publish([marker])
        await wait_for(lambda: self.observed.saw(marker.event_id), "the marker event")
        return self.observed.types(aggregate_id, excluding)

    async def redeliver(self, events: list[EventEnvelope]) -> None:
        """Put ``events`` on the topic again, as a relay or a producer retry could."""
        async with open_producer(self.kafka) as producer:
            publisher = KafkaEventPublisher(producer, topic_prefix=self.kafka.topic_prefix)
            await publisher.publish(events)

    async def inbox_rows(self) -> int:
        rows: int = await self.pool.fetchval(
            "SELECT count(*) FROM inbox WHERE consumer = $1", self.worker.group_id
        )
        return rows


def local_settings(
    schema: str,
    redis_prefix: str,
    endpoint: str,
    table: str,
    kafka: KafkaSettings,
    pix_backend: str = "dynamodb",
) -> Settings:
    return Settings.from_env(
        {
            "FINBANK_PROFILE": "local",
            "FINBANK_PIX_BACKEND": pix_backend,
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


@pytest.fixture(params=["postgres", "dynamodb"])
async def stack(
    request: pytest.FixtureRequest, aws_endpoint: str, kafka_broker: Any
) -> AsyncIterator[LocalStack]:
    """The local profile with its PIX stores on PostgreSQL (its default) or on moto."""
    require_postgres()
    kafka = kafka_test_settings(kafka_broker.bootstrap)
    table = f"pix-{uuid.uuid4().hex[:12]}"
    async with (
        isolated_schema() as (pool, schema),
        open_test_redis() as (_redis, redis_prefix),
    ):
        settings = local_settings(
            schema, redis_prefix, aws_endpoint, table, kafka, pix_backend=request.param
        )
        assert (settings.backends.pix, settings.pix.inline_settlement) == (request.param, False)
        if request.param == "dynamodb":
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
        observed = EventLog()
        observer = KafkaConsumerRunner(
            kafka,
            group_id=f"observer-{uuid.uuid4().hex[:8]}",
            topics=[PIX_TOPIC],
            handler=observed,
        )
        tasks = [
            asyncio.create_task(run_relay(settings, stop)),
            asyncio.create_task(worker.run(stop)),
            asyncio.create_task(observer.run()),
        ]
        try:
            async with asyncio.timeout(DEADLINE_SECONDS):
                await worker.ready.wait()
                await observer.assigned.wait()
            app = create_app(build_container(settings))
            async with AsyncTestClient(app=app) as client:
                yield LocalStack(settings, kafka, pool, worker, client, observed)
        finally:
            stop.set()
            await observer.stop()
            await asyncio.gather(*tasks)


async def log_in(client: AsyncTestClient[Any], username: str) -> dict[str, str]:
    password = f"pw-{secrets.token_hex(8)}"
    body = {"username": username, "password": password}
    response = await client.post("/v1/auth/signup", json=body)
    assert response.status_code == 201, response.text
    response = await client.post("/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['tokens']['access_token']}"}


async def new_account(client: AsyncTestClient[Any], headers: dict[str, str], name: str) -> str:
    response = await client.post("/v1/accounts", json={"holder_name": name}, headers=headers)
    assert response.status_code == 201, response.text
    account_id: str = response.json()["id"]
    return account_id


async def funded_account(client: AsyncTestClient[Any], headers: dict[str, str]) -> str:
    account_id = await new_account(client, headers, "Ana")
    response = await client.post(
        "/v1/sandbox/deposits", json={"account_id": account_id, "amount": "100.00"}, headers=headers
    )
    assert response.status_code == 201, response.text
    return account_id


async def balance(client: AsyncTestClient[Any], headers: dict[str, str], account_id: str) -> str:
    response = await client.get(f"/v1/accounts/{account_id}", headers=headers)
    assert response.status_code == 200, response.text
    posted: str = response.json()["balance"]["posted"]
    return posted


async def poll_payment(
    client: AsyncTestClient[Any],
    headers: dict[str, str],
    e2e: str,
    done: Callable[[dict[str, Any]], bool],
    what: str,
    *,
    missing_ok: bool = False,
) -> dict[str, Any]:
    """GET the payment until ``done(body)``; with ``missing_ok``, 404 means "not yet"."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_SECONDS
    while True:
        response = await client.get(f"/v1/pix/payments/{e2e}", headers=headers)
        if not (missing_ok and response.status_code == 404):
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            if done(body):
                return body
        if loop.time() > deadline:
            pytest.fail(f"{what}: not after {DEADLINE_SECONDS} s ({response.text})")
        await asyncio.sleep(0.05)


async def poll_status(
    client: AsyncTestClient[Any],
    headers: dict[str, str],
    e2e: str,
    wanted: str,
    *,
    missing_ok: bool = False,
) -> dict[str, Any]:
    return await poll_payment(
        client,
        headers,
        e2e,
        lambda body: body["status"] == wanted,
        f"payment {wanted}",
        missing_ok=missing_ok,
    )


async def poll_refund(
    client: AsyncTestClient[Any], headers: dict[str, str], e2e: str, return_id: str, wanted: str
) -> dict[str, Any]:
    """The payment once its refund ``return_id`` is ``wanted``."""

    def refund_is_wanted(body: dict[str, Any]) -> bool:
        return any(r["return_id"] == return_id and r["status"] == wanted for r in body["refunds"])

    return await poll_payment(client, headers, e2e, refund_is_wanted, f"refund {wanted}")


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


async def paid_by_carla(stack: LocalStack, amount: str) -> tuple[dict[str, str], str, str]:
    """A customer whom the sandbox's peer bank pays ``amount``, credited by the worker."""
    client = stack.client
    headers = await log_in(client, f"bia-{secrets.token_hex(4)}")
    account_id = await new_account(client, headers, "Bia")
    response = await client.post(
        "/v1/sandbox/pix/incoming",
        json={"account_id": account_id, "amount": amount, "description": "aluguel"},
        headers=headers,
    )
    assert response.status_code == 202, response.text  # accepted, not credited in the request
    accepted = response.json()
    e2e: str = accepted["end_to_end_id"]
    assert accepted == {
        "end_to_end_id": e2e,
        "status": "ACCEPTED",
        "location": f"/v1/pix/payments/{e2e}",
    }
    assert response.headers["location"] == f"/v1/pix/payments/{e2e}"
    return headers, account_id, e2e


async def refund(
    client: AsyncTestClient[Any], headers: dict[str, str], e2e: str, amount: str
) -> str:
    """Ask for a refund; the worker settles it. Its return id."""
    response = await client.post(
        f"/v1/pix/payments/{e2e}/refunds",
        json={"amount": amount},
        headers={**headers, "Idempotency-Key": f"refund-{secrets.token_hex(4)}"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "EM_PROCESSAMENTO"  # not settled in the request
    return_id: str = response.json()["return_id"]
    return return_id


async def test_a_pix_payment_over_http_reaches_settled_through_kafka(stack: LocalStack) -> None:
    headers, account_id, e2e = await pay_carla(stack)

    settled = await poll_status(stack.client, headers, e2e, "SETTLED")

    assert settled["amount"] == "12.34"
    assert await balance(stack.client, headers, account_id) == "87.66"
    handler = stack.worker.handler
    assert handler is not None
    # the record turns SETTLED inside the use case, just before the outcome is published
    await wait_for(lambda: e2e in handler.outcomes, "the worker to finish")
    assert handler.outcomes == {e2e: "SETTLED"}
    assert await stack.published(e2e) == [PAYMENT_REQUESTED, PAYMENT_SETTLED]


async def test_the_payment_and_an_incoming_one_are_listed_by_status_and_direction(
    stack: LocalStack,
) -> None:
    headers, account_id, e2e = await pay_carla(stack)
    await poll_status(stack.client, headers, e2e, "SETTLED")
    client = stack.client

    async def listed(**params: Any) -> dict[str, Any]:
        response = await client.get(
            "/v1/pix/payments", params={"account_id": account_id, **params}, headers=headers
        )
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        return page

    sent = await listed(status="SETTLED", direction="SENT")
    assert [p["end_to_end_id"] for p in sent["items"]] == [e2e]
    assert (await listed(status="PENDING"))["items"] == []
    assert (await listed(direction="RECEIVED"))["items"] == []
    bia_headers, bia_account, incoming = await paid_by_carla(stack, "3.21")
    await poll_status(client, bia_headers, incoming, "SETTLED", missing_ok=True)
    received = await client.get(
        "/v1/pix/payments",
        params={"account_id": bia_account, "direction": "RECEIVED", "limit": 1},
        headers=bia_headers,
    )
    assert received.status_code == 200, received.text
    assert [p["end_to_end_id"] for p in received.json()["items"]] == [incoming]
    # a tampered cursor is a 400 problem naming it, on this store too
    response = await client.get(
        "/v1/pix/payments",
        params={"account_id": account_id, "cursor": "eyJ4IjoxfQ.AAAA"},
        headers=headers,
    )
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "cursor"


async def test_redelivered_settlement_requests_change_nothing(stack: LocalStack) -> None:
    headers, account_id, e2e = await pay_carla(stack)
    await poll_status(stack.client, headers, e2e, "SETTLED")
    handler = stack.worker.handler
    assert handler is not None
    await wait_for(lambda: handler.runs == 1, "the worker to finish")
    assert await stack.published(e2e) == [PAYMENT_REQUESTED, PAYMENT_SETTLED]
    requested = stack.observed.one(e2e, PAYMENT_REQUESTED)
    # the same event twice (the inbox skips it) and a copy under a new id (the use case
    # finds the record final and does nothing)
    copy = msgspec.structs.replace(requested, event_id=uuid.uuid4())
    await stack.redeliver([requested, requested, copy])

    await wait_for(lambda: handler.duplicates == 2 and handler.runs == 2, "the redeliveries")

    payment = await poll_status(stack.client, headers, e2e, "SETTLED")
    assert payment["status"] == "SETTLED"
    assert await balance(stack.client, headers, account_id) == "87.66"  # debited once
    assert await stack.published(e2e, excluding={copy.event_id}) == [
        PAYMENT_REQUESTED,
        PAYMENT_SETTLED,
    ]
    assert await stack.inbox_rows() == 2  # the original event and the copy


async def test_a_refund_over_http_reaches_devolvido_through_kafka(stack: LocalStack) -> None:
    client = stack.client
    ana = await log_in(client, f"ana-{secrets.token_hex(4)}")
    ana_account = await funded_account(client, ana)
    bia = await log_in(client, f"bia-{secrets.token_hex(4)}")
    bia_account = await new_account(client, bia, "Bia")
    response = await client.post(
        "/v1/pix/keys", json={"account_id": bia_account, "key_type": "EVP"}, headers=bia
    )
    assert response.status_code == 201, response.text
    response = await client.post(
        "/v1/pix/payments",
        json={"account_id": ana_account, "key": response.json()["key"], "amount": "12.34"},
        headers={**ana, "Idempotency-Key": "pay-bia"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "SETTLED"  # on-us: settled in the request
    e2e = response.json()["end_to_end_id"]

    return_id = await refund(client, bia, e2e, "10.00")
    assert await balance(client, bia, bia_account) == "12.34"  # reserved, not yet posted

    payment = await poll_refund(client, bia, e2e, return_id, "DEVOLVIDO")

    assert payment["refunded_amount"] == "10.00"
    assert await balance(client, ana, ana_account) == "97.66"  # the payer credited once
    assert await balance(client, bia, bia_account) == "2.34"
    handler = stack.worker.handler
    assert handler is not None
    await wait_for(lambda: return_id in handler.outcomes, "the worker to finish")
    assert handler.outcomes[return_id] == "DEVOLVIDO"
    assert handler.runs_by_type[REFUND_REQUESTED] == 1
    assert await stack.published(e2e) == [
        PAYMENT_REQUESTED,
        PAYMENT_SETTLED,
        PAYMENT_RECEIVED,
        REFUND_REQUESTED,
        REFUND_COMPLETED,
    ]


async def test_a_sandbox_incoming_payment_is_accepted_then_credited_through_kafka(
    stack: LocalStack,
) -> None:
    headers, account_id, e2e = await paid_by_carla(stack, "25.00")

    payment = await poll_status(stack.client, headers, e2e, "SETTLED", missing_ok=True)

    assert (payment["flow"], payment["direction"], payment["amount"]) == (
        "INCOMING",
        "received",
        "25.00",
    )
    assert (payment["payer"]["name"], payment["payer"]["document"]) == (
        "Carla Dias",
        "***.982.247-**",
    )
    assert payment["description"] == "aluguel"
    assert await balance(stack.client, headers, account_id) == "25.00"
    handler = stack.worker.handler
    assert handler is not None
    await wait_for(lambda: e2e in handler.outcomes, "the worker to finish")
    assert handler.outcomes == {e2e: "SETTLED"}
    assert handler.runs_by_type == {INCOMING_ACCEPTED: 1}
    assert await stack.published(e2e) == [INCOMING_ACCEPTED, PAYMENT_RECEIVED]


async def test_redelivered_refund_and_incoming_events_change_nothing(stack: LocalStack) -> None:
    client = stack.client
    headers, account_id, e2e = await paid_by_carla(stack, "50.00")
    await poll_status(client, headers, e2e, "SETTLED", missing_ok=True)
    handler = stack.worker.handler
    assert handler is not None
    # the record is SETTLED just before pix.payment_received is published: wait for it,
    # so that the refund's events come after it
    await wait_for(lambda: e2e in handler.outcomes, "the worker to credit")
    return_id = await refund(client, headers, e2e, "20.00")  # back through the network
    await poll_refund(client, headers, e2e, return_id, "DEVOLVIDO")
    await wait_for(lambda: return_id in handler.outcomes, "the worker to refund")
    before = await stack.published(e2e)
    assert before == [INCOMING_ACCEPTED, PAYMENT_RECEIVED, REFUND_REQUESTED, REFUND_COMPLETED]
    accepted = stack.observed.one(e2e, INCOMING_ACCEPTED)
    requested = stack.observed.one(e2e, REFUND_REQUESTED)
    copies = [msgspec.structs.replace(e, event_id=uuid.uuid4()) for e in (accepted, requested)]

    await stack.redeliver([accepted, accepted, requested, requested, *copies])

    twice = {INCOMING_ACCEPTED: 2, REFUND_REQUESTED: 2}
    await wait_for(
        lambda: handler.duplicates_by_type == twice and handler.runs_by_type == twice,
        "the redeliveries",
    )
    payment = await poll_status(client, headers, e2e, "SETTLED")
    assert [(r["return_id"], r["status"]) for r in payment["refunds"]] == [(return_id, "DEVOLVIDO")]
    assert await balance(client, headers, account_id) == "30.00"  # credited once, debited once
    assert handler.outcomes == {e2e: "SETTLED", return_id: "DEVOLVIDO"}
    assert await stack.published(e2e, excluding={c.event_id for c in copies}) == before
    assert await stack.inbox_rows() == 4  # the two originals and the two copies


async def test_a_malformed_worker_event_goes_to_the_dead_letter_topic(stack: LocalStack) -> None:
    bad = EventEnvelope(
        event_id=uuid.uuid4(),
        type=INCOMING_ACCEPTED,
        version=1,
        occurred_at=datetime.now(UTC),
        aggregate_id="E00000000202601051200malformed01",
        payload={"end_to_end_id": "E00000000202601051200malformed01", "amount_cents": "lots"},
    )

    await stack.redeliver([bad])

    runner = stack.worker.runner
    assert runner is not None
    await wait_for(lambda: runner.stats.dead_lettered == 1, "the DLQ")
    [parked] = await read_topics(stack.kafka, [dead_letter_topic(stack.kafka.topic(PIX_TOPIC))])
    headers = dict(parked.headers)
    assert headers["dlq.reason"] == b"rejected"
    assert headers["dlq.error"].startswith(b"MalformedPixEvent: not a pix.incoming_accepted")
    assert headers["dlq.attempts"] == b"1"  # parked at once: retrying could not help
    assert decode_event(parked.value).event_id == bad.event_id
    handler = stack.worker.handler
    assert handler is not None
    assert handler.runs == 0
    assert await stack.inbox_rows() == 0
