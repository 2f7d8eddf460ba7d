"""``open_bank()`` and the typed facade an embedding application uses.

::

    async with open_bank(profile="memory") as bank:
        account = await bank.accounts.open(OpenAccountCommand(owner_id="u1", holder_name="Ana"))
        await bank.accounts.deposit(MoveCashCommand(...))
        result = await bank.pix.send(SendPixCommand(...))

``open_bank`` builds the bank's containers
(:class:`~finbank_adapters.containers.BankContainer`) on the settings, opens
their connections, makes sure the bank's own ledger accounts exist, and
closes everything on the way out. The facade's methods take the core's
commands and return its results; each call resolves the use case from the
container, so an override made on ``bank.container`` (advanced) is seen by
the next call.

Fakes: ``open_bank(clock=FakeClock(...), ids=SequentialIdGenerator(),
payment_network=my_network)`` replaces those providers before anything is
built, so every use case, adapter and worker of that bank sees them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from dependency_injector import providers

from finbank_adapters.containers import (
    BankContainer,
    build_container,
    close_container,
    open_container,
    resolve,
)
from finbank_adapters.settings import Profile, Settings, SettingsError
from finbank_core.accounts import use_cases as accounts_uc
from finbank_core.accounts.model import CustomerAccount
from finbank_core.auth import use_cases as auth_uc
from finbank_core.auth.model import (
    ChallengeType,
    Principal,
    SignUpRequest,
    SignUpResult,
    TokenSet,
    TotpSetup,
)
from finbank_core.pix import use_cases as pix_uc
from finbank_core.pix.codes.brcode_reader import BRCodeReading, read_brcode
from finbank_core.pix.directory import KeyRegistration
from finbank_core.pix.limits import TierLimits
from finbank_core.pix.payments import PixPayment
from finbank_core.pix.ports import PaymentNetwork
from finbank_core.shared.clock import Clock
from finbank_core.shared.ids import IdGenerator
from finbank_core.shared.money import Money

__all__ = ["AccountsFacade", "AuthFacade", "Bank", "PixFacade", "configure", "open_bank", "opened"]


class AccountsFacade:
    """Customer accounts on the double-entry ledger: ``bank.accounts``."""

    def __init__(self, container: BankContainer) -> None:
        self._c = container

    async def open(self, command: accounts_uc.OpenAccountCommand) -> CustomerAccount:
        """Open a customer account (and its ledger account)."""
        use_case: accounts_uc.OpenAccount = await resolve(self._c.accounts.open_account())
        return await use_case(command)

    async def get(self, owner_id: str, account_id: uuid.UUID) -> CustomerAccount:
        """One of ``owner_id``'s accounts (``NotFound`` for anyone else's)."""
        use_case: accounts_uc.GetAccount = await resolve(self._c.accounts.get_account())
        return await use_case(owner_id, account_id)

    async def list(self, owner_id: str) -> list[CustomerAccount]:
        """Every account of ``owner_id``."""
        use_case: accounts_uc.ListAccounts = await resolve(self._c.accounts.list_accounts())
        return await use_case(owner_id)

    async def balance(self, owner_id: str, account_id: uuid.UUID) -> accounts_uc.AccountBalance:
        """Posted, available and pending balances of one of ``owner_id``'s accounts."""
        use_case: accounts_uc.GetBalance = await resolve(self._c.accounts.get_balance())
        return await use_case(accounts_uc.BalanceQuery(owner_id=owner_id, account_id=account_id))

    async def statement(self, query: accounts_uc.StatementQuery) -> accounts_uc.Statement:
        """A page of an account's statement."""
        use_case: accounts_uc.GetStatement = await resolve(self._c.accounts.get_statement())
        return await use_case(query)

    async def deposit(self, command: accounts_uc.MoveCashCommand) -> accounts_uc.TransferReceipt:
        """Cash in: credit the account from the bank's cash account."""
        use_case: accounts_uc.Deposit = await resolve(self._c.accounts.deposit())
        return await use_case(command)

    async def withdraw(self, command: accounts_uc.MoveCashCommand) -> accounts_uc.TransferReceipt:
        """Cash out: debit the account (``InsufficientFunds`` if it would go negative)."""
        use_case: accounts_uc.Withdraw = await resolve(self._c.accounts.withdraw())
        return await use_case(command)

    async def transfer(
        self, command: accounts_uc.InternalTransferCommand
    ) -> accounts_uc.TransferReceipt:
        """Move money between two accounts of this bank."""
        use_case: accounts_uc.InternalTransfer = await resolve(self._c.accounts.internal_transfer())
        return await use_case(command)


class PixFacade:
    """PIX keys, payments, refunds, charges and limits: ``bank.pix``."""

    def __init__(self, container: BankContainer) -> None:
        self._c = container

    async def register_key(self, command: pix_uc.RegisterPixKeyCommand) -> KeyRegistration:
        """Register a PIX key (CPF/CNPJ, e-mail, phone or a new EVP) for an account."""
        use_case: pix_uc.RegisterPixKey = await resolve(self._c.pix.register_pix_key())
        return await use_case(command)

    async def delete_key(self, owner_id: str, key_id: uuid.UUID) -> KeyRegistration:
        """Remove one of ``owner_id``'s keys from the directory."""
        use_case: pix_uc.DeletePixKey = await resolve(self._c.pix.delete_pix_key())
        return await use_case(owner_id, key_id)

    async def list_keys(
        self, owner_id: str, account_id: uuid.UUID | None = None
    ) -> list[KeyRegistration]:
        """``owner_id``'s keys (of one account, if given)."""
        use_case: pix_uc.ListPixKeys = await resolve(self._c.pix.list_pix_keys())
        return await use_case(owner_id, account_id)

    async def send(self, command: pix_uc.SendPixCommand) -> pix_uc.SendPixResult:
        """Send a PIX (to a key, account data or a pasted BR Code); idempotent per key."""
        use_case: pix_uc.SendPix = await resolve(self._c.pix.send_pix())
        return await use_case(command)

    async def get_payment(self, owner_id: str, end_to_end_id: str) -> PixPayment:
        """One of ``owner_id``'s payments by EndToEndId."""
        use_case: pix_uc.GetPixPayment = await resolve(self._c.pix.get_pix_payment())
        return await use_case(owner_id, end_to_end_id)

    async def settle_payment(self, end_to_end_id: str) -> PixPayment:
        """Ask the network and settle a pending payment (what the worker does)."""
        use_case: pix_uc.SettlePixPayment = await resolve(self._c.pix.settle_pix_payment())
        return await use_case(end_to_end_id)

    async def refund(self, command: pix_uc.RefundPixCommand) -> pix_uc.RefundPixResult:
        """Return (part of) a received PIX to its payer."""
        use_case: pix_uc.RefundPix = await resolve(self._c.pix.refund_pix())
        return await use_case(command)

    async def settle_refund(self, end_to_end_id: str, return_id: str) -> pix_uc.RefundPixResult:
        """Settle a requested refund (what the worker does)."""
        use_case: pix_uc.SettlePixRefund = await resolve(self._c.pix.settle_pix_refund())
        return await use_case(end_to_end_id, return_id)

    async def create_charge(self, command: pix_uc.CreateChargeCommand) -> pix_uc.ChargeView:
        """Create a charge (a dynamic BR Code a payer pays)."""
        use_case: pix_uc.CreateCharge = await resolve(self._c.pix.create_charge())
        return await use_case(command)

    async def get_charge(self, owner_id: str, txid: str) -> pix_uc.ChargeView:
        """One of ``owner_id``'s charges by txid."""
        use_case: pix_uc.GetCharge = await resolve(self._c.pix.get_charge())
        return await use_case(owner_id, txid)

    async def render_charge_qr(
        self,
        owner_id: str,
        txid: str,
        fmt: pix_uc.QrFormat,
        kind: pix_uc.QrKind = pix_uc.QrKind.DYNAMIC,
    ) -> bytes:
        """A charge's QR code as PNG or SVG (needs the ``http`` extra's segno)."""
        use_case: pix_uc.RenderChargeQr = await resolve(self._c.pix.render_charge_qr())
        return await use_case(owner_id, txid, fmt, kind)

    def decode_brcode(self, text: str) -> BRCodeReading:
        """Read a pasted BR Code ("PIX copia e cola") without paying it."""
        return read_brcode(text)

    async def set_limits(
        self,
        owner_id: str,
        account_id: uuid.UUID,
        requested: TierLimits,
        *,
        late_night: bool | None = None,
    ) -> pix_uc.LimitsView:
        """Change an account's PIX limits: lower at once, higher after the delay."""
        use_case: pix_uc.SetPixLimits = await resolve(self._c.pix.set_pix_limits())
        return await use_case(owner_id, account_id, requested, late_night=late_night)

    async def simulate_incoming(
        self,
        owner_id: str,
        account_id: uuid.UUID,
        amount: Money,
        *,
        txid: str | None = None,
        description: str | None = None,
    ) -> pix_uc.IncomingPixAcceptance:
        """Sandbox: the simulated peer bank pays ``amount`` into the account."""
        use_case: pix_uc.SimulateIncomingPix = await resolve(self._c.pix.simulate_incoming_pix())
        return await use_case(owner_id, account_id, amount, txid=txid, description=description)


class AuthFacade:
    """Sign-up, login with MFA, tokens: ``bank.auth``."""

    def __init__(self, container: BankContainer) -> None:
        self._c = container

    async def sign_up(self, request: SignUpRequest) -> SignUpResult:
        """Create a user (confirmed later with the code sent to them)."""
        use_case: auth_uc.SignUp = await resolve(self._c.auth.sign_up())
        return await use_case(request)

    async def confirm(self, username: str, code: str) -> None:
        """Confirm a sign-up with its code."""
        use_case: auth_uc.ConfirmSignUp = await resolve(self._c.auth.confirm_sign_up())
        await use_case(username, code)

    async def login(self, username: str, password: str) -> auth_uc.LoginResult:
        """Password login: tokens, or an MFA challenge to answer."""
        use_case: auth_uc.PasswordLogin = await resolve(self._c.auth.password_login())
        return await use_case(username, password)

    async def answer_challenge(self, challenge_id: str, answer: str) -> auth_uc.LoginResult:
        """Answer an MFA challenge (a TOTP code...)."""
        use_case: auth_uc.AnswerChallenge = await resolve(self._c.auth.answer_challenge())
        return await use_case(challenge_id, answer)

    async def begin_totp_setup(self, challenge_id: str) -> auth_uc.ChallengeTotpSetup:
        """For an ``MFA_SETUP`` challenge: the secret to enrol and a new challenge id to answer."""
        use_case: auth_uc.AnswerChallenge = await resolve(self._c.auth.answer_challenge())
        return await use_case.begin_totp_setup(challenge_id)

    async def select_mfa_type(
        self, challenge_id: str, mfa_type: ChallengeType | str
    ) -> auth_uc.LoginResult:
        """Pick the MFA method a challenge offers a choice of."""
        use_case: auth_uc.SelectMfaType = await resolve(self._c.auth.select_mfa_type())
        return await use_case(challenge_id, mfa_type)

    async def refresh(self, refresh_token: str, *, username: str | None = None) -> TokenSet:
        """New tokens for a refresh token (rotated)."""
        use_case: auth_uc.Refresh = await resolve(self._c.auth.refresh_tokens())
        return await use_case(refresh_token, username=username)

    async def logout(self, access_token: str) -> None:
        """Revoke the session of an access token."""
        use_case: auth_uc.Logout = await resolve(self._c.auth.logout())
        await use_case(access_token)

    async def set_up_totp(self, access_token: str) -> TotpSetup:
        """Start TOTP enrolment: the secret to put in an authenticator app."""
        use_case: auth_uc.SetUpTotp = await resolve(self._c.auth.set_up_totp())
        return await use_case(access_token)

    async def verify_totp(self, access_token: str, code: str) -> None:
        """Finish TOTP enrolment with a first code."""
        use_case: auth_uc.VerifyTotp = await resolve(self._c.auth.verify_totp())
        await use_case(access_token, code)

    async def authenticate(self, access_token: str) -> Principal:
        """Who an access token is (``Unauthorized`` if invalid, expired or revoked)."""
        use_case: auth_uc.Authenticate = await resolve(self._c.auth.authenticate())
        return await use_case(access_token)


class Bank:
    """The bank, opened: ``accounts``, ``pix``, ``auth``, and the container underneath."""

    def __init__(self, container: BankContainer) -> None:
        self.container = container
        self.accounts = AccountsFacade(container)
        self.pix = PixFacade(container)
        self.auth = AuthFacade(container)

    @property
    def settings(self) -> Settings:
        """The settings the bank runs on."""
        settings: Settings = self.container.infra.settings()
        return settings

    @property
    def clock(self) -> Clock:
        """The clock every use case reads (a ``FakeClock`` if one was passed)."""
        clock: Clock = self.container.infra.clock()
        return clock

    @property
    def ids(self) -> IdGenerator:
        """The id generator every use case uses."""
        ids: IdGenerator = self.container.infra.ids()
        return ids


def _settings_for(settings: Settings | None, profile: Profile | str | None) -> Settings | None:
    if settings is not None and profile is not None:
        raise SettingsError("pass settings or a profile to open_bank, not both")
    if profile is not None:
        return Settings.from_env({"FINBANK_PROFILE": str(profile)})
    return settings


def configure(
    container: BankContainer,
    *,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    payment_network: PaymentNetwork | Any | None = None,
) -> None:
    """Replace the clock, the id generator and/or the payment network of ``container``."""
    if clock is not None:
        container.infra.clock.override(providers.Object(clock))
    if ids is not None:
        container.infra.ids.override(providers.Object(ids))
    if payment_network is not None:
        container.pix.payment_network.override(providers.Object(payment_network))


@asynccontextmanager
async def open_bank(
    settings: Settings | None = None,
    *,
    profile: Profile | str | None = None,
    clock: Clock | None = None,
    ids: IdGenerator | None = None,
    payment_network: PaymentNetwork | Any | None = None,
) -> AsyncIterator[Bank]:
    """Open the bank on ``settings`` (or a ``profile``'s presets, or ``FINBANK_*``).

    With neither ``settings`` nor ``profile``, the settings are read from the
    environment (``Settings.from_env()``), like the ``finbank`` command does.
    ``clock``, ``ids`` and ``payment_network`` replace those providers (fakes
    for tests). Connections are opened on entry and closed on exit.
    """
    container = build_container(_settings_for(settings, profile))
    configure(container, clock=clock, ids=ids, payment_network=payment_network)
    async with opened(container) as bank:
        yield bank


@asynccontextmanager
async def opened(container: BankContainer) -> AsyncIterator[Bank]:
    """Open an already-built (and perhaps overridden) container as a :class:`Bank`.

    What ``open_bank`` does after building the container; the HTTP app's
    lifespan uses it on the container it was given.
    """
    try:
        await open_container(container)
        yield Bank(container)
    finally:
        await close_container(container)
