"""Resolving dynamic BR Code locations: our own charges, served from the charge records."""

from __future__ import annotations

from finbank_core.pix.charges import ChargePayload
from finbank_core.pix.errors import ChargeNotFound
from finbank_core.pix.ports import ChargeRepository


class LocalChargeResolver:
    """A ``ChargeResolver`` for locations under this bank's base URL.

    A real PSP fetches the payload (a signed JWS) over HTTPS from the
    receiver's institution; locations of other institutions are not served
    here and raise ``ChargeNotFound``.
    """

    def __init__(self, charges: ChargeRepository, location_base_url: str) -> None:
        base = location_base_url.removeprefix("https://").removeprefix("http://").rstrip("/")
        self._prefix = f"{base}/cob/"
        self._charges = charges

    async def resolve(self, location_url: str) -> ChargePayload:
        url = location_url.removeprefix("https://").removeprefix("http://")
        if not url.lower().startswith(self._prefix.lower()):
            raise ChargeNotFound("unknown charge location")
        charge = await self._charges.get_by_location(url[len(self._prefix) :])
        return ChargePayload(
            txid=charge.txid,
            pix_key=charge.pix_key,
            amount=charge.amount,
            status=charge.status,
            expires_at=charge.expires_at,
            merchant_name=charge.merchant_name,
        )
