"""Your own adapters and fakes in place of the bank's: :class:`Overrides`.

::

    async with open_bank(
        profile="memory",
        overrides=Overrides(clock=FakeClock(start), key_directory=my_directory),
    ) as bank:
        ...

Each field is typed with its port (a ``Protocol`` of the core), so mypy
checks that what you pass implements it. A field left ``None`` keeps the
adapter the settings choose. The override replaces the port's provider in
the containers before anything is built: every use case, adapter and worker
of that bank (the relay, the settlement worker, the reconciliation job) sees
the same object.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dependency_injector import providers

from finbank_adapters.containers import BankContainer
from finbank_adapters.settings import SettingsError
from finbank_core.accounts.ports import AccountRepository, Ledger
from finbank_core.auth.ports import (
    ChallengeStore,
    IdentityProvider,
    LoginThrottle,
    TokenDenylist,
    TokenVerifier,
)
from finbank_core.auth.refresh_tokens import RefreshTokenStore
from finbank_core.auth.users import UserStore
from finbank_core.pix.ports import (
    AccountLimitsStore,
    ChargeRepository,
    DeviceRegistry,
    KeyDirectory,
    PaymentNetwork,
    PixPaymentRepository,
)
from finbank_core.shared.clock import Clock
from finbank_core.shared.events import EventPublisher
from finbank_core.shared.idempotency import RequestClaims
from finbank_core.shared.ids import IdGenerator
from finbank_core.shared.outbox import Outbox

if TYPE_CHECKING:  # the HTTP extra's type; the field takes any Litestar store
    from litestar.stores.base import Store

__all__ = ["Overrides", "apply_overrides"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Overrides:
    """Ports to replace, each by an object implementing it; ``None`` keeps the configured one."""

    # time and ids
    clock: Clock | None = None
    ids: IdGenerator | None = None
    # accounts
    ledger: Ledger | None = None
    account_repository: AccountRepository | None = None
    # events
    event_publisher: EventPublisher | None = None
    outbox: Outbox | None = None
    # PIX
    payment_network: PaymentNetwork | None = None
    key_directory: KeyDirectory | None = None
    pix_payments: PixPaymentRepository | None = None
    charges: ChargeRepository | None = None
    account_limits: AccountLimitsStore | None = None
    devices: DeviceRegistry | None = None
    request_claims: RequestClaims | None = None
    # auth
    identity_provider: IdentityProvider | None = None
    token_verifier: TokenVerifier | None = None
    user_store: UserStore | None = None
    challenge_store: ChallengeStore | None = None
    login_throttle: LoginThrottle | None = None
    token_denylist: TokenDenylist | None = None
    refresh_token_store: RefreshTokenStore | None = None
    #: the store behind the HTTP rate limiter on ``/v1/auth/*`` (a Litestar ``Store``)
    rate_limit_store: Store | None = None

    def with_shortcuts(
        self,
        *,
        clock: Clock | None = None,
        ids: IdGenerator | None = None,
        payment_network: PaymentNetwork | None = None,
    ) -> Overrides:
        """These overrides plus ``open_bank``'s shortcuts; a field given twice is refused."""
        given = {"clock": clock, "ids": ids, "payment_network": payment_network}
        twice = sorted(
            name
            for name, value in given.items()
            if value is not None and getattr(self, name) is not None
        )
        if twice:
            raise SettingsError(f"given both as an argument and in overrides: {', '.join(twice)}")
        return dataclasses.replace(
            self,
            clock=clock if clock is not None else self.clock,
            ids=ids if ids is not None else self.ids,
            payment_network=(
                payment_network if payment_network is not None else self.payment_network
            ),
        )

    def given(self) -> dict[str, object]:
        """The fields that are set, by name."""
        return {
            field.name: value
            for field in dataclasses.fields(self)
            if (value := getattr(self, field.name)) is not None
        }


#: where each field of :class:`Overrides` lives in the containers
PROVIDERS: dict[str, Callable[[BankContainer], providers.Provider[Any]]] = {
    "clock": lambda c: c.infra().clock,
    "ids": lambda c: c.infra().ids,
    "ledger": lambda c: c.accounts().ledger,
    "account_repository": lambda c: c.accounts().account_repository,
    "event_publisher": lambda c: c.events().publisher,
    "outbox": lambda c: c.events().outbox,
    "payment_network": lambda c: c.pix().payment_network,
    "key_directory": lambda c: c.pix().key_directory,
    "pix_payments": lambda c: c.pix().pix_payment_repository,
    "charges": lambda c: c.pix().charge_repository,
    "account_limits": lambda c: c.pix().account_limits_store,
    "devices": lambda c: c.pix().device_registry,
    "request_claims": lambda c: c.pix().request_claims,
    "identity_provider": lambda c: c.auth().identity_provider,
    "token_verifier": lambda c: c.auth().token_verifier,
    "user_store": lambda c: c.auth().user_store,
    "challenge_store": lambda c: c.auth().challenge_store,
    "login_throttle": lambda c: c.auth().login_throttle,
    "token_denylist": lambda c: c.auth().token_denylist,
    "refresh_token_store": lambda c: c.auth().refresh_token_store,
    "rate_limit_store": lambda c: c.auth().rate_limit_store,
}


def apply_overrides(container: BankContainer, overrides: Overrides) -> None:
    """Replace each port ``overrides`` sets in ``container`` (before anything is built)."""
    for name, value in overrides.given().items():
        PROVIDERS[name](container).override(providers.Object(value))
