"""PIX: the payment network, the DICT, payment records, charges, limits and the PIX use cases.

``pix_backend=postgres`` (the local profile) puts every PIX store in
PostgreSQL (migration ``0012``, docs/postgres.md); ``pix_backend=dynamodb``
(the aws profile) in one DynamoDB table (docs/pix-aws.md): payment records,
the key directory, charges, account limits, devices and in-flight request
claims. The payment network is a
selector like every other port; ``sandbox`` (the simulated SPI with one peer
bank) is the only network today.
"""

from __future__ import annotations

from typing import Any

from dependency_injector import containers, providers

from finbank_adapters import aws_wiring, pix_wiring, postgres_wiring, sandbox
from finbank_adapters.containers import pix_claims as claims_wiring
from finbank_adapters.containers.infrastructure import settings_field
from finbank_adapters.memory.claims import InMemoryRequestClaims
from finbank_adapters.memory.pix_claims import InMemoryKeyClaimStore
from finbank_adapters.pix_cursor import pix_cursor_key
from finbank_adapters.settings.backends import DatabaseBackend, PixBackend
from finbank_core.pix import use_cases as pix
from finbank_core.pix.ledger_steps import PixEvents
from finbank_core.pix.ports import AnnouncedPaymentRecorder, KeyDirectory, PaymentNetwork


def announced_payment_recorder(settings: Any, payments: Any) -> AnnouncedPaymentRecorder | None:
    """The payment store itself when it and the event outbox are both PostgreSQL (one
    database, one pool): ``SendPix`` then writes a record and its event in one statement, and
    ``SettlePixPayment`` a transition and its outcome events."""
    backends = settings.backends
    if backends.pix == PixBackend.POSTGRES and backends.events == DatabaseBackend.POSTGRES:
        recorder: AnnouncedPaymentRecorder = payments
        return recorder
    return None


class PixContainer(containers.DeclarativeContainer):
    """The PIX ports (memory or DynamoDB), the network, and the PIX use cases."""

    infra = providers.DependenciesContainer()
    events = providers.DependenciesContainer()
    accounts = providers.DependenciesContainer()

    _pix_backend = providers.Callable(settings_field("backends.pix"), infra.settings)

    payment_network: providers.Provider[PaymentNetwork] = providers.Selector(
        providers.Callable(settings_field("backends.pix_network"), infra.settings),
        sandbox=providers.Singleton(
            sandbox.simulated_spi, settings=infra.settings, clock=infra.clock
        ),
    )
    pix_payment_repository = providers.Selector(
        _pix_backend,
        memory=providers.Singleton(pix_wiring.InMemoryPixPaymentRepository),
        postgres=providers.Singleton(
            postgres_wiring.postgres_pix_payment_repository, pool=infra.postgres_pool
        ),
        dynamodb=providers.Singleton(
            aws_wiring.dynamo_pix_payment_repository,
            client=infra.dynamodb_client,
            settings=infra.settings,
        ),
    )
    charge_repository = providers.Selector(
        _pix_backend,
        memory=providers.Singleton(pix_wiring.InMemoryChargeRepository),
        postgres=providers.Singleton(
            postgres_wiring.postgres_charge_repository, pool=infra.postgres_pool
        ),
        dynamodb=providers.Singleton(
            aws_wiring.dynamo_charge_repository,
            client=infra.dynamodb_client,
            settings=infra.settings,
        ),
    )
    account_limits_store = providers.Selector(
        _pix_backend,
        memory=providers.Singleton(pix_wiring.InMemoryAccountLimitsStore),
        postgres=providers.Singleton(
            postgres_wiring.postgres_account_limits_store, pool=infra.postgres_pool
        ),
        dynamodb=providers.Singleton(
            aws_wiring.dynamo_account_limits_store,
            client=infra.dynamodb_client,
            settings=infra.settings,
        ),
    )
    device_registry = providers.Selector(
        _pix_backend,
        memory=providers.Singleton(pix_wiring.InMemoryDeviceRegistry),
        postgres=providers.Singleton(
            postgres_wiring.postgres_device_registry, pool=infra.postgres_pool
        ),
        dynamodb=providers.Singleton(
            aws_wiring.dynamo_device_registry,
            client=infra.dynamodb_client,
            settings=infra.settings,
        ),
    )
    #: in-flight claims of idempotent PIX requests (a replay meanwhile gets 409 + Retry-After)
    request_claims = providers.Selector(
        _pix_backend,
        memory=providers.Singleton(InMemoryRequestClaims),
        postgres=providers.Singleton(
            postgres_wiring.postgres_request_claims, pool=infra.postgres_pool
        ),
        dynamodb=providers.Singleton(
            aws_wiring.dynamo_request_claims,
            client=infra.dynamodb_client,
            settings=infra.settings,
        ),
    )
    #: the marker table of the DynamoDB stream Lambda (``aws.lambda_handlers``); call with
    #: ``consumer=<its name>``
    effect_log = providers.Factory(
        aws_wiring.dynamo_effect_log,
        client=infra.dynamodb_client,
        settings=infra.settings,
        clock=infra.clock,
    )
    #: the network's own keys, preloaded into the DICT (the sandbox peer bank's)
    directory_seed = providers.Selector(
        providers.Callable(settings_field("backends.pix_network"), infra.settings),
        sandbox=providers.Callable(sandbox.sandbox_directory_seed, network=payment_network),
    )
    key_directory: providers.Provider[KeyDirectory] = providers.Selector(
        _pix_backend,
        memory=providers.Singleton(pix_wiring.memory_key_directory, seed=directory_seed),
        postgres=providers.Singleton(
            postgres_wiring.postgres_key_directory, pool=infra.postgres_pool, seed=directory_seed
        ),
        dynamodb=providers.Singleton(
            aws_wiring.dynamo_key_directory,
            client=infra.dynamodb_client,
            settings=infra.settings,
            seed=directory_seed,
        ),
    )
    pix_location_base_url = providers.Callable(
        settings_field("pix.location_base_url"), infra.settings
    )
    charge_resolver = providers.Singleton(
        pix_wiring.LocalChargeResolver,
        charges=charge_repository,
        location_base_url=pix_location_base_url,
    )
    qr_renderer = providers.Singleton(pix_wiring.qr_renderer)
    limit_policy = providers.Singleton(pix_wiring.limit_policy, settings=infra.settings)
    ispb = providers.Callable(settings_field("pix.ispb"), infra.settings)
    # The use cases and their helpers hold no request state: each is built once per
    # container (Singleton) rather than per request, on the hot paths (send, settle,
    # read) and the helpers they share.
    #: reserve / post / void / credit in the ledger, each safe to repeat
    pix_ledger_steps = providers.Singleton(
        pix_wiring.pix_ledger_steps, settings=infra.settings, ledger=accounts.ledger
    )
    pix_events = providers.Singleton(
        PixEvents, publisher=events.publisher, clock=infra.clock, ids=infra.ids
    )
    pix_limiter = providers.Singleton(
        pix.PixLimiter,
        policy=limit_policy,
        payments=pix_payment_repository,
        limits=account_limits_store,
        devices=device_registry,
    )
    register_pix_key = providers.Factory(
        pix.RegisterPixKey,
        ispb=ispb,
        accounts=accounts.account_repository,
        directory=key_directory,
        events=pix_events,
        clock=infra.clock,
        ids=infra.ids,
        max_keys_individual=providers.Callable(
            settings_field("pix.max_keys_individual"), infra.settings
        ),
        max_keys_company=providers.Callable(settings_field("pix.max_keys_company"), infra.settings),
    )
    #: key claims (docs/pix-claims.md): here because deleting a key checks its active claim
    key_claim_store = providers.Selector(
        _pix_backend,
        memory=providers.Singleton(InMemoryKeyClaimStore),
        postgres=providers.Singleton(
            claims_wiring.postgres_claim_store, pool=infra.postgres_pool, settings=infra.settings
        ),
        dynamodb=providers.Singleton(
            claims_wiring.dynamo_claim_store, client=infra.dynamodb_client, settings=infra.settings
        ),
    )
    delete_pix_key = providers.Factory(
        pix.DeletePixKey,
        directory=key_directory,
        events=pix_events,
        accounts=accounts.account_repository,
        claims=key_claim_store,
    )
    list_pix_keys = providers.Factory(
        pix.ListPixKeys, accounts=accounts.account_repository, directory=key_directory
    )
    settle_pix_payment = providers.Singleton(
        pix.SettlePixPayment,
        payments=pix_payment_repository,
        steps=pix_ledger_steps,
        events=pix_events,
        clock=infra.clock,
        network=payment_network,
        charges=charge_repository,
        limits=account_limits_store,
        recorder=providers.Callable(
            announced_payment_recorder, settings=infra.settings, payments=pix_payment_repository
        ),
    )
    send_pix = providers.Singleton(
        pix.SendPix,
        ispb=ispb,
        accounts=accounts.account_repository,
        payments=pix_payment_repository,
        steps=pix_ledger_steps,
        events=pix_events,
        clock=infra.clock,
        ids=infra.ids,
        directory=key_directory,
        resolver=charge_resolver,
        charges=charge_repository,
        limiter=pix_limiter,
        settle_inline=providers.Callable(
            pix_wiring.settle_inline, settings=infra.settings, settle=settle_pix_payment
        ),
        claims=request_claims,
        recorder=providers.Callable(
            announced_payment_recorder, settings=infra.settings, payments=pix_payment_repository
        ),
    )
    # pix_inline_settlement (memory profile): refunds settle and incoming payments are
    # credited in the request; otherwise `finbank worker pix-settlement` does it from events.
    pix_inline_settlement = providers.Callable(
        settings_field("pix.inline_settlement"), infra.settings
    )
    receive_pix = providers.Factory(
        pix.ReceivePix,
        ispb=ispb,
        accounts=accounts.account_repository,
        payments=pix_payment_repository,
        steps=pix_ledger_steps,
        events=pix_events,
        clock=infra.clock,
        directory=key_directory,
        charges=charge_repository,
    )
    accept_incoming_pix = providers.Factory(
        pix.AcceptIncomingPix,
        ispb=ispb,
        accounts=accounts.account_repository,
        payments=pix_payment_repository,
        events=pix_events,
        directory=key_directory,
        receive=receive_pix,
        credit_inline=pix_inline_settlement,
    )
    get_pix_payment = providers.Singleton(pix.GetPixPayment, payments=pix_payment_repository)
    list_pix_payments = providers.Singleton(
        pix.ListPixPayments,
        accounts=accounts.account_repository,
        payments=pix_payment_repository,
        cursor_key=providers.Callable(pix_cursor_key, settings=infra.settings),
    )
    settle_pix_refund = providers.Factory(
        pix.SettlePixRefund,
        payments=pix_payment_repository,
        steps=pix_ledger_steps,
        events=pix_events,
        clock=infra.clock,
        network=payment_network,
    )
    refund_pix = providers.Factory(
        pix.RefundPix,
        ispb=ispb,
        accounts=accounts.account_repository,
        payments=pix_payment_repository,
        steps=pix_ledger_steps,
        events=pix_events,
        clock=infra.clock,
        ids=infra.ids,
        network=payment_network,
        window_days=providers.Callable(settings_field("pix.refund_window_days"), infra.settings),
        settle_inline=pix_inline_settlement,
        claims=request_claims,
    )
    set_pix_limits = providers.Factory(
        pix.SetPixLimits,
        accounts=accounts.account_repository,
        clock=infra.clock,
        policy=limit_policy,
        store=account_limits_store,
    )
    create_charge = providers.Factory(
        pix.CreateCharge,
        accounts=accounts.account_repository,
        charges=charge_repository,
        directory=key_directory,
        events=pix_events,
        clock=infra.clock,
        ids=infra.ids,
        location_base_url=pix_location_base_url,
        merchant_city=providers.Callable(settings_field("pix.merchant_city"), infra.settings),
        default_expiry_seconds=providers.Callable(
            settings_field("pix.charge_expiry_seconds"), infra.settings
        ),
    )
    get_charge = providers.Factory(
        pix.GetCharge,
        charges=charge_repository,
        location_base_url=pix_location_base_url,
    )
    remove_charge = providers.Factory(
        pix.RemoveCharge,
        charges=charge_repository,
        location_base_url=pix_location_base_url,
    )
    render_charge_qr = providers.Factory(
        pix.RenderChargeQr,
        charges=charge_repository,
        renderer=qr_renderer,
        location_base_url=pix_location_base_url,
    )
    simulate_incoming_pix = providers.Factory(
        pix.SimulateIncomingPix,
        accounts=accounts.account_repository,
        originator=payment_network,
        accept=accept_incoming_pix,
        peer_ispb=providers.Callable(settings_field("pix.sandbox_peer_ispb"), infra.settings),
        peer_account_number=sandbox.PEER_ACCOUNT_NUMBER,
    )
