"""The root container: one sub-container per context, composed.

``BankContainer`` follows dependency-injector's multiple-containers layout:
each context's container declares what it needs from the others as a
``DependenciesContainer`` and the root passes them in. Override any provider
through its context, e.g. ``container.infra.clock.override(providers.Object(fake))``
or ``container.pix.payment_network.override(providers.Object(network))``; every
use case built afterwards sees the override.
"""

from __future__ import annotations

from dependency_injector import containers, providers

from finbank_adapters.containers.accounts import AccountsContainer
from finbank_adapters.containers.auth import AuthContainer
from finbank_adapters.containers.events import EventsContainer, WorkersContainer
from finbank_adapters.containers.infrastructure import InfrastructureContainer
from finbank_adapters.containers.pix import PixContainer
from finbank_adapters.containers.pix_automatic import PixAutomaticContainer
from finbank_adapters.containers.pix_claims import PixClaimsContainer
from finbank_adapters.containers.pix_med import PixMedContainer
from finbank_adapters.containers.reconciliation import ReconciliationContainer


class BankContainer(containers.DeclarativeContainer):
    """Every context of the bank, wired: the only place adapters are chosen."""

    infra = providers.Container(InfrastructureContainer)
    events = providers.Container(EventsContainer, infra=infra)
    accounts = providers.Container(AccountsContainer, infra=infra, events=events)
    auth = providers.Container(AuthContainer, infra=infra)
    pix = providers.Container(PixContainer, infra=infra, events=events, accounts=accounts)
    pix_med = providers.Container(PixMedContainer, infra=infra, accounts=accounts, pix=pix)
    pix_automatic = providers.Container(
        PixAutomaticContainer, infra=infra, accounts=accounts, pix=pix
    )
    pix_claims = providers.Container(PixClaimsContainer, infra=infra, accounts=accounts, pix=pix)
    reconciliation = providers.Container(
        ReconciliationContainer, infra=infra, events=events, accounts=accounts, pix=pix
    )
    workers = providers.Container(
        WorkersContainer, events=events, pix=pix, pix_automatic=pix_automatic
    )
