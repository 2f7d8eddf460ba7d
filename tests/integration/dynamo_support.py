"""DynamoDB plumbing for tests: a table of its own per test on moto, stream records read back.

``serial_moto_endpoint`` is a moto server that handles one request at a
time. moto's threaded server runs a ``TransactWriteItems`` as
check-then-write with a table copy for rollback, without a lock, so two
concurrent transactions on one item can both see it absent (or undo each
other). DynamoDB serializes conditional writes per item; a serial server
is the faithful stand-in when a test is *about* concurrent writes.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import pytest

from finbank_adapters.aws.dynamo_schema import create_tables, stream_arn
from tests.conftest import REQUIRE_SERVICES
from tests.integration.aws_fixtures import DUMMY_AWS_ENV

REGION = "sa-east-1"


def table_name() -> str:
    return f"pix-{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def dynamodb_client(endpoint: str, **config: Any) -> AsyncIterator[Any]:
    import aioboto3
    from botocore.config import Config

    async with aioboto3.Session().client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint,
        config=Config(**config) if config else None,
    ) as client:
        yield client


@asynccontextmanager
async def new_table(client: Any) -> AsyncIterator[str]:
    name = table_name()
    await create_tables(client, name)
    try:
        yield name
    finally:
        await client.delete_table(TableName=name)


async def read_stream(endpoint: str, client: Any, table: str) -> list[dict[str, Any]]:
    """Every record of the table's stream so far, shaped as Lambda delivers them."""
    import aioboto3

    arn = await stream_arn(client, table)
    assert arn is not None
    records: list[dict[str, Any]] = []
    async with aioboto3.Session().client(
        "dynamodbstreams", region_name=REGION, endpoint_url=endpoint
    ) as streams:
        described = await streams.describe_stream(StreamArn=arn)
        for shard in described["StreamDescription"]["Shards"]:
            iterator = (
                await streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )
            )["ShardIterator"]
            while iterator:
                page = await streams.get_records(ShardIterator=iterator)
                if not page["Records"]:
                    break
                records.extend(page["Records"])
                iterator = page.get("NextShardIterator")
    for record in records:
        record["eventSourceARN"] = arn
        created = record["dynamodb"].get("ApproximateCreationDateTime")
        if isinstance(created, datetime):  # boto parses it; Lambda sends epoch seconds
            record["dynamodb"]["ApproximateCreationDateTime"] = int(created.timestamp())
    return records


@pytest.fixture(scope="session")
def serial_moto_endpoint() -> Iterator[str]:
    """A moto server on a free port that serves one request at a time."""
    try:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server
    except ImportError as exc:
        if REQUIRE_SERVICES:
            pytest.fail(f"moto server is not installed ({exc}) and FINBANK_REQUIRE_SERVICES=1")
        pytest.skip(f"moto server is not installed: {exc}")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in DUMMY_AWS_ENV.items():
            patch.setenv(key, value)
        app = DomainDispatcherApplication(create_backend_app)
        server = make_server(
            "127.0.0.1", 0, app, threaded=False, request_handler=MotoRequestHandler
        )
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            thread.join(timeout=10)
