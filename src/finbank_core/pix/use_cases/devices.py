"""Listing a customer's devices known to PIX (first use, and whether still capped as new)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

import msgspec

from finbank_core.pix.limits import LimitPolicy
from finbank_core.shared.clock import Clock
from finbank_core.shared.inputs import check_text


class DeviceListing(Protocol):
    """The devices a ``DeviceRegistry`` remembers for one customer."""

    async def list_by_owner(self, owner_id: str) -> list[tuple[str, datetime]]:
        """``(device_id, first_seen)`` of every device of ``owner_id``, in any order."""
        ...


class PixDevice(msgspec.Struct, frozen=True, kw_only=True):
    device_id: str
    first_seen_at: datetime
    #: still within the new-device period: capped per transaction and per day
    new_device: bool
    #: when the new-device caps stop applying
    trusted_from: datetime


class ListPixDevicesQuery(msgspec.Struct, frozen=True, kw_only=True):
    owner_id: str


class ListPixDevices:
    """The caller's devices, oldest first, with the new-device caps' status at ``now``."""

    def __init__(self, *, devices: DeviceListing, policy: LimitPolicy, clock: Clock) -> None:
        self._devices = devices
        self._policy = policy
        self._clock = clock

    async def __call__(self, query: ListPixDevicesQuery) -> list[PixDevice]:
        check_text(query.owner_id, field="owner_id", name="owner id")  # the store is asked by it
        now = self._clock.now()
        trust = self._policy.settings.new_device_trust_seconds
        found = sorted(
            await self._devices.list_by_owner(query.owner_id), key=lambda d: (d[1], d[0])
        )
        return [
            PixDevice(
                device_id=device_id,
                first_seen_at=first_seen,
                new_device=self._policy.is_new_device(first_seen, now),
                trusted_from=first_seen + timedelta(seconds=trust),
            )
            for device_id, first_seen in found
        ]
