"""MED and precautionary blocks: the MED store, the directory's MED messages, the use cases.

The store follows the PIX records (``FINBANK_PIX_BACKEND``): in memory,
PostgreSQL (migration ``0014``) or the PIX table in DynamoDB. The
directory's MED messages go to the sandbox directory with the sandbox
network (``FINBANK_PIX_NETWORK_BACKEND=sandbox``, the only network today);
returns go out through the PIX container's ``payment_network``. With the
sandbox, the bank we paid is simulated too (``peer_med_analyses``,
``peer_med_returns``): chosen here, so the facade never asks an adapter its type.
"""

from __future__ import annotations

from typing import Any

from dependency_injector import containers, providers

from finbank_adapters.containers.infrastructure import settings_field
from finbank_adapters.memory.med import InMemoryMedRepository
from finbank_adapters.sandbox.dict_med import SimulatedMedDirectory
from finbank_adapters.sandbox.spi import SimulatedSpi
from finbank_adapters.settings import Settings
from finbank_core.pix.med import use_cases as med
from finbank_core.pix.med.model import MedRules
from finbank_core.pix.med.ports import MedDirectory
from finbank_core.pix.ports import PaymentNetwork


def postgres_med_repository(pool: Any) -> Any:
    from finbank_adapters.postgres.pix_med import PostgresMedRepository

    return PostgresMedRepository(pool)


def dynamo_med_repository(client: Any, settings: Settings) -> Any:
    from finbank_adapters.aws.dynamo_med import DynamoMedRepository

    return DynamoMedRepository(client, settings.pix.table_name)


def sandbox_peer_analyses(directory: MedDirectory) -> SimulatedMedDirectory | None:
    """The sandbox directory, through which the bank we paid answers our reports.

    ``None`` when the directory is not the sandbox's (replaced with
    ``.override(...)``): nothing can answer for the other bank then.
    """
    return directory if isinstance(directory, SimulatedMedDirectory) else None


def sandbox_peer_returns(network: PaymentNetwork) -> SimulatedSpi | None:
    """The simulated SPI, through which the bank we paid returns the money.

    ``None`` when the payment network is not the sandbox's
    (``open_bank(payment_network=...)`` with a stub, say).
    """
    return network if isinstance(network, SimulatedSpi) else None


class PixMedContainer(containers.DeclarativeContainer):
    """The MED ports and use cases (``bank.pix.med``)."""

    infra = providers.DependenciesContainer()
    accounts = providers.DependenciesContainer()
    pix = providers.DependenciesContainer()

    med_repository = providers.Selector(
        providers.Callable(settings_field("backends.pix"), infra.settings),
        memory=providers.Singleton(InMemoryMedRepository),
        postgres=providers.Singleton(postgres_med_repository, pool=infra.postgres_pool),
        dynamodb=providers.Singleton(
            dynamo_med_repository, client=infra.dynamodb_client, settings=infra.settings
        ),
    )
    _pix_network = providers.Callable(settings_field("backends.pix_network"), infra.settings)
    med_directory = providers.Selector(
        _pix_network,
        sandbox=providers.Singleton(SimulatedMedDirectory),
    )
    #: sandbox only: the bank we paid answers our reports and returns the money
    #: (``bank.pix.med.simulate_peer_analysis`` / ``simulate_peer_return``); ``None``
    #: when the port it goes through was replaced by one that cannot
    peer_med_analyses: providers.Provider[SimulatedMedDirectory | None] = providers.Selector(
        _pix_network,
        sandbox=providers.Callable(sandbox_peer_analyses, directory=med_directory),
    )
    peer_med_returns: providers.Provider[SimulatedSpi | None] = providers.Selector(
        _pix_network,
        sandbox=providers.Callable(sandbox_peer_returns, network=pix.payment_network),
    )
    med_rules = providers.Singleton(MedRules)
    med_deps = providers.Factory(
        med.MedDeps,
        ispb=providers.Callable(settings_field("pix.ispb"), infra.settings),
        repository=med_repository,
        payments=pix.pix_payment_repository,
        accounts=accounts.account_repository,
        ledger=accounts.ledger,
        network=pix.payment_network,
        directory=med_directory,
        events=pix.pix_events,
        clock=infra.clock,
        ids=infra.ids,
        rules=med_rules,
    )
    place_precautionary_block = providers.Factory(med.PlacePrecautionaryBlock, deps=med_deps)
    release_precautionary_block = providers.Factory(med.ReleasePrecautionaryBlock, deps=med_deps)
    contest_pix_payment = providers.Factory(med.ContestPixPayment, deps=med_deps)
    receive_infraction_report = providers.Factory(med.ReceiveInfractionReport, deps=med_deps)
    analyse_infraction_report = providers.Factory(med.AnalyseInfractionReport, deps=med_deps)
    request_med_refund = providers.Factory(med.RequestMedRefund, deps=med_deps)
    execute_med_returns = providers.Factory(med.ExecuteMedReturns, deps=med_deps)
    #: we are the payer's bank: the receiving bank's answer and its returns
    receive_med_analysis = providers.Factory(med.ReceiveMedAnalysis, deps=med_deps)
    receive_med_return = providers.Factory(med.ReceiveMedReturn, deps=med_deps)
    get_med_view = providers.Factory(med.GetMedView, deps=med_deps)
    sweep_med = providers.Factory(med.SweepMed, deps=med_deps)
