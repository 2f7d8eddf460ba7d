"""Completed PIX payments/s end to end on the local profile: HTTP request -> SETTLED via Kafka.

Run: ``.venv/bin/python benchmarks/pix_e2e.py [--payments 300] [--concurrency 20]
[--accounts 10] [--pix-backend postgres|dynamodb] [--rate R] [--processes [--statements]]``

Starts Tansu and a moto server (``finbank dev up``'s :class:`DevStack`), uses
the PostgreSQL server at ``--dsn`` (a fresh schema, dropped afterwards) and
Redis at 127.0.0.1:6379 (a key prefix of its own, removed afterwards). In
this one process, as asyncio tasks: the HTTP app (Litestar's
``AsyncTestClient``), the outbox relay and the settlement worker, each with
its own container, as three processes would have. Every payment goes

    POST /v1/pix/payments (reserve in PostgreSQL, record in the PIX store, outbox row)
    -> relay -> finbank.pix.v1 -> worker (SPI simulator, post, record SETTLED)

and counts when the worker has marked it ``SETTLED``. The PIX records live
in PostgreSQL (``--pix-backend postgres``, the local profile's default) or
on moto (``dynamodb``, far slower than DynamoDB itself).

Two modes: closed loop (default: ``--concurrency`` requests in flight, as
fast as they complete: the throughput) and open loop (``--rate R``: one
request every 1/R s whatever happens, latency measured from when each was
due: the latency at that load). Prints payments/s over the whole run and
per-payment latency (request due -> settled); figures vary with whatever
else runs on the machine; this prints, it never asserts.

``--processes`` runs ``finbank serve``, ``relay`` and ``worker
pix-settlement`` as processes of their own (the deployment's shape; the
payments go through a bare keep-alive HTTP/1.1 client, as wrk would, so the
load generator takes little of the CPU the bank runs on) and also prints,
for the run after the warm-up, the CPU milliseconds per payment of every
process (each one's PostgreSQL backends apart, Tansu, this client) and the
load average: figures that depend much less on what else runs than the
rates do. ``--statements`` adds each process's PostgreSQL statements per
payment (counted in the process by an asyncpg query logger) and the time
spent in each PL/pgSQL function (``track_functions``; lock waits included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import msgspec
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from finbank.runtime import PixSettlementWorker, run_relay
from finbank_adapters.containers import build_container
from finbank_adapters.kafka.config import KafkaSettings
from finbank_adapters.postgres.migrations import migrate, quote_ident
from finbank_adapters.sandbox import PEER_KEY_EMAIL
from finbank_adapters.settings import Settings
from finbank_cli.devstack import (
    DUMMY_AWS_CREDENTIALS,
    DevStack,
    _wait_for_port,
    free_port,
    running_stack,
)
from finbank_http import create_app

DEFAULT_DSN = os.environ.get(
    "FINBANK_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


def environment_for(
    stack: DevStack, dsn: str, schema: str, redis_prefix: str, pix_backend: str
) -> dict[str, str]:
    """The ``FINBANK_*`` variables of the run, for this process and the child processes."""
    return {
        "FINBANK_PROFILE": "local",
        "FINBANK_PIX_BACKEND": pix_backend,
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
        # the claim after a batch that was not full waits 10 ms (docs/events.md): at
        # this load, claims back to back took 1-2 items each
        "FINBANK_RELAY_LINGER_SECONDS": "0.01",
    }


async def open_accounts(client: Any, count: int) -> tuple[dict[str, str], list[str]]:
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


async def run(
    payments: int,
    concurrency: int,
    account_count: int,
    dsn: str,
    pix_backend: str,
    rate: float,
    partitions: int,
    processes: bool,
    count_statements: bool,
) -> None:
    from finbank_adapters.aws_wiring import bootstrap_aws
    from finbank_adapters.kafka.clients import create_topics
    from finbank_core.shared.events import AUTH_TOPIC, LEDGER_TOPIC, PIX_TOPIC

    for key, value in DUMMY_AWS_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    schema = f"bench_{secrets.token_hex(4)}"
    redis_prefix = f"finbank-bench:{secrets.token_hex(6)}:"
    admin = await asyncpg.connect(dsn)
    redis = Redis(host="127.0.0.1", port=6379)
    with running_stack(DevStack()) as stack:
        try:
            await migrate(admin, schema)
            env = environment_for(stack, dsn, schema, redis_prefix, pix_backend)
            settings = Settings.from_env(env)
            if pix_backend == "dynamodb":
                await bootstrap_aws(settings)
            await create_topics(
                KafkaSettings.from_settings(settings),
                [PIX_TOPIC, LEDGER_TOPIC, AUTH_TOPIC],
                partitions=partitions,
            )
            print(
                f"PIX stores: {pix_backend}; mode: "
                + (f"open loop, {rate}/s" if rate else "closed loop")
                + ("; serve, relay and worker in processes of their own" if processes else "")
            )
            if processes:
                if pix_backend != "postgres":
                    raise SystemExit(
                        "--processes reads the outcomes from PostgreSQL: postgres only"
                    )
                with tempfile.TemporaryDirectory() as directory:
                    await bench_processes(
                        env,
                        dsn,
                        schema,
                        payments,
                        concurrency,
                        account_count,
                        rate,
                        directory if count_statements else None,
                        stack.processes,
                    )
            else:
                await bench(settings, payments, concurrency, account_count, rate)
        finally:
            if count_statements:
                await report_functions(admin, schema, payments)
            await admin.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
            await admin.close()
            keys = [k async for k in redis.scan_iter(match=f"{redis_prefix}*", count=500)]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()


async def bench(
    settings: Settings, payments: int, concurrency: int, account_count: int, rate: float
) -> None:
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
                due = 0.0
                if rate:  # open loop: this request is due at start + n / rate
                    due = started + n / rate
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                async with gate:
                    began = time.perf_counter()
                    response = await client.post(
                        "/v1/pix/payments",
                        json={
                            "account_id": accounts[n % len(accounts)],
                            "key": PEER_KEY_EMAIL,
                            "amount": "1.00",
                        },
                        headers={**headers, "Idempotency-Key": f"bench-{n}"},
                    )
                    accept_seconds.append(time.perf_counter() - began)
                    if response.status_code != 201:
                        raise RuntimeError(f"payment {n}: {response.status_code} {response.text}")
                    sent_at[response.json()["end_to_end_id"]] = due if rate else began

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
    report(
        payments, concurrency, account_count, accepted, elapsed, sent_at, settled_at, accept_seconds
    )


def report(
    payments: int,
    concurrency: int,
    account_count: int,
    accepted: float,
    elapsed: float,
    sent_at: dict[str, float],
    settled_at: dict[str, float],
    accept_seconds: list[float],
) -> None:
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


class KeepAliveClient:
    """A bare HTTP/1.1 client: up to ``size`` keep-alive connections, one request on each
    at a time, responses read by ``Content-Length`` (what the service sends)."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self._host = host
        self._port = port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._all: list[asyncio.StreamWriter] = []
        self._slots = asyncio.Semaphore(size)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST ``body`` (JSON) to ``path``; the status and the response's body."""
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {self._host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{head}\r\n"
        ).encode() + body
        async with self._slots:
            reader, writer = await self._connection()
            writer.write(request)
            try:
                head_bytes = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionResetError):
                # a kept-alive connection the server closed while it sat idle (uvicorn's
                # keep-alive timeout) got the request after the close: nothing was read,
                # so it goes again once on a new connection (the Idempotency-Key makes a
                # repeat harmless anyway)
                writer.close()
                reader, writer = await self._connection(fresh=True)
                writer.write(request)
                head_bytes = await reader.readuntil(b"\r\n\r\n")
            lines = head_bytes.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            length = next(
                int(line.split(b":", 1)[1])
                for line in lines[1:]
                if line.lower().startswith(b"content-length:")
            )
            answer = await reader.readexactly(length)
            self._idle.append((reader, writer))
        return status, answer

    async def _connection(
        self, *, fresh: bool = False
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._idle and not fresh:
            return self._idle.pop()
        reader, writer = await asyncio.open_connection(self._host, self._port)
        self._all.append(writer)
        return reader, writer

    async def close(self) -> None:
        for writer in self._all:
            writer.close()
        self._idle.clear()
        self._all.clear()


def spawn(
    arguments: list[str], env: dict[str, str], role: str, statements_dir: str | None
) -> subprocess.Popen[bytes]:
    """``finbank <arguments>`` in a process of its own, its PostgreSQL sessions named
    ``bench_<role>`` (for the CPU figures); with ``statements_dir``, it counts its
    statements into ``<statements_dir>/<role>.json`` (see :func:`child_main`)."""
    dsn = f"{env['FINBANK_POSTGRES_DSN']}&application_name=bench_{role}"
    if statements_dir is not None:  # and the time spent in each PL/pgSQL function
        dsn += "&track_functions=pl"
    env = {**env, "FINBANK_POSTGRES_DSN": dsn}
    command = [sys.executable, "-m", "finbank_cli", *arguments]
    if statements_dir is not None:
        out = os.path.join(statements_dir, f"{role}.json")
        command = [sys.executable, os.path.abspath(__file__), "--child-statements", out, *arguments]
    return subprocess.Popen(
        command,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def child_main(out: str, arguments: list[str]) -> None:
    """Run ``finbank <arguments>`` counting every statement its asyncpg connections send.

    Each query text (whitespace collapsed) is counted, ``BEGIN``/``COMMIT`` included;
    SIGUSR1 starts the count afresh (the parent sends it after the warm-up), and the
    counts are written to ``out`` as JSON on the way out.
    """
    import atexit
    import collections
    import json

    import asyncpg.connection

    from finbank_cli.main import main as finbank_main

    counts: collections.Counter[str] = collections.Counter()
    original = asyncpg.connection.Connection.__init__

    def count(record: Any) -> None:
        counts[" ".join(record.query.split())[:160]] += 1

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.add_query_logger(count)

    asyncpg.connection.Connection.__init__ = init  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, lambda *_: counts.clear())

    def dump() -> None:
        with open(out, "w") as f:
            json.dump(dict(counts), f)

    def dump_and_exit(*_: object) -> None:
        dump()
        os._exit(0)

    atexit.register(dump)
    # uvicorn raises the SIGTERM it caught again once shut down: no atexit then
    signal.signal(signal.SIGTERM, dump_and_exit)
    sys.argv = ["finbank", *arguments]
    code = finbank_main()
    dump()
    sys.exit(code)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def cpu_snapshot(
    pool: asyncpg.Pool, processes: dict[str, int]
) -> dict[str, dict[int, float]]:
    """CPU seconds per role and pid: the processes, and each role's PostgreSQL backends."""
    snapshot = {role: {pid: cpu_seconds(pid)} for role, pid in processes.items()}
    rows = await pool.fetch(
        "SELECT pid, application_name FROM pg_stat_activity WHERE application_name = ANY($1)",
        [f"bench_{role}" for role in ("serve", "relay", "worker", "observer")],
    )
    for row in rows:
        role = "postgres (" + row["application_name"].removeprefix("bench_") + ")"
        snapshot.setdefault(role, {})[row["pid"]] = cpu_seconds(row["pid"])
    return snapshot


def report_cpu(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]], payments: int
) -> None:
    """CPU milliseconds per payment by process (load-independent, unlike the rates)."""
    total = 0.0
    lines = []
    for role, pids in sorted(after.items()):
        spent = sum(s - before.get(role, {}).get(pid, 0.0) for pid, s in pids.items())
        total += spent
        lines.append(f"    {role:28} {spent * 1000 / payments:6.2f}")
    print("  CPU ms per payment (user + system), by process:")
    print("\n".join(lines))
    print(f"    {'all of them':28} {total * 1000 / payments:6.2f}")


async def report_functions(admin: asyncpg.Connection, schema: str, payments: int) -> None:
    """Calls and milliseconds per payment of each PL/pgSQL function (track_functions=pl:
    wall time in the server, lock waits included), warm-up and setup included."""
    await asyncio.sleep(1.0)  # the backends' statistics reach the collector
    await admin.execute("SELECT pg_stat_clear_snapshot()")
    rows = await admin.fetch(
        "SELECT funcname, calls, total_time, self_time FROM pg_stat_user_functions"
        " WHERE schemaname = $1 ORDER BY total_time DESC",
        schema,
    )
    print("  PL/pgSQL functions per payment (calls, total ms, self ms):")
    for row in rows:
        print(
            f"    {row['funcname']:32} {row['calls'] / payments:5.2f}"
            f" {row['total_time'] / payments:7.3f} {row['self_time'] / payments:7.3f}"
        )


def report_statements(statements_dir: str, payments: int) -> None:
    """Statements per payment by process, and the most frequent ones."""
    import json

    print("  PostgreSQL statements per payment, by process (BEGIN/COMMIT included):")
    for role in ("serve", "relay", "worker"):
        path = os.path.join(statements_dir, f"{role}.json")
        if not os.path.exists(path):
            print(f"    {role}: no counts")
            continue
        with open(path) as f:
            counts: dict[str, int] = json.load(f)
        print(f"    {role:8} {sum(counts.values()) / payments:6.2f}")
        for query, n in sorted(counts.items(), key=lambda kv: -kv[1])[:14]:
            print(f"      {n / payments:5.2f}  {query[:110]}")


async def bench_processes(
    env: dict[str, str],
    dsn: str,
    schema: str,
    payments: int,
    concurrency: int,
    account_count: int,
    rate: float,
    statements: str | None,
    stack_processes: list[subprocess.Popen[bytes]],
) -> None:
    """The deployment's shape: three processes, HTTP over TCP, outcomes read from PostgreSQL.

    A payment's latency is its record's ``settled_at`` (the worker's clock:
    this machine's) minus when the request was due (``time.time()``).
    """
    port = free_port()
    roles = ["serve", "relay", "worker"]
    children = [
        spawn(["serve", "--port", str(port), "--log-level", "warning"], env, "serve", statements),
        spawn(["relay"], env, "relay", statements),
        spawn(["worker", "pix-settlement"], env, "worker", statements),
    ]
    watched = {role: child.pid for role, child in zip(roles, children, strict=True)}
    for process in stack_processes:  # Tansu and moto (idle here)
        program = os.path.basename(str(process.args[0]))  # type: ignore[index]
        watched[f"dev stack ({program})"] = process.pid
    watched["this benchmark (HTTP client)"] = os.getpid()
    pool = await asyncpg.create_pool(
        dsn,
        server_settings={"search_path": schema, "application_name": "bench_observer"},
        min_size=1,
        max_size=2,
    )
    # by primary key, the payments answered but not yet seen settled only: the
    # poll's cost stays that of the payments in flight, not of the whole run
    settled_sql = (
        "SELECT end_to_end_id, body FROM pix_payments"
        " WHERE end_to_end_id = ANY($1::text[]) AND status <> 'PENDING'"
    )
    try:
        _wait_for_port(port, children[0], "finbank serve")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            headers, accounts = await open_accounts(client, account_count)

            async def outcomes(known: dict[str, float], waiting: set[str]) -> None:
                for row in await pool.fetch(settled_sql, list(waiting)):
                    waiting.discard(row["end_to_end_id"])
                    body = msgspec.json.decode(row["body"])
                    if body["status"] != "SETTLED":
                        raise RuntimeError(f"{row['end_to_end_id']}: {body['status']}")
                    known[row["end_to_end_id"]] = datetime.fromisoformat(
                        body["settled_at"]
                    ).timestamp()

            # warm-up: one payment through relay and worker (the consumer group joins first)
            warm: dict[str, float] = {}
            response = await client.post(
                "/v1/pix/payments",
                json={"account_id": accounts[0], "key": PEER_KEY_EMAIL, "amount": "1.00"},
                headers={**headers, "Idempotency-Key": "warm-up"},
            )
            assert response.status_code == 201, response.text
            async with asyncio.timeout(120):
                while not warm:
                    await outcomes(warm, {response.json()["end_to_end_id"]})
                    await asyncio.sleep(0.05)

            sent_at: dict[str, float] = {}
            settled_at: dict[str, float] = dict(warm)
            accept_seconds: list[float] = []
            gate = asyncio.Semaphore(concurrency)
            if statements is not None:
                for child in children:  # the counts start afresh after the warm-up
                    child.send_signal(signal.SIGUSR1)
            cpu_before = await cpu_snapshot(pool, watched)
            started = time.time()

            async def pay(n: int) -> None:
                due = 0.0
                if rate:
                    due = started + n / rate
                    await asyncio.sleep(max(0.0, due - time.time()))
                body = msgspec.json.encode(
                    {
                        "account_id": accounts[n % len(accounts)],
                        "key": PEER_KEY_EMAIL,
                        "amount": "1.00",
                    }
                )
                async with gate:
                    began = time.time()
                    status, answer = await raw.post(
                        "/v1/pix/payments", body, {**headers, "Idempotency-Key": f"bench-{n}"}
                    )
                    accept_seconds.append(time.time() - began)
                    if status != 201:
                        raise RuntimeError(f"payment {n}: {status} {answer!r}")
                    e2e = msgspec.json.decode(answer)["end_to_end_id"]
                    sent_at[e2e] = due if rate else began
                    waiting.add(e2e)

            waiting: set[str] = set()
            # the payments go through a bare HTTP/1.1 client (as wrk would): httpx cost
            # about 2 ms of CPU a request, taken from the two cores the bank runs on
            raw = KeepAliveClient("127.0.0.1", port, concurrency)
            try:
                await asyncio.gather(*(pay(n) for n in range(payments)))
            finally:
                await raw.close()
            accepted = time.time() - started
            # the outcomes are read once every request has answered (their times are
            # the records' own settled_at): no polling competes with the requests.
            # While the worker settles the rest, the poll runs 4 times a second: how
            # often it looks changes no figure (the times are the records'), only the
            # CPU it takes from the worker (at 50 a second, 0.2-0.55 ms a payment).
            async with asyncio.timeout(300):
                while len(settled_at) < payments + len(warm):
                    await outcomes(settled_at, waiting)
                    if waiting:
                        await asyncio.sleep(0.25)
            for e2e in warm:
                del settled_at[e2e]
            elapsed = max(settled_at.values()) - started
            cpu_after = await cpu_snapshot(pool, watched)
    finally:
        await pool.close()
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    report(
        payments, concurrency, account_count, accepted, elapsed, sent_at, settled_at, accept_seconds
    )
    report_cpu(cpu_before, cpu_after, payments)
    print(f"  load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if statements is not None:
        report_statements(statements, payments)


def main() -> None:
    if sys.argv[1:2] == ["--child-statements"]:
        child_main(sys.argv[2], sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--payments", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--pix-backend", choices=["postgres", "dynamodb"], default="postgres")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="open loop: payments/s (0: closed loop)"
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=12,
        help="partitions of the topics: the worker handles each in order, partitions at once",
    )
    parser.add_argument(
        "--processes",
        action="store_true",
        help="run `finbank serve`, `relay` and `worker pix-settlement` as processes (postgres)",
    )
    parser.add_argument(
        "--statements",
        action="store_true",
        help="with --processes: count each process's PostgreSQL statements per payment",
    )
    args = parser.parse_args()
    asyncio.run(
        run(
            args.payments,
            args.concurrency,
            args.accounts,
            args.dsn,
            args.pix_backend,
            args.rate,
            args.partitions,
            args.processes,
            args.statements,
        )
    )


if __name__ == "__main__":
    main()
