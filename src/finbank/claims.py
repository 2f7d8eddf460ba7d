"""``bank.pix.claims``: key claims (portability, ownership) and protected key look-ups.

Customer-facing, with the customer's ``owner_id`` in every command: open a
claim on a key held elsewhere, confirm or cancel a claim on one of your
keys, complete a confirmed claim, read your claims, look a key up (charged
to your look-up bucket). The sandbox's side (another institution's answer,
a claim it opens on a key held here, its completion) is under ``simulate_*``.
The rules and their sources: ``docs/pix-claims.md``.
"""

from __future__ import annotations

import uuid

from finbank._provided import provided
from finbank_adapters.containers import BankContainer
from finbank_core.pix.claims import use_cases as uc
from finbank_core.pix.claims.model import ClaimType, KeyClaim
from finbank_core.pix.codes.keys import PixKey
from finbank_core.pix.directory import DirectoryEntry
from finbank_core.pix.use_cases.devices import ListPixDevicesQuery, PixDevice
from finbank_core.pix.use_cases.limit_changes import CancelPixLimitRaiseCommand, GetPixLimitsQuery
from finbank_core.pix.use_cases.limits import PixLimitsResult, SetPixLimitsCommand
from finbank_core.shared.inputs import checked_types

__all__ = ["ClaimsFacade", "LimitsFacade"]


class ClaimsFacade:
    """Key claims and key look-ups: ``bank.pix.claims``."""

    def __init__(self, container: BankContainer) -> None:
        self._c = container.pix_claims()

    async def open(self, command: uc.OpenKeyClaimCommand) -> KeyClaim:
        """Claim a key for one of your accounts (portability or ownership)."""
        return await (await provided(self._c.open_key_claim))(checked_types(command))

    async def confirm(self, command: uc.ConfirmKeyClaimCommand) -> KeyClaim:
        """As the key's holder, give it up within the resolution period."""
        return await (await provided(self._c.confirm_key_claim))(checked_types(command))

    async def cancel(self, command: uc.CancelKeyClaimCommand) -> KeyClaim:
        """As the holder, refuse or contest; as the claimer, withdraw."""
        return await (await provided(self._c.cancel_key_claim))(checked_types(command))

    async def complete(self, command: uc.CompleteKeyClaimCommand) -> KeyClaim:
        """As the claimer, bind the confirmed key to your account (within 30 days)."""
        return await (await provided(self._c.complete_key_claim))(checked_types(command))

    async def get(self, query: uc.GetKeyClaimQuery) -> KeyClaim:
        """One of your claims (as claimer or holder), its ended periods applied."""
        return await (await provided(self._c.get_key_claim))(checked_types(query))

    async def list(self, query: uc.ListKeyClaimsQuery) -> list[KeyClaim]:
        """Your claims, oldest first."""
        return await (await provided(self._c.list_key_claims))(checked_types(query))

    async def lookup_key(self, command: uc.LookupPixKeyCommand) -> DirectoryEntry:
        """Who a key pays (holder masked), charged to your look-up bucket."""
        return await (await provided(self._c.lookup_pix_key))(checked_types(command))

    async def receive(self, command: uc.ReceiveKeyClaimCommand) -> KeyClaim:
        """A claim another institution opened on a key held here (from the network)."""
        return await (await provided(self._c.receive_key_claim))(checked_types(command))

    # -- the sandbox's side ------------------------------------------------------------

    async def simulate_donor_answer(self, claim_id: uuid.UUID, answer: str | None) -> None:
        """Sandbox: what the other institution answers to your claim (CONFIRM, CANCEL, None)."""
        network = await provided(self._c.claims_network)
        network.answer(claim_id, answer)

    async def simulate_incoming_claim(
        self,
        *,
        claim_type: ClaimType,
        key: PixKey,
        from_ispb: str,
        from_account_number: str,
    ) -> KeyClaim:
        """Sandbox: an account of a simulated institution claims a key held here."""
        network = await provided(self._c.claims_network)
        command = network.originate_claim(
            claim_type=claim_type,
            key=key,
            from_ispb=from_ispb,
            from_account_number=from_account_number,
        )
        return await self.receive(command)

    async def simulate_peer_completion(self, claim_id: uuid.UUID) -> KeyClaim:
        """Sandbox: the other institution completes its confirmed claim on a key held here."""
        return await self.complete(uc.CompleteKeyClaimCommand(claim_id=claim_id))


class LimitsFacade:
    """A customer's PIX limits and devices: ``bank.pix.limits``."""

    def __init__(self, container: BankContainer) -> None:
        self._c = container.pix_claims()
        self._pix = container.pix()

    async def get(self, query: GetPixLimitsQuery) -> PixLimitsResult:
        """The figures in force and the raise waiting for its delay, if any."""
        return await (await provided(self._c.get_pix_limits))(checked_types(query))

    async def set(self, command: SetPixLimitsCommand) -> PixLimitsResult:
        """Lower figures at once; a raise applies after the delay (24 h)."""
        return await (await provided(self._pix.set_pix_limits))(checked_types(command))

    async def cancel_raise(self, command: CancelPixLimitRaiseCommand) -> PixLimitsResult:
        """Withdraw the raise still waiting for its delay."""
        return await (await provided(self._c.cancel_pix_limit_raise))(checked_types(command))

    async def devices(self, query: ListPixDevicesQuery) -> list[PixDevice]:
        """The caller's devices known to PIX, and whether each is still capped as new."""
        return await (await provided(self._c.list_pix_devices))(checked_types(query))
