"""finbank for embedders: ``open_bank()`` and the typed ``Bank`` facade.

::

    from finbank import open_bank

    async with open_bank(profile="memory") as bank:
        account = await bank.accounts.open(...)

See :mod:`finbank.bank` for the facade and how to pass fakes.
"""

from finbank.bank import AccountsFacade, AuthFacade, Bank, PixFacade, configure, open_bank
from finbank_adapters.settings import Profile, Settings, SettingsError

__all__ = [
    "AccountsFacade",
    "AuthFacade",
    "Bank",
    "PixFacade",
    "Profile",
    "Settings",
    "SettingsError",
    "configure",
    "open_bank",
]
