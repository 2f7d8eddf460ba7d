"""The composition root: profiles, per-port overrides, provider overrides."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dependency_injector import providers

from finbank_adapters.containers import build_container, close_container, open_container, resolve
from finbank_adapters.memory import FakeClock, InMemoryLedger
from finbank_adapters.settings import (
    CognitoOptions,
    JwtOptions,
    KafkaOptions,
    PostgresOptions,
    Profile,
    Settings,
    SettingsError,
)
from finbank_core.accounts.use_cases import BankAccounts, OpenAccount, OpenAccountCommand


def test_memory_is_the_default_profile() -> None:
    settings = Settings.from_env({})
    assert settings.profile is Profile.MEMORY
    assert (settings.backends.ledger, settings.backends.identity) == ("memory", "local")
    assert settings.pix.sandbox


def test_a_per_port_variable_overrides_the_profile() -> None:
    settings = Settings.from_env({"FINBANK_PROFILE": "local", "FINBANK_LEDGER_BACKEND": "memory"})
    assert settings.backends.ledger == "memory"
    assert settings.backends.accounts == "postgres"
    assert not settings.pix.sandbox


def test_bad_settings_are_refused_with_a_clear_message() -> None:
    with pytest.raises(SettingsError, match="FINBANK_PROFILE"):
        Settings.from_env({"FINBANK_PROFILE": "prod"})
    with pytest.raises(SettingsError, match="invalid setting"):
        Settings.from_env({"FINBANK_POSTGRES_POOL_MAX": "many"})


def test_jwt_secret_is_required_outside_the_memory_profile() -> None:
    with pytest.raises(SettingsError, match="FINBANK_JWT_SECRET"):
        Settings.from_env({"FINBANK_PROFILE": "local"}).jwt_secret_bytes()


async def test_providers_can_be_overridden_in_tests() -> None:
    container = build_container(Settings())
    fake = FakeClock(datetime(2026, 7, 1, 9, tzinfo=UTC))
    container.infra.clock.override(providers.Object(fake))
    await open_container(container)
    try:
        open_account: OpenAccount = await resolve(container.accounts.open_account())
        account = await open_account(OpenAccountCommand(owner_id="o", holder_name="Olga"))
        assert account.created_at == fake.now()
        ledger = await resolve(container.accounts.ledger())
        assert isinstance(ledger, InMemoryLedger)
        assert await ledger.lookup_accounts([BankAccounts.CASH])  # opened by open_container
    finally:
        await close_container(container)


async def test_each_container_has_its_own_state() -> None:
    one, two = build_container(Settings()), build_container(Settings())
    assert await resolve(one.accounts.ledger()) is await resolve(one.accounts.ledger())
    assert await resolve(one.accounts.ledger()) is not await resolve(two.accounts.ledger())


def test_settings_never_show_secrets_in_their_repr() -> None:
    settings = Settings(
        jwt=JwtOptions(secret="s3cr3t-signing-key-0123456789abcdef"),
        cognito=CognitoOptions(client_secret="client-secret-value"),
        kafka=KafkaOptions(sasl_password="kafka-password"),
        postgres=PostgresOptions(dsn="postgresql://app:db-password@db:5432/finbank"),
    )
    text = repr(settings)
    for secret in ("s3cr3t-signing-key", "client-secret-value", "kafka-password", "db-password"):
        assert secret not in text
    assert "jwt=JwtOptions(secret='***'" in text
    assert "ispb='99999999'" in text


async def test_the_dynamodb_pix_backend_keeps_every_pix_store_in_dynamodb() -> None:
    from finbank_adapters.aws.dynamo import DynamoPixPaymentRepository
    from finbank_adapters.aws.dynamo_pix_directory import DynamoKeyDirectory
    from finbank_adapters.aws.dynamo_pix_records import (
        DynamoAccountLimitsStore,
        DynamoChargeRepository,
        DynamoDeviceRegistry,
    )

    container = build_container(Settings.from_env({"FINBANK_PIX_BACKEND": "dynamodb"}))
    client = object()  # never called: the stores are only built here
    container.infra.dynamodb_client.override(providers.Object(client))
    stores = {
        DynamoPixPaymentRepository: await resolve(container.pix.pix_payment_repository()),
        DynamoKeyDirectory: await resolve(container.pix.key_directory()),
        DynamoChargeRepository: await resolve(container.pix.charge_repository()),
        DynamoAccountLimitsStore: await resolve(container.pix.account_limits_store()),
        DynamoDeviceRegistry: await resolve(container.pix.device_registry()),
    }
    for kind, store in stores.items():
        assert isinstance(store, kind), (kind, type(store))
