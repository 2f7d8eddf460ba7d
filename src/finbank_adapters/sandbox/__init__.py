"""The sandbox payment network: a simulated SPI with simulated peer institutions.

``FINBANK_PIX_NETWORK_BACKEND=sandbox`` (the only network today) puts
:class:`SimulatedSpi` behind the ``PaymentNetwork`` port; its peer bank,
that bank's keys and the network's rules are in :mod:`.peer`.
"""

from finbank_adapters.sandbox.peer import (
    PEER_ACCOUNT_NUMBER,
    PEER_CLOSED_KEY,
    PEER_KEY_EMAIL,
    PEER_KEY_EVP,
    PEER_NAME,
    PEER_TIMEOUT_AMOUNT,
    institution_keys,
    sandbox_directory_seed,
    sandbox_peer,
    simulated_spi,
)
from finbank_adapters.sandbox.spi import (
    RemoteAccount,
    SimulatedInstitution,
    SimulatedSpi,
    SpiRule,
)

__all__ = [
    "PEER_ACCOUNT_NUMBER",
    "PEER_CLOSED_KEY",
    "PEER_KEY_EMAIL",
    "PEER_KEY_EVP",
    "PEER_NAME",
    "PEER_TIMEOUT_AMOUNT",
    "RemoteAccount",
    "SimulatedInstitution",
    "SimulatedSpi",
    "SpiRule",
    "institution_keys",
    "sandbox_directory_seed",
    "sandbox_peer",
    "simulated_spi",
]
