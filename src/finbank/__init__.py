"""finbank for embedders: ``open_bank()`` and the typed ``Bank`` facade.

::

    from finbank import open_bank

    async with open_bank(profile="memory") as bank:
        account = await bank.accounts.open(...)

See :mod:`finbank.bank` for the facade and :mod:`finbank.overrides` for
passing your own adapters and fakes.
"""

from finbank._provided import provided
from finbank.accounts import AccountsFacade
from finbank.auth import AuthFacade
from finbank.bank import Bank, configure, open_bank, opened
from finbank.overrides import Overrides
from finbank.pix import PixFacade
from finbank.reconciliation import ReconciliationFacade
from finbank_adapters.settings import Profile, Settings, SettingsError

__all__ = [
    "AccountsFacade",
    "AuthFacade",
    "Bank",
    "Overrides",
    "PixFacade",
    "Profile",
    "ReconciliationFacade",
    "Settings",
    "SettingsError",
    "configure",
    "open_bank",
    "opened",
    "provided",
]
