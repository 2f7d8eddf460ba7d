"""``open_bank()`` and the typed facade an embedding application uses.

::

    async with open_bank(profile="memory") as bank:
        account = await bank.accounts.open(OpenAccountCommand(owner_id="u1", holder_name="Ana"))
        await bank.accounts.deposit(MoveCashCommand(...))
        result = await bank.pix.send(SendPixCommand(...))

``open_bank`` builds the bank's containers
(:class:`~finbank_adapters.containers.BankContainer`) on the settings, opens
their connections, makes sure the bank's own ledger accounts exist, and
closes everything on the way out. The facade's methods take the core's
commands and queries and return its results; each use case is built from the
container once and built again when a provider under it is overridden (or its
override reset), so an override made on ``bank.container`` (advanced) is seen
by the next call (:class:`finbank._provided.UseCases`).

Fakes: ``open_bank(overrides=Overrides(clock=FakeClock(...), ledger=...))``
(or the ``clock=``, ``ids=``, ``payment_network=`` shortcuts) replaces those
ports before anything is built, so every use case, adapter and worker of
that bank sees them.

A new facade (``bank.automatic``, ``bank.med``...) is a class in its own
module of this package taking the :class:`BankContainer`, and one line in
:meth:`Bank.__init__`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from finbank._provided import containers_changed
from finbank.accounts import AccountsFacade
from finbank.auth import AuthFacade
from finbank.overrides import Overrides, apply_overrides
from finbank.pix import PixFacade
from finbank.reconciliation import ReconciliationFacade
from finbank_adapters.containers import (
    BankContainer,
    build_container,
    close_container,
    open_container,
)
from finbank_adapters.settings import Profile, Settings, SettingsError
from finbank_core.pix.ports import PaymentNetwork
from finbank_core.shared.clock import Clock
from finbank_core.shared.ids import IdGenerator

__all__ = ["Bank", "configure", "open_bank", "opened"]


class Bank:
    """The bank, opened: one facade per context, and the container underneath."""

    def __init__(self, container: BankContainer) -> None:
        self.container = container
        self.accounts = AccountsFacade(container)
        self.pix = PixFacade(container)
        self.auth = AuthFacade(container)
        self.reconciliation = ReconciliationFacade(container)

    @property
    def settings(self) -> Settings:
        """The settings the bank runs on."""
        return self.container.infra().settings()

    @property
    def clock(self) -> Clock:
        """The clock every use case reads (a ``FakeClock`` if one was passed)."""
        clock: Clock = self.container.infra().clock()
        return clock

    @property
    def ids(self) -> IdGenerator:
        """The id generator every use case uses."""
        ids: IdGenerator = self.container.infra().ids()
        return ids


def _settings_for(settings: Settings | None, profile: Profile | str | None) -> Settings | None:
    if settings is not None and profile is not None:
        raise SettingsError("pass settings or a profile to open_bank, not both")
    if profile is not None:
        return Settings.from_env({"FINBANK_PROFILE": str(profile)})
    return settings


def configure(
    container: BankContainer,
    overrides: Overrides | None = None,
    *,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    payment_network: PaymentNetwork | None = None,
) -> None:
    """Replace ports of ``container``: those ``overrides`` names, and the three shortcuts.

    A shortcut and the same field of ``overrides`` together are refused
    (``SettingsError``): one of them would be silently ignored.
    """
    merged = (overrides or Overrides()).with_shortcuts(
        clock=clock, ids=ids, payment_network=payment_network
    )
    apply_overrides(container, merged)


@asynccontextmanager
async def open_bank(
    settings: Settings | None = None,
    *,
    profile: Profile | str | None = None,
    overrides: Overrides | None = None,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    payment_network: PaymentNetwork | None = None,
) -> AsyncIterator[Bank]:
    """Open the bank on ``settings`` (or a ``profile``'s presets, or ``FINBANK_*``).

    With neither ``settings`` nor ``profile``, the settings are read from the
    environment (``Settings.from_env()``), like the ``finbank`` command does.
    ``overrides`` replaces ports with your own adapters or fakes (see
    :class:`~finbank.overrides.Overrides`); ``clock``, ``ids`` and
    ``payment_network`` are shortcuts for its three most used fields.
    Connections are opened on entry and closed on exit.
    """
    container = build_container(_settings_for(settings, profile))
    configure(container, overrides, clock=clock, ids=ids, payment_network=payment_network)
    async with opened(container) as bank:
        yield bank


@asynccontextmanager
async def opened(container: BankContainer) -> AsyncIterator[Bank]:
    """Open an already-built (and perhaps overridden) container as a :class:`Bank`.

    What ``open_bank`` does after building the container; the HTTP app's
    lifespan uses it on the container it was given.
    """
    try:
        await open_container(container)
        containers_changed()  # new resources: no use case built before is reused
        yield Bank(container)
    finally:
        await close_container(container)
        containers_changed()
