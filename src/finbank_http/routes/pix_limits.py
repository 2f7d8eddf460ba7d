"""A customer's PIX limits (see, lower, raise, withdraw a raise) and devices.

A lowering applies at once; a raise applies after the waiting period the
rules set (Resolução BCB nº 142/2021: at least 24 h, at most 48 h; we wait
24 h) and is shown as pending until then, withdrawable. Amounts are reais
with two decimals.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, Router, delete, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK

from finbank_core.auth.model import Principal
from finbank_core.auth.step_up import StepUpPurpose
from finbank_core.pix.limits import TierLimits
from finbank_core.pix.use_cases.devices import ListPixDevicesQuery, PixDevice
from finbank_core.pix.use_cases.limit_changes import CancelPixLimitRaiseCommand, GetPixLimitsQuery
from finbank_core.pix.use_cases.limits import PixLimitsResult, SetPixLimitsCommand
from finbank_core.shared.money import Money
from finbank_http.deps import Bank
from finbank_http.problems import problems
from finbank_http.routes.auth import StepUpToken
from finbank_http.schemas import AmountOut, AmountText, signed_amount
from finbank_http.security import BEARER_SCHEME

COMMON = (400, 401, 503)
AccountQuery = Annotated[uuid.UUID, QueryParameter(description="one of the caller's accounts")]


def limit_raise_step_up(
    bank: Bank, principal: Principal, token: str | None
) -> Callable[[], Awaitable[None]] | None:
    """What spends the request's ``pix_limit_raise`` step-up token, for the core to call.

    None without a token. The use case calls it once, after every check that
    can refuse the request (the account is the caller's, the figures are
    valid) and right before its write, so a refused request leaves the token
    usable and a token is never spent on a change that was refused.
    """
    if token is None:
        return None

    async def spend() -> None:
        await bank.auth.require_step_up(principal, token, StepUpPurpose.PIX_LIMIT_RAISE)

    return spend


class TierIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    day_per_transaction: AmountText
    day_per_period: AmountText
    night_per_transaction: AmountText
    night_per_period: AmountText

    def limits(self) -> TierLimits:
        return TierLimits(
            day_per_transaction=Money.from_bcb(self.day_per_transaction).cents,
            day_per_period=Money.from_bcb(self.day_per_period).cents,
            night_per_transaction=Money.from_bcb(self.night_per_transaction).cents,
            night_per_period=Money.from_bcb(self.night_per_period).cents,
        )


class LimitsIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    account_id: uuid.UUID
    limits: TierIn
    #: the night starts at 22:00 instead of 20:00 (omitted: unchanged)
    late_night: bool | None = None


class TierOut(msgspec.Struct, kw_only=True):
    day_per_transaction: AmountOut
    day_per_period: AmountOut
    night_per_transaction: AmountOut
    night_per_period: AmountOut

    @classmethod
    def of(cls, tier: TierLimits) -> TierOut:
        return cls(
            day_per_transaction=signed_amount(Money(tier.day_per_transaction)),
            day_per_period=signed_amount(Money(tier.day_per_period)),
            night_per_transaction=signed_amount(Money(tier.night_per_transaction)),
            night_per_period=signed_amount(Money(tier.night_per_period)),
        )


class LimitsOut(msgspec.Struct, kw_only=True):
    account_id: uuid.UUID
    #: the night runs from 22:00 (else 20:00) to 06:00, São Paulo time
    late_night: bool
    in_force: TierOut
    #: the raise waiting for its delay, if any
    pending_raise: TierOut | None
    pending_effective_at: datetime | None
    #: true when the pending raise also moves the night's start to 22:00 (a shorter
    #: night is a raise: it waits like one); null when it leaves the start as it is
    pending_late_night: bool | None = None

    @classmethod
    def of(cls, result: PixLimitsResult) -> LimitsOut:
        return cls(
            account_id=result.account_id,
            late_night=result.late_night,
            in_force=TierOut.of(result.in_force),
            pending_raise=TierOut.of(result.pending_raise) if result.pending_raise else None,
            pending_effective_at=result.pending_effective_at,
            pending_late_night=result.pending_late_night,
        )


class DeviceOut(msgspec.Struct, kw_only=True):
    device_id: str
    first_seen_at: datetime
    #: still capped as a device new to PIX (R$ 200.00 a payment, R$ 1,000.00 a day)
    new_device: bool
    trusted_from: datetime

    @classmethod
    def of(cls, device: PixDevice) -> DeviceOut:
        return cls(
            device_id=device.device_id,
            first_seen_at=device.first_seen_at,
            new_device=device.new_device,
            trusted_from=device.trusted_from,
        )


class PixLimitsController(Controller):
    path = "/v1/pix/limits"
    tags = ["pix"]
    security = [{BEARER_SCHEME: []}]

    @get(
        "/",
        operation_id="getPixLimits",
        summary="An account's PIX limits in force (day/night, per transaction and per period)",
        responses=problems(*COMMON, 404, 422),
    )
    async def get_limits(
        self,
        account_id: AccountQuery,
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> LimitsOut:
        result = await bank.pix.limits.get(
            GetPixLimitsQuery(owner_id=principal.subject, account_id=account_id)
        )
        return LimitsOut.of(result)

    @put(
        "/",
        operation_id="setPixLimits",
        summary="Change an account's PIX limits: lower at once, raise after 24 hours",
        description="Every figure at or below the one in force applies at once; if any goes "
        "up, the whole request becomes a pending raise that applies 24 hours later "
        "(Resolução BCB nº 142/2021: 24 to 48 hours). A raise needs a step-up token for "
        "`pix_limit_raise` (`POST /v1/auth/step-up`) in `X-Step-Up-Token`; without it a "
        "raise is refused with 403 `step_up_required` and nothing changes. A token sent is "
        "spent only after the account and the figures are checked (a refused request leaves "
        "it usable), once.",
        responses=problems(*COMMON, 403, 404, 422),
        status_code=HTTP_200_OK,
    )
    async def set_limits(
        self,
        data: JSONBody[LimitsIn],
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
        step_up_token: StepUpToken = None,
    ) -> LimitsOut:
        requested = data.limits.limits()  # a bad figure is refused before a token is spent
        result = await bank.pix.limits.set(
            SetPixLimitsCommand(
                owner_id=principal.subject,
                account_id=data.account_id,
                requested=requested,
                late_night=data.late_night,
                allow_raise=False,
                step_up=limit_raise_step_up(bank, principal, step_up_token),
            )
        )
        return LimitsOut.of(result)

    @delete(
        "/pending-raise",
        operation_id="cancelPixLimitRaise",
        summary="Withdraw the raise still waiting for its delay",
        responses=problems(*COMMON, 404, 422),
        status_code=HTTP_200_OK,
    )
    async def cancel_raise(
        self,
        account_id: AccountQuery,
        principal: NamedDependency[Principal],
        bank: NamedDependency[Bank],
    ) -> LimitsOut:
        result = await bank.pix.limits.cancel_raise(
            CancelPixLimitRaiseCommand(owner_id=principal.subject, account_id=account_id)
        )
        return LimitsOut.of(result)


class PixDevicesController(Controller):
    path = "/v1/pix/devices"
    tags = ["pix"]
    security = [{BEARER_SCHEME: []}]

    @get(
        "/",
        operation_id="listPixDevices",
        summary="The caller's devices known to PIX",
        responses=problems(*COMMON),
    )
    async def list_devices(
        self, principal: NamedDependency[Principal], bank: NamedDependency[Bank]
    ) -> list[DeviceOut]:
        found = await bank.pix.limits.devices(ListPixDevicesQuery(owner_id=principal.subject))
        return [DeviceOut.of(d) for d in found]


def pix_limits_router() -> Router:
    """The limits and devices routes, to mount under a router that provides ``principal``."""
    return Router(path="/", route_handlers=[PixLimitsController, PixDevicesController])
