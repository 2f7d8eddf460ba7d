"""Which PIX backend and settlement mode each profile picks, and what the container builds."""

from __future__ import annotations

import pytest

from finbank_adapters.aws.dynamo import DynamoPixPaymentRepository
from finbank_adapters.containers import build_container, close_container, resolve
from finbank_adapters.memory.pix import InMemoryPixPaymentRepository
from finbank_adapters.settings import AwsOptions, Backends, PixBackend, Settings


@pytest.mark.parametrize(
    ("profile", "backend", "inline"),
    [("memory", "memory", True), ("local", "postgres", False), ("aws", "dynamodb", False)],
)
def test_each_profile_has_its_pix_backend_and_settlement_mode(
    profile: str, backend: str, inline: bool
) -> None:
    settings = Settings.from_env({"FINBANK_PROFILE": profile})
    assert (settings.backends.pix, settings.pix.inline_settlement) == (backend, inline)
    assert settings.pix.table_name == "finbank-pix"


def test_per_port_variables_override_the_profile() -> None:
    settings = Settings.from_env(
        {
            "FINBANK_PROFILE": "local",
            "FINBANK_PIX_BACKEND": "memory",
            "FINBANK_PIX_INLINE_SETTLEMENT": "true",
            "FINBANK_PIX_TABLE_NAME": "other",
        }
    )
    assert (settings.backends.pix, settings.pix.inline_settlement) == ("memory", True)
    assert settings.pix.table_name == "other"


async def test_the_container_builds_the_dynamodb_repository_without_connecting() -> None:
    # aioboto3 clients connect on their first request: nothing listens on this port
    container = build_container(
        Settings(
            backends=Backends(pix=PixBackend.DYNAMODB),
            aws=AwsOptions(endpoint_url="http://127.0.0.1:9"),
        )
    )
    try:
        repository = await resolve(container.pix.pix_payment_repository())
        assert isinstance(repository, DynamoPixPaymentRepository)
    finally:
        await close_container(container)
    memory = build_container(Settings())
    try:
        assert isinstance(memory.pix.pix_payment_repository(), InMemoryPixPaymentRepository)
        assert await resolve(memory.infra.dynamodb_client()) is None  # no client on memory
    finally:
        await close_container(memory)


@pytest.mark.services
async def test_the_postgres_pix_backend_keeps_every_pix_store_in_postgresql() -> None:
    from tests.postgres_support import require_postgres

    from finbank_adapters.postgres.pix_directory import PostgresKeyDirectory
    from finbank_adapters.postgres.pix_payments import PostgresPixPaymentRepository
    from finbank_adapters.postgres.pix_records import (
        PostgresAccountLimitsStore,
        PostgresChargeRepository,
        PostgresDeviceRegistry,
    )
    from finbank_adapters.postgres.pix_request_claims import PostgresRequestClaims

    settings = Settings.from_env(
        {"FINBANK_PIX_BACKEND": "postgres", "FINBANK_POSTGRES_DSN": require_postgres()}
    )
    container = build_container(settings)
    try:
        pix = container.pix
        expected = {
            "pix_payment_repository": PostgresPixPaymentRepository,
            "key_directory": PostgresKeyDirectory,
            "charge_repository": PostgresChargeRepository,
            "account_limits_store": PostgresAccountLimitsStore,
            "device_registry": PostgresDeviceRegistry,
            "request_claims": PostgresRequestClaims,
        }
        for name, kind in expected.items():
            store = await resolve(getattr(pix, name)())
            assert isinstance(store, kind), name
        assert await resolve(container.infra.dynamodb_client()) is None  # no AWS client
    finally:
        await close_container(container)
