"""``finbank aws bootstrap`` and ``finbank dev up``, as a user runs them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid

import pytest

from finbank_adapters.aws.dynamo_schema import stream_arn
from tests.conftest import service_reachable
from tests.integration.aws_fixtures import DUMMY_AWS_ENV, aws_endpoint
from tests.integration.dynamo_support import dynamodb_client
from tests.integration.kafka_fixtures import BrokerUnavailable, tansu_binary, unavailable

pytestmark = pytest.mark.services
__all__ = ["aws_endpoint"]  # fixture


def finbank(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "finbank_cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **DUMMY_AWS_ENV, **env},
        timeout=120,
        check=False,
    )


def test_aws_bootstrap_creates_the_table_once(aws_endpoint: str) -> None:
    table = f"pix-{uuid.uuid4().hex[:12]}"
    env = {"FINBANK_AWS_ENDPOINT_URL": aws_endpoint, "FINBANK_PIX_TABLE_NAME": table}

    first = finbank("aws", "bootstrap", env=env)
    second = finbank("aws", "bootstrap", env=env)

    assert first.returncode == 0, first.stderr
    assert f"table {table}: created" in first.stdout
    assert second.returncode == 0, second.stderr
    assert f"table {table}: already there" in second.stdout

    async def described() -> str | None:
        async with dynamodb_client(aws_endpoint) as client:
            return await stream_arn(client, table)

    arn = asyncio.run(described())
    assert arn is not None
    assert arn in first.stdout


def test_dev_up_starts_kafka_and_aws_prints_the_env_and_stops_on_sigterm() -> None:
    try:
        tansu_binary()
    except BrokerUnavailable as exc:
        unavailable(f"the Tansu Kafka broker is unavailable: {exc}")
    table = f"pix-{uuid.uuid4().hex[:12]}"
    process = subprocess.Popen(
        [sys.executable, "-m", "finbank_cli", "dev", "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "FINBANK_PIX_TABLE_NAME": table},
    )
    exports: dict[str, str] = {}
    try:
        assert process.stdout is not None
        for line in process.stdout:  # blocks until dev up prints; it exits on failure
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").strip().partition("=")
                exports[key] = value
            if "ready" in line:
                break
        assert exports.get("FINBANK_PROFILE") == "local", process.stderr
        # its own PostgreSQL and Redis databases, never the test suite's
        assert exports["FINBANK_POSTGRES_DSN"].rsplit("/", 1)[-1].split("?")[0] == "finbank_dev"
        assert exports["FINBANK_REDIS_URL"].endswith("/1")
        kafka_host, _, kafka_port = exports["FINBANK_KAFKA_BOOTSTRAP"].partition(":")
        assert service_reachable(kafka_host, int(kafka_port))
        endpoint = exports["FINBANK_AWS_ENDPOINT_URL"]

        async def described() -> str | None:
            async with dynamodb_client(endpoint) as client:
                return await stream_arn(client, table)

        assert asyncio.run(described()) is not None  # the PIX table exists on the stack's moto
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        with socket.socket() as probe:  # the broker went down with it
            assert probe.connect_ex((kafka_host, int(kafka_port))) != 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
