"""Builders the container uses for PIX: settings -> adapters and use cases.

The sandbox network and its peer bank live in :mod:`finbank_adapters.sandbox`;
their names are re-exported here for code that imported them from this module.
"""

from __future__ import annotations

from typing import Any

import msgspec

from finbank_adapters.memory.pix import (
    InMemoryAccountLimitsStore,
    InMemoryChargeRepository,
    InMemoryDeviceRegistry,
    InMemoryKeyDirectory,
    InMemoryPixPaymentRepository,
)
from finbank_adapters.pix_charges import LocalChargeResolver
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
from finbank_adapters.settings import Settings, SettingsError
from finbank_core.accounts.ports import Ledger
from finbank_core.pix.directory import KeyRegistration
from finbank_core.pix.ledger_steps import PixLedgerSteps
from finbank_core.pix.limits import LimitPolicy, LimitSettings
from finbank_core.pix.ports import QrRenderer

__all__ = [  # the container refers to the memory adapters through this module
    "PEER_ACCOUNT_NUMBER",
    "PEER_CLOSED_KEY",
    "PEER_KEY_EMAIL",
    "PEER_KEY_EVP",
    "PEER_NAME",
    "PEER_TIMEOUT_AMOUNT",
    "InMemoryAccountLimitsStore",
    "InMemoryChargeRepository",
    "InMemoryDeviceRegistry",
    "InMemoryKeyDirectory",
    "InMemoryPixPaymentRepository",
    "LocalChargeResolver",
    "institution_keys",
    "sandbox_directory_seed",
    "sandbox_peer",
    "simulated_spi",
]


def memory_key_directory(seed: list[KeyRegistration]) -> InMemoryKeyDirectory:
    """The in-memory DICT, holding the network's own keys (``seed``) too."""
    directory = InMemoryKeyDirectory()
    directory.preload(seed)
    return directory


def limit_policy(settings: Settings) -> LimitPolicy:
    """The PIX limits: ``FINBANK_PIX_LIMITS_JSON`` over the defaults, and
    ``FINBANK_PIX_UNNAMED_DEVICE_IS_NEW``, which that JSON may not set (one place for it).
    """
    figures = LimitSettings()
    if settings.pix.limits_json:
        try:
            given = msgspec.json.decode(settings.pix.limits_json)
            figures = msgspec.convert(given, type=LimitSettings)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise SettingsError(f"invalid FINBANK_PIX_LIMITS_JSON: {exc}") from None
        if "unnamed_device_is_new" in given:
            raise SettingsError(
                "invalid FINBANK_PIX_LIMITS_JSON: unnamed_device_is_new is set by "
                "FINBANK_PIX_UNNAMED_DEVICE_IS_NEW"
            )
    return LimitPolicy(
        msgspec.structs.replace(figures, unnamed_device_is_new=settings.pix.unnamed_device_is_new)
    )


def pix_ledger_steps(settings: Settings, ledger: Ledger) -> PixLedgerSteps:
    """The PIX ledger steps; reservations time out after ``FINBANK_PIX_PENDING_TIMEOUT_SECONDS``."""
    return PixLedgerSteps(ledger, pending_timeout_seconds=settings.pix.pending_timeout_seconds)


def qr_renderer() -> QrRenderer:
    # Imported here: segno comes with the "http" extra, the container must not need it.
    from finbank_adapters.qr import SegnoQrRenderer

    return SegnoQrRenderer()


def settle_inline(settings: Settings, settle: Any) -> Any:
    """The settle use case when payments settle in the request, else ``None``."""
    return settle if settings.pix.inline_settlement else None
