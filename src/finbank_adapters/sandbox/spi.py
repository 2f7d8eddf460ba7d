"""A simulated instant payment system (SPI) with other institutions in it.

Knobs: ``latency_seconds`` (an ``asyncio.sleep`` before each answer, 0 by
default), ``timeout_seconds`` (a latency at or over it answers ``RJCT AB03``
after waiting the timeout), rejection rules (:class:`SpiRule`: by amount,
institution, account or key, with any ISO reason, ``AB03`` included), and
institutions with their own accounts, which accept, or refuse a payment to
an unknown (``AC03``), blocked (``AC06``) or closed (``AC07``) account. It
also originates payments from those institutions to us
(:meth:`SimulatedSpi.originate_payment`). Answers are remembered per
EndToEndId / rtrId, so sending the same order twice gets the same answer,
also when the two are sent at once: an id's check, decision and answer
run under that id's lock, so one order moves the simulated money once.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime

import msgspec

from finbank_core.accounts.model import AccountKind, HolderType
from finbank_core.pix.codes.identifiers import EndToEndId, ReturnId
from finbank_core.pix.codes.keys import PixKey
from finbank_core.pix.codes.reasons import IsoReason
from finbank_core.pix.directory import safe_mask
from finbank_core.pix.med.use_cases.payer import ReceiveMedReturnCommand
from finbank_core.pix.network import IncomingPixOrder, NetworkResult, PaymentOrder, ReturnOrder
from finbank_core.pix.payments import Initiation, PixParty
from finbank_core.reconciliation.model import Direction, ReconItem
from finbank_core.shared.clock import Clock
from finbank_core.shared.errors import InvalidInput, NotFound
from finbank_core.shared.money import Money


@dataclass
class RemoteAccount:
    """An account at a simulated institution; ``balance_cents`` tracks what PIX moved."""

    branch: str
    account_number: str
    holder_name: str
    document: str
    holder_type: HolderType = HolderType.INDIVIDUAL
    kind: AccountKind = AccountKind.CHECKING
    blocked: bool = False
    closed: bool = False
    keys: tuple[PixKey, ...] = ()
    balance_cents: int = 0

    def party(self, ispb: str) -> PixParty:
        return PixParty(
            ispb=ispb,
            branch=self.branch,
            account_number=self.account_number,
            account_kind=self.kind.value,
            name=self.holder_name,
            document_masked=safe_mask(self.document),
        )


@dataclass
class SimulatedInstitution:
    ispb: str
    name: str
    accounts: list[RemoteAccount] = field(default_factory=list)

    def account(self, branch: str | None, number: str | None) -> RemoteAccount | None:
        return next(
            (a for a in self.accounts if (a.branch, a.account_number) == (branch, number)), None
        )


class SpiRule(msgspec.Struct, frozen=True, kw_only=True):
    """Reject with ``reason`` every order matching all the criteria given."""

    reason: IsoReason
    amount: Money | None = None
    payee_ispb: str | None = None
    payee_account_number: str | None = None
    payee_key: str | None = None

    def matches(self, order: PaymentOrder) -> bool:
        return (
            (self.amount is None or order.amount == self.amount)
            and (self.payee_ispb is None or order.payee.ispb == self.payee_ispb)
            and (
                self.payee_account_number is None
                or order.payee.account_number == self.payee_account_number
            )
            and (self.payee_key is None or order.payee_key == self.payee_key)
        )


class SimulatedSpi:
    """The ``PaymentNetwork`` of the memory profile and of tests (see the module docstring)."""

    def __init__(
        self,
        clock: Clock,
        *,
        latency_seconds: float = 0.0,
        timeout_seconds: float | None = None,
        rules: tuple[SpiRule, ...] = (),
        institutions: tuple[SimulatedInstitution, ...] = (),
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self.latency_seconds = latency_seconds
        self.timeout_seconds = timeout_seconds
        self.rules: list[SpiRule] = list(rules)
        self.institutions = {i.ispb: i for i in institutions}
        self._rng = rng
        self._answers: dict[str, NetworkResult] = {}
        #: one lock per EndToEndId / rtrId: the duplicate check and the decision are one step
        self._deciding: dict[str, asyncio.Lock] = {}
        #: every distinct order received, in order (what a test inspects)
        self.payments: list[PaymentOrder] = []
        self.returns: list[ReturnOrder] = []
        self._originated: dict[str, tuple[str, RemoteAccount]] = {}
        #: what settled in our institution's PI account, as the central bank's statement lists it
        self.settled: list[ReconItem] = []

    def _settle(self, key: str, amount: Money, direction: Direction) -> datetime:
        now = self._clock.now()
        self.settled.append(
            ReconItem(
                key=key,
                amount_cents=amount.cents,
                direction=direction,
                at=now,
                reference=f"SPI{len(self.settled) + 1:08d}",
            )
        )
        return now

    def add_institution(self, institution: SimulatedInstitution) -> None:
        self.institutions[institution.ispb] = institution

    def reject_when(self, reason: IsoReason, **criteria: object) -> None:
        """Add a rule, e.g. ``reject_when(IsoReason.AB03, amount=Money(1003))``."""
        self.rules.append(msgspec.convert({"reason": reason, **criteria}, SpiRule, strict=False))

    async def _wait(self) -> bool:
        """Simulate latency; True when the answer would come after the timeout."""
        latency, timeout = self.latency_seconds, self.timeout_seconds
        if timeout is not None and latency >= timeout:
            await asyncio.sleep(timeout)
            return True
        if latency > 0:
            await asyncio.sleep(latency)
        return False

    def _lock(self, message_id: str) -> asyncio.Lock:
        return self._deciding.setdefault(message_id, asyncio.Lock())

    async def send_payment(self, order: PaymentOrder) -> NetworkResult:
        async with self._lock(order.end_to_end_id):
            known = self._answers.get(order.end_to_end_id)
            if known is not None:
                return known
            self.payments.append(order)
            result = await self._decide_payment(order)
            self._answers[order.end_to_end_id] = result
            return result

    async def _decide_payment(self, order: PaymentOrder) -> NetworkResult:
        if await self._wait():
            return NetworkResult.reject(IsoReason.AB03)
        rule = next((r for r in self.rules if r.matches(order)), None)
        if rule is not None:
            return NetworkResult.reject(rule.reason)
        institution = self.institutions.get(order.payee.ispb)
        account = (
            institution.account(order.payee.branch, order.payee.account_number)
            if institution
            else None
        )
        if account is None:
            return NetworkResult.reject(IsoReason.AC03)
        if account.closed:
            return NetworkResult.reject(IsoReason.AC07)
        if account.blocked:
            return NetworkResult.reject(IsoReason.AC06)
        account.balance_cents += order.amount.cents
        return NetworkResult.accept(self._settle(order.end_to_end_id, order.amount, Direction.OUT))

    async def send_return(self, order: ReturnOrder) -> NetworkResult:
        async with self._lock(order.return_id):
            return await self._send_return(order)

    async def _send_return(self, order: ReturnOrder) -> NetworkResult:
        known = self._answers.get(order.return_id)
        if known is not None:
            return known
        self.returns.append(order)
        if await self._wait():
            result = NetworkResult.reject(IsoReason.AB03)
        elif order.to_ispb not in self.institutions:
            result = NetworkResult.reject(IsoReason.AC03)
        else:
            origin = self._originated.get(order.original_end_to_end_id)
            if origin is not None:
                origin[1].balance_cents += order.amount.cents
            result = NetworkResult.accept(
                self._settle(order.return_id, order.amount, Direction.OUT)
            )
        self._answers[order.return_id] = result
        return result

    def originate_med_return(
        self, *, original_end_to_end_id: str, amount: Money, final: bool = True
    ) -> ReceiveMedReturnCommand:
        """A MED return (pacs.004) by the institution we paid, of a payment we sent it.

        The money leaves the simulated account that received the payment and
        settles into our PI account; the command is what ``ReceiveMedReturn``
        takes (our customer is credited there).
        """
        order = next((p for p in self.payments if p.end_to_end_id == original_end_to_end_id), None)
        answer = self._answers.get(original_end_to_end_id)
        if order is None or answer is None or not answer.accepted:
            raise NotFound("no payment of ours was settled with this EndToEndId")
        amount.require_positive()
        institution = self.institutions[order.payee.ispb]
        account = institution.account(order.payee.branch, order.payee.account_number)
        assert account is not None  # it accepted the payment
        account.balance_cents -= amount.cents
        return_id = ReturnId.generate(institution.ispb, self._clock.now(), self._rng).value
        self._settle(return_id, amount, Direction.IN)
        return ReceiveMedReturnCommand(
            end_to_end_id=original_end_to_end_id,
            return_id=return_id,
            amount=amount,
            from_ispb=institution.ispb,
            final=final,
        )

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
    ) -> IncomingPixOrder:
        """A payment from an account of a simulated institution to us, ready for ``ReceivePix``."""
        institution = self.institutions.get(from_ispb)
        payer = (
            next((a for a in institution.accounts if a.account_number == from_account_number), None)
            if institution
            else None
        )
        if institution is None or payer is None:
            raise NotFound("no such simulated institution or account")
        if to_key is None and not (to_branch and to_account_number):
            raise InvalidInput("name the payee by key or by branch and account number")
        amount.require_positive()
        e2e = EndToEndId.generate(from_ispb, self._clock.now(), self._rng).value
        payer.balance_cents -= amount.cents
        self._originated[e2e] = (from_ispb, payer)
        self._settle(e2e, amount, Direction.IN)
        return IncomingPixOrder(
            end_to_end_id=e2e,
            amount=amount,
            payer=payer.party(from_ispb),
            payee_key=to_key,
            payee_branch=to_branch,
            payee_account_number=to_account_number,
            txid=txid,
            description=description,
            initiation=Initiation.KEY if to_key else Initiation.MANUAL,
        )
