"""PIX key claims and key look-up protection, limits and devices views: stores and use cases.

The claims store follows ``FINBANK_PIX_BACKEND`` (memory, PostgreSQL
migration ``0015``, DynamoDB on the PIX table), with the key directory of
the PIX container (on PostgreSQL, the same tables through
``PostgresClaimableKeyDirectory``, which adds the claim's key move). The
look-up buckets follow ``FINBANK_PIX_LOOKUP_BACKEND`` (memory, Redis, or
PostgreSQL's ``pix_lookup_take`` of migration ``0015``). The other
institutions' side of a claim is the sandbox's ``SimulatedDictClaims``.
"""

from __future__ import annotations

from typing import Any

from dependency_injector import containers, providers

from finbank_adapters.containers.infrastructure import settings_field
from finbank_adapters.memory.pix_claims import InMemoryLookupBuckets
from finbank_adapters.sandbox.claims import SimulatedDictClaims
from finbank_adapters.settings import Settings
from finbank_core.pix.claims import use_cases as claims
from finbank_core.pix.claims.model import ClaimSettings
from finbank_core.pix.ports import PaymentNetwork
from finbank_core.pix.use_cases import devices, limit_changes


def postgres_claim_store(pool: Any, settings: Settings) -> Any:
    """Claims and their events in one transaction when the outbox is in the same database."""
    from finbank_adapters.postgres.pix_claims import PostgresKeyClaimStore

    return PostgresKeyClaimStore(pool, outbox=settings.backends.events == "postgres")


def postgres_claims_directory(pool: Any, seed: list[Any]) -> Any:
    from finbank_adapters.postgres.pix_claims import PostgresClaimableKeyDirectory

    return PostgresClaimableKeyDirectory(pool, seed=seed)


def dynamo_claim_store(client: Any, settings: Settings) -> Any:
    from finbank_adapters.aws.dynamo_key_claims import DynamoKeyClaimStore

    return DynamoKeyClaimStore(client, settings.pix.table_name)


def redis_lookup_buckets(client: Any, settings: Settings) -> Any:
    from finbank_adapters.redis.lookup_buckets import RedisLookupBuckets

    return RedisLookupBuckets(client, settings.redis.key_prefix)


def postgres_lookup_buckets(pool: Any) -> Any:
    from finbank_adapters.postgres.pix_claims import PostgresLookupBuckets

    return PostgresLookupBuckets(pool)


def claims_network(network: PaymentNetwork) -> SimulatedDictClaims:
    """The sandbox's claim answers, over the simulated SPI's institutions."""
    from finbank_adapters.sandbox.spi import SimulatedSpi

    return SimulatedDictClaims(network if isinstance(network, SimulatedSpi) else None)


class PixClaimsContainer(containers.DeclarativeContainer):
    """Key claims and key look-ups (see the module docstring)."""

    infra = providers.DependenciesContainer()
    accounts = providers.DependenciesContainer()
    pix = providers.DependenciesContainer()

    _pix_backend = providers.Callable(settings_field("backends.pix"), infra.settings)

    #: the PIX container's (deleting a key checks it too)
    claim_store = pix.key_claim_store
    #: the PIX container's directory, which can also move a key for a claim
    claims_directory = providers.Selector(
        _pix_backend,
        memory=pix.key_directory,
        postgres=providers.Singleton(
            postgres_claims_directory, pool=infra.postgres_pool, seed=pix.directory_seed
        ),
        dynamodb=pix.key_directory,
    )
    lookup_buckets = providers.Selector(
        providers.Callable(settings_field("backends.pix_lookup"), infra.settings),
        memory=providers.Singleton(InMemoryLookupBuckets),
        redis=providers.Singleton(
            redis_lookup_buckets, client=infra.redis_client, settings=infra.settings
        ),
        postgres=providers.Singleton(postgres_lookup_buckets, pool=infra.postgres_pool),
    )
    claims_network = providers.Singleton(claims_network, network=pix.payment_network)
    claim_settings = providers.Object(ClaimSettings())

    claim_steps = providers.Factory(
        claims.ClaimSteps,
        ispb=pix.ispb,
        store=claim_store,
        directory=claims_directory,
        network=claims_network,
        events=pix.pix_events,
        clock=infra.clock,
        settings=claim_settings,
        max_keys_individual=providers.Callable(
            settings_field("pix.max_keys_individual"), infra.settings
        ),
        max_keys_company=providers.Callable(settings_field("pix.max_keys_company"), infra.settings),
    )
    open_key_claim = providers.Factory(
        claims.OpenKeyClaim, steps=claim_steps, accounts=accounts.account_repository, ids=infra.ids
    )
    receive_key_claim = providers.Factory(claims.ReceiveKeyClaim, steps=claim_steps)
    confirm_key_claim = providers.Factory(claims.ConfirmKeyClaim, steps=claim_steps)
    cancel_key_claim = providers.Factory(claims.CancelKeyClaim, steps=claim_steps)
    complete_key_claim = providers.Factory(claims.CompleteKeyClaim, steps=claim_steps)
    get_key_claim = providers.Factory(claims.GetKeyClaim, steps=claim_steps)
    list_key_claims = providers.Factory(claims.ListKeyClaims, steps=claim_steps)
    lookup_pix_key = providers.Factory(
        claims.LookupPixKey,
        accounts=accounts.account_repository,
        directory=pix.key_directory,
        buckets=lookup_buckets,
        clock=infra.clock,
    )

    # -- limits and devices (routes of the same issue) --------------------------------------

    get_pix_limits = providers.Factory(
        limit_changes.GetPixLimits,
        accounts=accounts.account_repository,
        clock=infra.clock,
        policy=pix.limit_policy,
        store=pix.account_limits_store,
    )
    cancel_pix_limit_raise = providers.Factory(
        limit_changes.CancelPixLimitRaise,
        accounts=accounts.account_repository,
        clock=infra.clock,
        policy=pix.limit_policy,
        store=pix.account_limits_store,
    )
    list_pix_devices = providers.Factory(
        devices.ListPixDevices,
        devices=pix.device_registry,
        policy=pix.limit_policy,
        clock=infra.clock,
    )
