"""Builders for the DynamoDB adapters, used by ``finbank_adapters.containers`` and the CLI.

aioboto3 is imported lazily so profiles without DynamoDB run without the
``aws`` extra; the client resource yields ``None`` when the PIX backend is
not ``dynamodb`` (``init_resources`` opens every resource).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from finbank_adapters._extras import require_extra
from finbank_adapters.settings import Settings


def uses_dynamodb(settings: Settings) -> bool:
    return settings.backends.pix == "dynamodb"


@asynccontextmanager
async def open_dynamodb_client(settings: Settings) -> AsyncIterator[Any]:
    """An aioboto3 ``dynamodb`` client on ``settings.aws.endpoint_url`` (empty: AWS itself)."""
    require_extra("FINBANK_PIX_BACKEND=dynamodb", "aws", ["aioboto3", "botocore"])
    import aioboto3

    async with aioboto3.Session().client(
        "dynamodb",
        region_name=settings.aws.region,
        endpoint_url=settings.aws.endpoint_url or None,
    ) as client:
        yield client


async def dynamodb_client(settings: Settings) -> AsyncIterator[Any]:
    """The container's DynamoDB client resource, closed on shutdown."""
    if not uses_dynamodb(settings):
        yield None
        return
    async with open_dynamodb_client(settings) as client:
        yield client


def dynamo_pix_payment_repository(client: Any, settings: Settings) -> Any:
    from finbank_adapters.aws.dynamo import DynamoPixPaymentRepository

    return DynamoPixPaymentRepository(client, settings.pix.table_name)


def dynamo_request_claims(client: Any, settings: Settings) -> Any:
    from finbank_adapters.aws.dynamo_claims import DynamoRequestClaims

    return DynamoRequestClaims(client, settings.pix.table_name)


def dynamo_charge_repository(client: Any, settings: Settings) -> Any:
    from finbank_adapters.aws.dynamo_pix_records import DynamoChargeRepository

    return DynamoChargeRepository(client, settings.pix.table_name)


def dynamo_account_limits_store(client: Any, settings: Settings) -> Any:
    from finbank_adapters.aws.dynamo_pix_records import DynamoAccountLimitsStore

    return DynamoAccountLimitsStore(client, settings.pix.table_name)


def dynamo_device_registry(client: Any, settings: Settings) -> Any:
    from finbank_adapters.aws.dynamo_pix_records import DynamoDeviceRegistry

    return DynamoDeviceRegistry(client, settings.pix.table_name)


def dynamo_key_directory(client: Any, settings: Settings, seed: list[Any]) -> Any:
    """The DICT on the PIX table, seeded with the network's own keys (``seed``)."""
    from finbank_adapters.aws.dynamo_pix_directory import DynamoKeyDirectory

    return DynamoKeyDirectory(client, settings.pix.table_name, seed=seed)


async def bootstrap_aws(settings: Settings) -> dict[str, Any]:
    """``finbank aws bootstrap``: create the PIX table (GSIs, stream, TTL) if it is missing.

    Idempotent. Returns what it found or did, for the command to print.
    """
    from finbank_adapters.aws.dynamo_schema import create_tables, stream_arn

    async with open_dynamodb_client(settings) as client:
        created = await create_tables(client, settings.pix.table_name)
        arn = await stream_arn(client, settings.pix.table_name)
    return {"table": settings.pix.table_name, "created": created, "stream_arn": arn}


def dynamo_effect_log(client: Any, settings: Settings, clock: Any, consumer: str) -> Any:
    """The applied-effects markers of one stream consumer, on the PIX table."""
    from finbank_adapters.aws.dynamo_effects import DynamoEffectLog
    from finbank_adapters.settings import SettingsError

    if client is None:
        raise SettingsError("the PIX stream handler needs FINBANK_PIX_BACKEND=dynamodb")
    return DynamoEffectLog(client, settings.pix.table_name, consumer, clock)
