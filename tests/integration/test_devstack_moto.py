"""``finbank dev up``'s moto serves one request at a time (threaded moto lost DynamoDB writes).

A first client opens a connection and sends half a request; while it is
pending, a second request must not be answered (a threaded server answers it
at once). When the first finishes, the second is answered. Then many
concurrent ``TransactWriteItems`` against that server are all there afterwards.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from finbank_cli.devstack import (
    DUMMY_AWS_CREDENTIALS,
    DevStackError,
    _wait_for_port,
    free_port,
    moto_command,
)
from tests.conftest import REQUIRE_SERVICES

pytestmark = pytest.mark.services


@pytest.fixture(scope="module")
def dev_moto() -> Iterator[int]:
    """The moto process exactly as ``DevStack.start`` runs it."""
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
                pytest.fail(f"moto server did not start: {exc}")
            pytest.skip(f"moto server did not start: {exc}")
        yield port
    finally:
        process.kill()
        process.wait(timeout=10)


def get_status(port: int, timeout: float) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", "/moto-api/data.json")
        return connection.getresponse().status
    finally:
        connection.close()


def test_the_dev_moto_answers_one_request_at_a_time(dev_moto: int) -> None:
    with socket.create_connection(("127.0.0.1", dev_moto)) as first:
        first.sendall(b"GET /moto-api/data.json HTTP/1.1\r\nHost: localhost\r\n")
        # The server is busy reading the first request: the second is not answered.
        with pytest.raises(TimeoutError):
            get_status(dev_moto, timeout=1.0)
        first.sendall(b"Connection: close\r\n\r\n")
        assert first.recv(12).startswith(b"HTTP/1.")
    assert get_status(dev_moto, timeout=10.0) == 200


async def test_concurrent_transactional_writes_on_the_dev_moto_are_all_kept(dev_moto: int) -> None:
    import aioboto3

    session = aioboto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="sa-east-1"
    )
    table = f"devstack-{uuid.uuid4().hex[:8]}"
    async with session.client("dynamodb", endpoint_url=f"http://127.0.0.1:{dev_moto}") as dynamodb:
        await dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )

        async def write(n: int) -> None:
            await dynamodb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": table,
                            "Item": {"pk": {"S": f"item-{n}"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": table,
                            "Item": {"pk": {"S": f"index-{n}"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )

        await asyncio.gather(*(write(n) for n in range(50)))
        keys: set[str] = set()
        pages = dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
        async for page in pages:
            keys.update(item["pk"]["S"] for item in page["Items"])
    assert keys == {f"{kind}-{n}" for kind in ("item", "index") for n in range(50)}
