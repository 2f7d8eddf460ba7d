"""The sandbox network's configuration: its peer bank, that bank's keys, its rules.

``FINBANK_PIX_NETWORK_BACKEND=sandbox`` puts :class:`SimulatedSpi` behind the
``PaymentNetwork`` port with one peer bank, "Banco Simulado" (ISPB
``settings.pix.sandbox_peer_ispb``), whose keys are preloaded into the
directory:

* ``carla@bancosimulado.example`` and EVP ``5b0e5b0e-0000-4000-8000-00000000ca71``:
  Carla Dias, account ``0001``/``123456-7``, accepts payments;
* ``loja@bancosimulado.example``: a closed account, payments are rejected ``AC07``;
* any payment of exactly R$ 10.03 times out (``AB03``).

The documents are valid and fictitious.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from finbank_adapters.sandbox.spi import RemoteAccount, SimulatedInstitution, SimulatedSpi, SpiRule
from finbank_adapters.settings import Settings, SettingsError
from finbank_core.accounts.model import HolderType
from finbank_core.pix.codes.keys import PixKey, PixKeyType
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.directory import KeyRegistration
from finbank_core.shared.clock import Clock
from finbank_core.shared.money import Money

__all__ = [
    "PEER_ACCOUNT_NUMBER",
    "PEER_CLOSED_KEY",
    "PEER_KEY_EMAIL",
    "PEER_KEY_EVP",
    "PEER_NAME",
    "PEER_TIMEOUT_AMOUNT",
    "institution_keys",
    "sandbox_directory_seed",
    "sandbox_peer",
    "simulated_spi",
]

PEER_NAME = "Banco Simulado"
PEER_ACCOUNT_NUMBER = "123456-7"
PEER_KEY_EMAIL = "carla@bancosimulado.example"
PEER_KEY_EVP = "5b0e5b0e-0000-4000-8000-00000000ca71"
PEER_CLOSED_KEY = "loja@bancosimulado.example"
PEER_TIMEOUT_AMOUNT = Money(10_03)


def sandbox_peer(ispb: str) -> SimulatedInstitution:
    """The peer bank of the sandbox network."""
    return SimulatedInstitution(
        ispb=ispb,
        name=PEER_NAME,
        accounts=[
            RemoteAccount(
                branch="0001",
                account_number=PEER_ACCOUNT_NUMBER,
                holder_name="Carla Dias",
                document="52998224725",
                keys=(PixKey.parse(PEER_KEY_EMAIL), PixKey(PixKeyType.EVP, PEER_KEY_EVP)),
                balance_cents=1_000_000_00,
            ),
            RemoteAccount(
                branch="0001",
                account_number="765432-1",
                holder_name="Loja Fechada Ltda",
                document="11222333000181",
                holder_type=HolderType.COMPANY,
                closed=True,
                keys=(PixKey.parse(PEER_CLOSED_KEY),),
            ),
        ],
    )


def simulated_spi(settings: Settings, clock: Clock) -> SimulatedSpi:
    """The sandbox network on ``settings`` (latency, timeout, the peer bank's ISPB)."""
    if settings.pix.sandbox_peer_ispb == settings.pix.ispb:
        raise SettingsError("FINBANK_PIX_SANDBOX_PEER_ISPB must differ from FINBANK_ISPB")
    return SimulatedSpi(
        clock,
        latency_seconds=settings.pix.spi_latency_seconds,
        timeout_seconds=settings.pix.spi_timeout_seconds,
        rules=(SpiRule(reason=IsoReason.AB03, amount=PEER_TIMEOUT_AMOUNT),),
        institutions=(sandbox_peer(settings.pix.sandbox_peer_ispb),),
    )


def institution_keys(institution: SimulatedInstitution) -> list[KeyRegistration]:
    """Directory entries for a simulated institution's keys."""
    registered_at = datetime(2025, 1, 1, tzinfo=UTC)
    return [
        KeyRegistration(
            id=uuid.uuid5(uuid.NAMESPACE_URL, f"finbank-sandbox-key:{key.type}:{key.value}"),
            key=key,
            ispb=institution.ispb,
            branch=account.branch,
            account_number=account.account_number,
            account_kind=account.kind,
            holder_type=account.holder_type,
            holder_name=account.holder_name,
            holder_document=account.document,
            created_at=registered_at,
        )
        for account in institution.accounts
        for key in account.keys
    ]


def sandbox_directory_seed(network: object) -> list[KeyRegistration]:
    """The DICT entries of the sandbox network's institutions.

    ``network`` is whatever serves the ``PaymentNetwork`` port: a fake put in
    its place (``open_bank(payment_network=...)``) has no institutions, so no
    entries.
    """
    institutions: dict[str, SimulatedInstitution] = getattr(network, "institutions", {})
    return [key for institution in institutions.values() for key in institution_keys(institution)]
