"""PIX payments through real processes while relays and workers are SIGKILLed and restarted.

The local profile as it runs for real, every part its own process:

    finbank serve                      (HTTP: reserve, record in the PIX store, outbox)
    finbank relay            x 2       (outbox -> finbank.pix.v1)
    finbank worker pix-settlement x 2  (SettlePixPayment, PostgreSQL inbox)

against PostgreSQL (a schema of the test's own), Redis (a key prefix of its
own), Tansu (a topic prefix of its own) and moto serving one request at a
time, started exactly as ``finbank dev up`` starts it. The PIX records live
in PostgreSQL (the local profile's default) or on that moto (``dynamodb``). While the payments
are sent, and again while they settle, relays and workers are killed with
SIGKILL (no cleanup, no commit: a crash) and started again. The kills are
tied to progress (a share of the payments accepted, payments still
pending), not to the clock.

Then, with every process stopped:

* every payment is in exactly one final state (``SETTLED`` or
  ``REJECTED``), and the bus carries exactly one outcome event for it, of
  the matching type;
* no ledger reservation is left pending; each payment's reservation is
  posted (settled) or voided (rejected);
* money is conserved: the ledger balances, and every payer holds its
  deposit minus what it settled;
* the DLQ is empty, the outbox drained, and no worker raised the
  missing-record alert.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
import pytest

from finbank_adapters.aws.dynamo_schema import create_tables
from finbank_adapters.aws_wiring import open_dynamodb_client
from finbank_adapters.kafka import dead_letter_topic
from finbank_adapters.kafka.clients import create_topics
from finbank_adapters.kafka.config import KafkaSettings
from finbank_adapters.sandbox import PEER_KEY_EMAIL
from finbank_adapters.settings import Settings
from finbank_cli.devstack import (
    DUMMY_AWS_CREDENTIALS,
    DevStackError,
    _wait_for_port,
    free_port,
    moto_command,
)
from finbank_core.pix.events import PAYMENT_REJECTED, PAYMENT_SETTLED
from finbank_core.pix.payments import pix_transfer_id
from finbank_core.shared.events import AUTH_TOPIC, LEDGER_TOPIC, PIX_TOPIC
from tests.conftest import REQUIRE_SERVICES
from tests.integration.kafka_fixtures import (
    kafka_broker,
    kafka_test_settings,
    read_events,
    read_topics,
)
from tests.postgres_support import POSTGRES_DSN, isolated_schema, require_postgres
from tests.support_redis import open_test_redis

pytestmark = [pytest.mark.services, pytest.mark.slow]
__all__ = ["kafka_broker"]  # fixture

PAYMENTS = 100
PAYERS = 6
DEPOSIT = Decimal("100.00")
AMOUNTS = (Decimal("1.00"), Decimal("2.50"), Decimal("0.75"))
HTTP_CONCURRENCY = 8
#: shares of the payments accepted at which a relay and a worker are killed
KILL_POINTS = (0.2, 0.45, 0.7, 0.9)
SETTLE_DEADLINE_SECONDS = 150.0
#: the relays' lease (FINBANK_RELAY_LEASE_SECONDS below) and a margin: a relay killed
#: while settling holds its batch that long
OUTBOX_DRAIN_SECONDS = 90.0
FINAL = {"SETTLED", "REJECTED"}
#: A killed worker's replacement starts once the broker has dropped the dead member (its
#: session timeout, the workers' default, and a margin). Tansu keeps a SIGKILLed member in
#: the group until then and may elect it leader of the replacement's join round: the live
#: members' SyncGroup then waits for a leader that never answers (~0.8 x the session
#: timeout), fails with REBALANCE_IN_PROGRESS, and they re-join at the same generation;
#: under load those rounds were seen to repeat until the test's deadline. Kafka (MSK)
#: completes the round without the dead member; what this test checks (effects exactly
#: once, every event delivered) does not depend on how soon a replacement starts.
WORKER_RESTART_DELAY_SECONDS = KafkaSettings().session_timeout_ms / 1000 + 2.0
FINBANK = str(Path(sys.executable).with_name("finbank"))


@dataclass
class Proc:
    """One ``finbank`` process; ``restart`` after a kill keeps its role and log."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: IO[bytes]
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0

    def start(self) -> None:
        self.process = subprocess.Popen(  # our own command, fixed arguments
            [FINBANK, *self.args], env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed, nothing committed."""
        assert self.process is not None
        assert self.process.poll() is None, f"{self.name} died on its own: {self.output()}"
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(timeout=10) == -signal.SIGKILL
        self.kills += 1

    def restart(self) -> None:
        self.kill()
        self.start()

    def kill_then_start_later(self, delay: float) -> asyncio.Task[None]:
        """SIGKILL now, start again after ``delay`` s (await the task before killing it again)."""
        self.kill()

        async def start_later() -> None:
            await asyncio.sleep(delay)  # the broker's session timeout, not a synchronisation
            self.start()

        return asyncio.create_task(start_later())

    def stop(self) -> int | None:
        """SIGTERM (finish what is in hand), then SIGKILL if it will not go."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.terminate()
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)

    def output(self, tail: int = 4000) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-tail:]


@dataclass
class Cluster:
    serve: Proc
    relays: list[Proc]
    workers: list[Proc]
    base_url: str
    kafka: KafkaSettings
    pool: asyncpg.Pool

    def all(self) -> list[Proc]:
        return [self.serve, *self.relays, *self.workers]

    def report(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.output()}" for p in self.all())


@contextmanager
def serial_moto() -> Iterator[str]:
    """moto exactly as ``finbank dev up`` starts it (one request at a time)."""
    port = free_port()
    process = subprocess.Popen(
        moto_command(port),
        env={**os.environ, **DUMMY_AWS_CREDENTIALS},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        try:
            _wait_for_port(port, process, "moto server")
        except DevStackError as exc:
            if REQUIRE_SERVICES:
                pytest.fail(f"moto did not start: {exc}")
            pytest.skip(f"moto did not start: {exc}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=10)


def environment(
    schema: str,
    redis_prefix: str,
    aws_endpoint: str,
    table: str,
    kafka: KafkaSettings,
    pix_backend: str = "dynamodb",
) -> dict[str, str]:
    return {
        **os.environ,
        **DUMMY_AWS_CREDENTIALS,
        "FINBANK_PROFILE": "local",
        "FINBANK_POSTGRES_DSN": f"{POSTGRES_DSN}?search_path={schema}",
        "FINBANK_POSTGRES_POOL_MAX": "10",
        "FINBANK_REDIS_KEY_PREFIX": redis_prefix,
        "FINBANK_AWS_ENDPOINT_URL": aws_endpoint,
        "FINBANK_AWS_REGION": "sa-east-1",
        "FINBANK_PIX_BACKEND": pix_backend,
        "FINBANK_PIX_TABLE_NAME": table,
        "FINBANK_KAFKA_BOOTSTRAP": kafka.bootstrap_servers,
        "FINBANK_KAFKA_TOPIC_PREFIX": kafka.topic_prefix,
        # this run's two workers share a group of their own, not another run's
        "FINBANK_KAFKA_SETTLEMENT_GROUP": f"pix-settlement-{uuid.uuid4().hex[:8]}",
        "FINBANK_JWT_SECRET": secrets.token_hex(32),
        "FINBANK_SANDBOX": "true",
        "FINBANK_RELAY_IDLE_SECONDS": "0.05",
        # the shortest lease the relay accepts with the default 30 s Kafka timeout:
        # a batch claimed by a killed relay is taken over after it lapses
        "FINBANK_RELAY_LEASE_SECONDS": "40",
    }


async def wait_until_serving(client: httpx.AsyncClient, serve: Proc) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:  # readiness polling of a child process
        assert serve.process is not None
        assert serve.process.poll() is None, f"serve exited: {serve.output()}"
        try:
            if (await client.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert loop.time() < deadline, f"serve did not start: {serve.output()}"
        await asyncio.sleep(0.1)


@pytest.fixture(params=["dynamodb", "postgres"])
async def cluster(
    request: pytest.FixtureRequest, kafka_broker: Any, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Cluster]:
    """The processes, the PIX records on moto or in PostgreSQL (the local profile's default)."""
    require_postgres()
    if not os.access(FINBANK, os.X_OK):
        message = f"the finbank command is not installed next to {sys.executable}"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    for key, value in DUMMY_AWS_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    kafka = kafka_test_settings(kafka_broker.bootstrap)
    table = f"pix-crash-{uuid.uuid4().hex[:8]}"
    with serial_moto() as aws_endpoint, tempfile.TemporaryDirectory() as logs_dir:
        async with (
            isolated_schema() as (pool, schema),
            open_test_redis() as (_redis, redis_prefix),
        ):
            env = environment(schema, redis_prefix, aws_endpoint, table, kafka, request.param)
            settings = Settings.from_env(env)
            if request.param == "dynamodb":
                async with open_dynamodb_client(settings) as dynamodb:
                    await create_tables(dynamodb, table)
            await create_topics(kafka, [PIX_TOPIC, LEDGER_TOPIC, AUTH_TOPIC])
            port = free_port()

            def proc(name: str, *args: str) -> Proc:
                log = open(Path(logs_dir) / f"{name}.log", "w+b")  # noqa: SIM115 - closed below
                return Proc(name, list(args), env, log)

            cluster = Cluster(
                serve=proc("serve", "serve", "--port", str(port), "--log-level", "warning"),
                relays=[proc(f"relay-{n}", "relay") for n in (1, 2)],
                workers=[proc(f"worker-{n}", "worker", "pix-settlement") for n in (1, 2)],
                base_url=f"http://127.0.0.1:{port}",
                kafka=kafka,
                pool=pool,
            )
            try:
                for p in cluster.all():
                    p.start()
                yield cluster
            finally:
                for p in cluster.all():
                    p.stop()
                    p.log.close()


async def log_in(client: httpx.AsyncClient) -> dict[str, str]:
    body = {"username": f"ana-{secrets.token_hex(4)}", "password": f"pw-{secrets.token_hex(8)}"}
    response = await client.post("/v1/auth/signup", json=body)
    assert response.status_code == 201, response.text
    response = await client.post("/v1/auth/login", json=body)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['tokens']['access_token']}"}


async def funded_account(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    response = await client.post("/v1/accounts", json={"holder_name": "Ana"}, headers=headers)
    assert response.status_code == 201, response.text
    account_id: str = response.json()["id"]
    response = await client.post(
        "/v1/sandbox/deposits",
        json={"account_id": account_id, "amount": str(DEPOSIT)},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return account_id


async def with_retries_on_503(send: Any) -> httpx.Response:
    """The request, sent again with the same Idempotency-Key while the answer is 503."""
    for _ in range(50):
        response: httpx.Response = await send()
        if response.status_code != 503:
            return response
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")) / 10)
    return response


@dataclass
class Sent:
    key: str
    account_id: str
    amount: Decimal
    e2e: str = ""
    status: str = ""


async def test_payments_survive_relays_and_workers_killed_and_restarted(cluster: Cluster) -> None:
    async with httpx.AsyncClient(base_url=cluster.base_url, timeout=60) as client:
        await wait_until_serving(client, cluster.serve)
        headers = await log_in(client)
        payers = [await funded_account(client, headers) for _ in range(PAYERS)]
        payments = [
            Sent(f"crash-{n}", payers[n % PAYERS], AMOUNTS[n % len(AMOUNTS)])
            for n in range(PAYMENTS)
        ]

        accepted = 0
        progress = asyncio.Condition()
        gate = asyncio.Semaphore(HTTP_CONCURRENCY)

        async def pay(sent: Sent) -> None:
            nonlocal accepted
            async with gate:
                response = await with_retries_on_503(
                    lambda: client.post(
                        "/v1/pix/payments",
                        json={
                            "account_id": sent.account_id,
                            "key": PEER_KEY_EMAIL,
                            "amount": str(sent.amount),
                        },
                        headers={**headers, "Idempotency-Key": sent.key},
                    )
                )
            assert response.status_code == 201, response.text
            sent.e2e = response.json()["end_to_end_id"]
            async with progress:
                accepted += 1
                progress.notify_all()

        restarts: dict[int, asyncio.Task[None]] = {}

        async def kill_as_payments_arrive() -> None:
            for n, share in enumerate(KILL_POINTS):
                async with progress:
                    await progress.wait_for(lambda s=share: accepted >= s * PAYMENTS)  # type: ignore[misc]
                cluster.relays[n % 2].restart()
                if (pending := restarts.pop(n % 2, None)) is not None:
                    await pending  # that worker is killed again only once it runs again
                restarts[n % 2] = cluster.workers[n % 2].kill_then_start_later(
                    WORKER_RESTART_DELAY_SECONDS
                )

        await asyncio.gather(kill_as_payments_arrive(), *(pay(sent) for sent in payments))
        await asyncio.gather(*restarts.values())

        async def poll_until_final(deadline: float) -> None:
            loop = asyncio.get_running_loop()
            lookups = asyncio.Semaphore(HTTP_CONCURRENCY)

            async def look(sent: Sent) -> None:
                async with lookups:
                    response = await with_retries_on_503(
                        lambda: client.get(f"/v1/pix/payments/{sent.e2e}", headers=headers)
                    )
                assert response.status_code == 200, response.text
                sent.status = response.json()["status"]

            while True:
                pending = [s for s in payments if s.status not in FINAL]
                if not pending:
                    return
                assert loop.time() < deadline, (
                    f"{len(pending)} payments not final, e.g. {pending[0]}\n{cluster.report()}"
                )
                await asyncio.gather(*(look(s) for s in pending))
                if any(s.status not in FINAL for s in payments):
                    await asyncio.sleep(0.25)  # polling the service, not synchronising

        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_DEADLINE_SECONDS
        # One more crash of both workers and a relay while payments are still settling.
        await asyncio.gather(*kill_while_settling(payments, cluster))
        await poll_until_final(deadline)

        # A replay is answered with the first payment, and pays nothing more.
        for sent in payments[:5]:
            again = await client.post(
                "/v1/pix/payments",
                json={
                    "account_id": sent.account_id,
                    "key": PEER_KEY_EMAIL,
                    "amount": str(sent.amount),
                },
                headers={**headers, "Idempotency-Key": sent.key},
            )
            assert again.status_code in (200, 201), again.text
            assert again.json()["end_to_end_id"] == sent.e2e

    # Final records do not mean published events: an outcome event may still be in the
    # outbox, or leased to a relay killed while settling (until its lease ends). Stopping
    # the relays now would leave it off the bus; they get until the lease ends and more.
    await wait_until_outbox_drained(cluster, deadline_seconds=OUTBOX_DRAIN_SECONDS)
    for p in cluster.all():
        assert p.stop() in (0, -signal.SIGTERM), f"{p.name} did not stop cleanly\n{p.output()}"
    assert sum(p.kills for p in cluster.relays) == len(KILL_POINTS) + 1
    assert sum(p.kills for p in cluster.workers) == len(KILL_POINTS) + 2

    await check_invariants(cluster, payments)


async def wait_until_outbox_drained(cluster: Cluster, *, deadline_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_seconds
    while left := await cluster.pool.fetchval("SELECT count(*) FROM outbox"):
        assert loop.time() < deadline, f"{left} events still in the outbox\n{cluster.report()}"
        await asyncio.sleep(0.1)  # polling the database, not synchronising


def kill_while_settling(payments: list[Sent], cluster: Cluster) -> list[asyncio.Task[None]]:
    """Kill both workers and a relay once every payment is accepted (most are still pending).

    The relay starts again at once; the workers after ``WORKER_RESTART_DELAY_SECONDS``
    (the returned tasks).
    """
    assert all(s.e2e for s in payments)
    restarts = [w.kill_then_start_later(WORKER_RESTART_DELAY_SECONDS) for w in cluster.workers]
    cluster.relays[0].restart()
    return restarts


async def check_invariants(cluster: Cluster, payments: list[Sent]) -> None:
    pool = cluster.pool
    e2es = [s.e2e for s in payments]
    assert len(set(e2es)) == PAYMENTS, "one payment per idempotency key"
    assert {s.status for s in payments} <= FINAL

    # Ledger: each reservation resolved the way its record says; none left pending.
    rows = await pool.fetch(
        "SELECT id, status FROM ledger_transfers WHERE id = ANY($1::uuid[])",
        [pix_transfer_id(e2e, "pending") for e2e in e2es],
    )
    reservation = {row["id"]: row["status"] for row in rows}
    for sent in payments:
        expected = "posted" if sent.status == "SETTLED" else "voided"
        assert reservation[pix_transfer_id(sent.e2e, "pending")] == expected, sent
    assert (
        await pool.fetchval("SELECT count(*) FROM ledger_transfers WHERE status = 'pending'") == 0
    )

    # Money: the ledger balances, and each payer lost exactly what it settled.
    totals: Any = await pool.fetchrow(
        "SELECT sum(debits_posted) AS dp, sum(credits_posted) AS cp,"
        " sum(debits_pending) AS dpe, sum(credits_pending) AS cpe FROM ledger_accounts"
    )
    assert totals["dp"] == totals["cp"]
    assert totals["dpe"] == totals["cpe"] == 0
    for payer in {s.account_id for s in payments}:
        row: Any = await pool.fetchrow(
            "SELECT credits_posted - debits_posted AS balance, debits_pending"
            " FROM ledger_accounts WHERE id = $1",
            uuid.UUID(payer),
        )
        settled = sum(
            (s.amount for s in payments if s.account_id == payer and s.status == "SETTLED"),
            Decimal(0),
        )
        assert row["debits_pending"] == 0
        assert Decimal(row["balance"]) / 100 == DEPOSIT - settled

    # The bus: one outcome event per payment, matching its record; nothing dead-lettered.
    events = await read_events(cluster.kafka, PIX_TOPIC, deadline_seconds=60)
    outcomes: dict[str, set[tuple[uuid.UUID, str]]] = {}
    for event in events:
        if event.type in (PAYMENT_SETTLED, PAYMENT_REJECTED):
            outcomes.setdefault(event.aggregate_id, set()).add((event.event_id, event.type))
    for sent in payments:
        wanted = PAYMENT_SETTLED if sent.status == "SETTLED" else PAYMENT_REJECTED
        assert len(outcomes.get(sent.e2e, set())) == 1, (sent, outcomes.get(sent.e2e))
        [(_, kind)] = outcomes[sent.e2e]
        assert kind == wanted
    dlq = dead_letter_topic(cluster.kafka.topic(PIX_TOPIC))
    await create_topics(cluster.kafka, [dead_letter_topic(PIX_TOPIC)])  # exists if used
    assert await read_topics(cluster.kafka, [dlq], deadline_seconds=60) == []

    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    for worker in cluster.workers:
        assert "ALERT pix-settlement" not in worker.output(tail=10**9)
