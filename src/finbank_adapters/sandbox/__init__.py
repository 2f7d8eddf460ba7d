"""The sandbox payment network: a simulated SPI with simulated peer institutions.

``FINBANK_PIX_NETWORK_BACKEND=sandbox`` (the only network today) puts
:class:`SimulatedSpi` behind the ``PaymentNetwork`` port; its peer bank is
described in :mod:`finbank_adapters.pix_wiring`.
"""

from finbank_adapters.sandbox.spi import (
    RemoteAccount,
    SimulatedInstitution,
    SimulatedSpi,
    SpiRule,
)

__all__ = ["RemoteAccount", "SimulatedInstitution", "SimulatedSpi", "SpiRule"]
