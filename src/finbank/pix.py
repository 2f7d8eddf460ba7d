"""``bank.pix``: PIX keys, payments, refunds, charges and limits."""

from __future__ import annotations

from finbank._provided import UseCases
from finbank.automatic import AutomaticFacade
from finbank.claims import ClaimsFacade, LimitsFacade
from finbank.med import MedFacade
from finbank_adapters.containers import BankContainer
from finbank_core.pix import use_cases as uc
from finbank_core.pix.codes.brcode_reader import BRCodeReading, read_brcode
from finbank_core.pix.directory import KeyRegistration
from finbank_core.pix.payments import PaymentPage, PixPayment
from finbank_core.shared.inputs import checked_types

__all__ = ["PixFacade"]


class PixFacade:
    """PIX keys, payments, refunds, charges and limits: ``bank.pix``."""

    def __init__(self, container: BankContainer) -> None:
        self._c = container.pix()
        self._built = UseCases()  # each use case built once, again after an override
        #: Pix Automático: recurrences, authorisations, recurring charges and their debits
        self.automatic = AutomaticFacade(container)
        #: precautionary blocks and MED (infraction reports, analysis, returns)
        self.med = MedFacade(container)
        #: key claims and protected key look-ups
        self.claims = ClaimsFacade(container)
        #: limits (see, lower, raise, withdraw a raise) and devices
        self.limits = LimitsFacade(container)

    async def register_key(self, command: uc.RegisterPixKeyCommand) -> KeyRegistration:
        """Register a PIX key (CPF/CNPJ, e-mail, phone or a new EVP) for an account."""
        return await (await self._built(self._c.register_pix_key))(checked_types(command))

    async def delete_key(self, command: uc.DeletePixKeyCommand) -> KeyRegistration:
        """Remove one of the caller's keys from the directory."""
        return await (await self._built(self._c.delete_pix_key))(checked_types(command))

    async def list_keys(self, query: uc.ListPixKeysQuery) -> list[KeyRegistration]:
        """The caller's keys (of one account, if the query names one)."""
        return await (await self._built(self._c.list_pix_keys))(checked_types(query))

    async def send(self, command: uc.SendPixCommand) -> uc.SendPixResult:
        """Send a PIX (to a key, account data or a pasted BR Code); idempotent per key."""
        return await (await self._built(self._c.send_pix))(checked_types(command))

    async def get_payment(self, query: uc.GetPixPaymentQuery) -> PixPayment:
        """One of the caller's payments, sent or received, by EndToEndId."""
        return await (await self._built(self._c.get_pix_payment))(checked_types(query))

    async def list_payments(self, query: uc.ListPixPaymentsQuery) -> PaymentPage:
        """One page of the caller's payments on one account, newest first (filters, cursor)."""
        return await (await self._built(self._c.list_pix_payments))(checked_types(query))

    async def settle_payment(self, command: uc.SettlePixPaymentCommand) -> PixPayment:
        """Ask the network and settle a pending payment (what the worker does)."""
        return await (await self._built(self._c.settle_pix_payment))(checked_types(command))

    async def refund(self, command: uc.RefundPixCommand) -> uc.RefundPixResult:
        """Return (part of) a received PIX to its payer."""
        return await (await self._built(self._c.refund_pix))(checked_types(command))

    async def settle_refund(self, command: uc.SettlePixRefundCommand) -> uc.RefundPixResult:
        """Settle a requested refund (what the worker does)."""
        return await (await self._built(self._c.settle_pix_refund))(checked_types(command))

    async def create_charge(self, command: uc.CreateChargeCommand) -> uc.ChargeResult:
        """Create a charge (a dynamic BR Code a payer pays)."""
        return await (await self._built(self._c.create_charge))(checked_types(command))

    async def get_charge(self, query: uc.GetChargeQuery) -> uc.ChargeResult:
        """One of the caller's charges by txid."""
        return await (await self._built(self._c.get_charge))(checked_types(query))

    async def remove_charge(self, command: uc.RemoveChargeCommand) -> uc.ChargeResult:
        """Withdraw one of the caller's active charges (it can no longer be paid)."""
        return await (await self._built(self._c.remove_charge))(checked_types(command))

    async def render_charge_qr(self, query: uc.RenderChargeQrQuery) -> bytes:
        """A charge's QR code as PNG or SVG (needs the ``http`` extra's segno)."""
        return await (await self._built(self._c.render_charge_qr))(checked_types(query))

    def decode_brcode(self, text: str) -> BRCodeReading:
        """Read a pasted BR Code ("PIX copia e cola") without paying it."""
        return read_brcode(text)

    async def set_limits(self, command: uc.SetPixLimitsCommand) -> uc.PixLimitsResult:
        """Change an account's PIX limits: lower at once, higher after the delay."""
        return await (await self._built(self._c.set_pix_limits))(checked_types(command))

    async def simulate_incoming(
        self, command: uc.SimulateIncomingPixCommand
    ) -> uc.AcceptIncomingPixResult:
        """Sandbox: the simulated peer bank pays into one of the caller's accounts."""
        return await (await self._built(self._c.simulate_incoming_pix))(checked_types(command))
