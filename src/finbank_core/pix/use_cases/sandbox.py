"""Sandbox only: make another institution pay one of the caller's accounts."""

from __future__ import annotations

import uuid
from typing import Protocol

import msgspec

from finbank_core.accounts.access import owned_active_account
from finbank_core.accounts.ports import AccountRepository
from finbank_core.pix.network import IncomingPixOrder
from finbank_core.pix.use_cases.receive import AcceptIncomingPix, AcceptIncomingPixResult
from finbank_core.shared.inputs import check_memo
from finbank_core.shared.money import Money


class PaymentOriginator(Protocol):
    """A simulated network that can start payments from its other institutions to us."""

    def originate_payment(
        self,
        *,
        from_ispb: str,
        from_account_number: str,
        amount: Money,
        to_key: str | None = None,
        to_branch: str | None = None,
        to_account_number: str | None = None,
        txid: str | None = None,
        description: str | None = None,
    ) -> IncomingPixOrder: ...


class SimulateIncomingPixCommand(msgspec.Struct, frozen=True, kw_only=True):
    """The sandbox's peer bank pays ``amount`` into one of the caller's accounts."""

    owner_id: str
    account_id: uuid.UUID
    amount: Money
    txid: str | None = None
    description: str | None = None


class SimulateIncomingPix:
    """A payment from the sandbox's peer bank into one of the caller's accounts.

    The order goes through :class:`AcceptIncomingPix` like one from the
    real network: credited in the call (the acceptance carries the payment)
    or accepted for the settlement worker (no payment yet).
    """

    def __init__(
        self,
        *,
        accounts: AccountRepository,
        originator: PaymentOriginator,
        accept: AcceptIncomingPix,
        peer_ispb: str,
        peer_account_number: str,
    ) -> None:
        self._accounts = accounts
        self._originator = originator
        self._accept = accept
        self._peer_ispb = peer_ispb
        self._peer_account = peer_account_number

    async def __call__(self, cmd: SimulateIncomingPixCommand) -> AcceptIncomingPixResult:
        account = await owned_active_account(self._accounts, cmd.owner_id, cmd.account_id)
        order = self._originator.originate_payment(
            from_ispb=self._peer_ispb,
            from_account_number=self._peer_account,
            amount=cmd.amount,
            to_branch=account.branch,
            to_account_number=account.number,
            txid=cmd.txid,
            description=check_memo(cmd.description),
        )
        return await self._accept(order)
